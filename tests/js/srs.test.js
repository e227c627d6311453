// Unit tests of the flashcards' scheduling (docs/assets/javascripts/srs.js). Run: node --test tests/js/
const test = require("node:test");
const assert = require("node:assert/strict");
const SRS = require("../../docs/assets/javascripts/srs.js");

const DAY = 20000;

function run(grades, start = SRS.newCard()) {
  let card = start, day = DAY;
  const intervals = [];
  for (const g of grades) {
    card = SRS.review(card, g, day);
    intervals.push(card.interval);
    day = card.due;
  }
  return { card, intervals };
}

test("intervals grow on good: 1, 6, then times the ease", () => {
  const { intervals } = run(["good", "good", "good", "good"]);
  assert.deepEqual(intervals, [1, 6, 15, 38]);
  for (let i = 1; i < intervals.length; i++) assert.ok(intervals[i] > intervals[i - 1]);
});

test("again resets the interval and the repetitions, and the card is due today", () => {
  const { card } = run(["good", "good", "good"]);
  const lapsed = SRS.review(card, "again", DAY + 100);
  assert.equal(lapsed.interval, 0);
  assert.equal(lapsed.reps, 0);
  assert.equal(lapsed.due, DAY + 100);
  assert.ok(SRS.isDue(lapsed, DAY + 100));
  assert.equal(lapsed.lapses, 1);
  // after a lapse the ladder starts again from 1 day
  assert.equal(SRS.review(lapsed, "good", DAY + 100).interval, 1);
});

test("easy grows faster than good, hard slower", () => {
  const base = run(["good", "good"]).card;
  const hard = SRS.review(base, "hard", base.due);
  const good = SRS.review(base, "good", base.due);
  const easy = SRS.review(base, "easy", base.due);
  assert.ok(hard.interval < good.interval && good.interval < easy.interval);
  assert.ok(easy.ease > good.ease && hard.ease < good.ease);
});

test("ease never falls below 1.3", () => {
  const { card } = run(Array(20).fill("again"));
  assert.equal(card.ease, SRS.MIN_EASE);
});

test("review does not modify its input and rejects unknown grades", () => {
  const card = SRS.newCard();
  const copy = { ...card };
  SRS.review(card, "good", DAY);
  assert.deepEqual(card, copy);
  assert.throws(() => SRS.review(card, "great", DAY), /unknown grade/);
});

test("due today counts only reviewed cards whose day has come, within the filter", () => {
  const items = [
    { id: "a", topic: "memory", difficulty: "🟡" },
    { id: "b", topic: "memory", difficulty: "🔴" },
    { id: "c", topic: "dpo", difficulty: "🔴" },
    { id: "d", topic: "dpo", difficulty: "🟢" },
  ];
  const states = {
    a: SRS.review(SRS.newCard(), "good", DAY - 1), // due DAY
    b: SRS.review(SRS.newCard(), "good", DAY),     // due tomorrow
    c: SRS.review(SRS.newCard(), "again", DAY),    // due today
  };
  assert.deepEqual(SRS.counts(items, states, DAY, {}), { total: 4, due: 2, fresh: 1 });
  assert.deepEqual(SRS.counts(items, states, DAY, { topic: "memory" }), { total: 2, due: 1, fresh: 0 });
  assert.deepEqual(SRS.counts(items, states, DAY, { difficulty: "🔴" }), { total: 2, due: 1, fresh: 0 });
  assert.deepEqual(SRS.counts(items, states, DAY + 1, {}), { total: 4, due: 3, fresh: 1 });
});

test("next card: most overdue first, then new cards, then none", () => {
  const items = [{ id: "a" }, { id: "b" }, { id: "c" }];
  const states = { a: { ...SRS.newCard(), due: DAY - 1, interval: 1 }, b: { ...SRS.newCard(), due: DAY - 5, interval: 1 } };
  assert.equal(SRS.nextCard(items, states, DAY, {}).id, "b");
  assert.equal(SRS.nextCard(items, { a: { due: DAY + 3 }, b: { due: DAY + 3 } }, DAY, {}).id, "c");
  assert.equal(SRS.nextCard(items, { a: { due: DAY + 3 }, b: { due: DAY + 3 }, c: { due: DAY + 1 } }, DAY, {}), null);
});

test("day numbers are whole local days", () => {
  const d1 = SRS.dayNumber(new Date(2026, 0, 1, 0, 5));
  const d2 = SRS.dayNumber(new Date(2026, 0, 1, 23, 55));
  const d3 = SRS.dayNumber(new Date(2026, 0, 2, 0, 5));
  assert.equal(d1, d2);
  assert.equal(d3, d1 + 1);
});
