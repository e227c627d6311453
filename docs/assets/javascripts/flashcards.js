// The flashcards page: draws the deck (embedded in the page as #flashcard-deck) and keeps each card's
// SM-2 state in localStorage under STORE. The scheduling itself is srs.js (pure, unit-tested).
(function () {
  "use strict";
  const STORE = "lifecycle.flashcards.v1";
  const FILTER = "lifecycle.flashcards.filter.v1";

  function load(key, fallback) {
    try { return JSON.parse(localStorage.getItem(key)) || fallback; } catch (e) { return fallback; }
  }
  function save(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode: session only */ }
  }

  function init() {
    const root = document.getElementById("flashcards");
    const data = document.getElementById("flashcard-deck");
    if (!root || !data || root.dataset.ready) return;
    root.dataset.ready = "1";
    const deck = JSON.parse(data.textContent);
    const $ = (id) => document.getElementById(id);
    const topic = $("fc-topic"), difficulty = $("fc-difficulty");
    let states = load(STORE, {});
    let current = null;

    for (const t of deck.topics) topic.add(new Option(t.title, t.id));
    for (const d of deck.difficulties) difficulty.add(new Option(d.title, d.id));
    const saved = load(FILTER, {});
    topic.value = saved.topic || "";
    difficulty.value = saved.difficulty || "";

    const filter = () => ({ topic: topic.value, difficulty: difficulty.value });
    const today = () => SRS.dayNumber(new Date());

    function show() {
      const c = SRS.counts(deck.cards, states, today(), filter());
      $("fc-due-count").textContent = c.due;
      $("fc-new-count").textContent = c.fresh;
      $("fc-total-count").textContent = c.total;
      root.dataset.due = c.due;
      current = SRS.nextCard(deck.cards, states, today(), filter());
      $("fc-answer").hidden = true;
      $("fc-grades").hidden = true;
      $("fc-done").hidden = !!current;
      $("fc-card").hidden = !current;
      $("fc-reveal").hidden = !current;
      $("fc-card").dataset.fcCardId = current ? current.id : "";
      if (!current) return;
      const s = states[current.id];
      $("fc-meta").textContent = current.difficulty + " " + current.level + " · " + current.topic_title +
        (s && s.due !== null && s.due !== undefined ? " · review" : " · new");
      $("fc-question").textContent = current.question;
      $("fc-answer").innerHTML = current.answer_html +
        '<details><summary>Deeper</summary>' + current.deeper_html + "</details>" +
        '<details><summary>Common mistake</summary>' + current.mistake_html + "</details>" +
        '<p><a href="' + current.href + '">Open this question on its page</a></p>';
    }

    function reveal() {
      if (!current) return;
      $("fc-answer").hidden = false;
      $("fc-grades").hidden = false;
      $("fc-reveal").hidden = true;
      $("fc-grade-good").focus();
    }

    function grade(g) {
      if (!current || $("fc-answer").hidden) return;
      states[current.id] = SRS.review(states[current.id], g, today());
      save(STORE, states);
      show();
    }

    $("fc-reveal").addEventListener("click", reveal);
    root.querySelectorAll("[data-fc-grade]").forEach((b) =>
      b.addEventListener("click", () => grade(b.dataset.fcGrade)));
    for (const sel of [topic, difficulty]) {
      sel.addEventListener("change", () => { save(FILTER, filter()); show(); });
    }
    const reset = $("fc-reset");
    if (reset) reset.addEventListener("click", () => {
      if (window.confirm("Forget all your flashcard progress in this browser?")) {
        states = {};
        save(STORE, states);
        show();
      }
    });
    document.addEventListener("keydown", (e) => {
      if (e.target.closest && e.target.closest("input, select, textarea")) return;
      if (e.key === " " && !$("fc-reveal").hidden) { e.preventDefault(); reveal(); }
      const i = ["1", "2", "3", "4"].indexOf(e.key);
      if (i >= 0) grade(SRS.GRADES[i]);
    });
    show();
  }

  if (typeof document$ !== "undefined") document$.subscribe(init);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
