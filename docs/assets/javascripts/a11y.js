// Accessibility fixes the theme leaves open (axe checks every page in tests/browser):
// - a code annotation marker is a link with no text: name it "Annotation N";
// - a notebook code cell that scrolls sideways must be reachable by keyboard.
function a11y(root) {
  root.querySelectorAll("a.md-annotation__index:not([aria-label])").forEach((a) => {
    const id = a.querySelector("[data-md-annotation-id]");
    a.setAttribute("aria-label", id ? `Annotation ${id.dataset.mdAnnotationId}` : "Annotation");
  });
  root.querySelectorAll(".jupyter-wrapper .highlight-ipynb:not([tabindex])").forEach((el) => {
    el.tabIndex = 0;
  });
}
new MutationObserver(() => a11y(document)).observe(document.body, { childList: true, subtree: true });
document$.subscribe(() => a11y(document));
