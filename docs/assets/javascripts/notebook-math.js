// mkdocs-jupyter puts a MathJax <script> on notebook pages; it points here instead of a CDN.
// KaTeX (katex-init.js) typesets notebook pages like every other page.
