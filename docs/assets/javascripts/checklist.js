// The health checklist: mkdocs renders the card's items as task-list checkboxes (disabled); this makes
// them clickable and keeps their state in localStorage under STORE, keyed by the stable ids in data-ids.
(function () {
  "use strict";
  const STORE = "lifecycle.checklist.v1";

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE)) || {}; } catch (e) { return {}; }
  }
  function save(state) {
    try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }

  function init() {
    const root = document.getElementById("health-checklist");
    if (!root || root.dataset.ready) return;
    root.dataset.ready = "1";
    const ids = root.dataset.ids.split(" ");
    const state = load();
    root.querySelectorAll("li.task-list-item").forEach((li, i) => {
      const box = li.querySelector("input[type=checkbox]");
      if (!box || !ids[i]) return;
      const id = ids[i];
      box.disabled = false;
      box.id = "check-" + id;
      box.dataset.checkId = id;
      li.dataset.checkId = id;
      box.setAttribute("aria-label", li.textContent.split(" — ")[0].trim());
      box.checked = !!state[id];
      box.addEventListener("change", () => {
        const now = load();
        if (box.checked) now[id] = true; else delete now[id];
        save(now);
      });
    });
    const reset = document.getElementById("health-checklist-reset");
    if (reset) reset.addEventListener("click", () => {
      save({});
      root.querySelectorAll("input[data-check-id]").forEach((b) => { b.checked = false; });
    });
  }

  if (typeof document$ !== "undefined") document$.subscribe(init);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
