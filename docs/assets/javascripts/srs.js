// Spaced repetition (SM-2, as Anki uses it), as pure functions: no DOM, no storage, no clock.
// Days are whole local days (integers), so "due today" never depends on the time of day.
// Loaded by the flashcards page as a classic script (window.SRS) and by node for the unit tests.
(function (root) {
  "use strict";

  const GRADES = ["again", "hard", "good", "easy"];
  const START_EASE = 2.5;
  const MIN_EASE = 1.3;

  function newCard() {
    return { reps: 0, interval: 0, ease: START_EASE, due: null, lapses: 0 };
  }

  // One review of `card` graded `grade` on day `today`; returns the new state (the input is not changed).
  function review(card, grade, today) {
    if (!GRADES.includes(grade)) throw new Error("unknown grade: " + grade);
    const c = Object.assign(newCard(), card || {});
    let { reps, interval, ease, lapses } = c;
    if (grade === "again") {
      reps = 0;
      interval = 0; // due again today: relearn it in this session
      ease = Math.max(MIN_EASE, ease - 0.2);
      lapses += 1;
    } else if (grade === "hard") {
      interval = Math.max(1, Math.round(interval * 1.2));
      ease = Math.max(MIN_EASE, ease - 0.15);
      reps += 1;
    } else {
      let next = reps === 0 ? 1 : reps === 1 ? 6 : Math.round(interval * ease);
      if (grade === "easy") {
        next = Math.round(next * 1.3);
        ease += 0.15;
      }
      interval = Math.max(next, interval + 1); // a success never shortens the gap
      reps += 1;
    }
    return { reps, interval, ease: Math.round(ease * 100) / 100, due: today + interval, lapses };
  }

  // A card never reviewed is "new"; a reviewed one is due when its due day has come.
  function isDue(card, today) {
    return !!card && card.due !== null && card.due !== undefined && card.due <= today;
  }

  function isNew(card) {
    return !card || card.due === null || card.due === undefined;
  }

  function matches(item, filter) {
    return (!filter || !filter.topic || item.topic === filter.topic) &&
      (!filter || !filter.difficulty || item.difficulty === filter.difficulty);
  }

  // Counts for the deck's cards that pass `filter`, given the saved `states` ({id: card}).
  function counts(items, states, today, filter) {
    const mine = items.filter((it) => matches(it, filter));
    return {
      total: mine.length,
      due: mine.filter((it) => isDue(states[it.id], today)).length,
      fresh: mine.filter((it) => isNew(states[it.id])).length,
    };
  }

  // The next card to show: the most overdue due card first, then new cards in deck order; null if none.
  function nextCard(items, states, today, filter) {
    const mine = items.filter((it) => matches(it, filter));
    const due = mine.filter((it) => isDue(states[it.id], today))
      .sort((a, b) => states[a.id].due - states[b.id].due);
    if (due.length) return due[0];
    return mine.find((it) => isNew(states[it.id])) || null;
  }

  // Whole local days since 1970-01-01 for a Date (the page passes `new Date()`).
  function dayNumber(date) {
    return Math.floor((date.getTime() - date.getTimezoneOffset() * 60000) / 86400000);
  }

  const SRS = { GRADES, START_EASE, MIN_EASE, newCard, review, isDue, isNew, matches, counts, nextCard, dayNumber };
  if (typeof module !== "undefined" && module.exports) module.exports = SRS;
  else root.SRS = SRS;
})(typeof globalThis !== "undefined" ? globalThis : this);
