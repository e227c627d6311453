// Accessibility fixes the theme leaves open (axe checks every page in tests/browser):
// - a code annotation marker is a link with no text: name it "Annotation N";
// - a region that scrolls sideways (notebook code cell, wide table, wide equation) must be reachable by
//   keyboard, so it can be scrolled without a mouse.
function nameAnnotations(root) {
  root.querySelectorAll("a.md-annotation__index:not([aria-label])").forEach((a) => {
    const id = a.querySelector("[data-md-annotation-id]");
    a.setAttribute("aria-label", id ? `Annotation ${id.dataset.mdAnnotationId}` : "Annotation");
  });
}
function focusScrollers(root) {
  root.querySelectorAll(".jupyter-wrapper .highlight-ipynb:not([tabindex])").forEach((el) => {
    el.tabIndex = 0;
  });
  // Tables are wrapped and equations typeset in earlier document$ subscribers, so sizes are final here.
  root.querySelectorAll(".md-typeset__scrollwrap, .md-typeset .katex-display").forEach((el) => {
    if (el.scrollWidth > el.clientWidth) el.tabIndex = 0;
    else if (el.getAttribute("tabindex") === "0") el.removeAttribute("tabindex");
  });
}
// Annotations are built asynchronously by the theme: watch for them (cheap: no layout is read).
new MutationObserver(() => nameAnnotations(document)).observe(document.body, { childList: true, subtree: true });
let resizing;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => focusScrollers(document), 200);
});
document$.subscribe(() => {
  nameAnnotations(document);
  focusScrollers(document);
});
