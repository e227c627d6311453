"""The synthetic world: seeded, split cleanly, labelled junk, checkers that mean what they say."""

from collections import Counter

from lifecycle.world import TASKS, check_format, check_gold, examples, make_world, web_corpus


def test_same_seed_same_world():
    assert make_world(0) == make_world(0)
    assert make_world(0) != make_world(1)
    assert [d.text for d in web_corpus(n_docs=50, seed=3)] == [
        d.text for d in web_corpus(n_docs=50, seed=3)
    ]


def test_every_task_in_every_split_and_splits_disjoint():
    splits = {s: examples(s) for s in ("train", "val", "test")}
    for s, ex in splits.items():
        assert set(TASKS) == {e.task for e in ex}, s
    prompts = [set(e.prompt for e in ex) for ex in splits.values()]
    assert (
        not (prompts[0] & prompts[1])
        and not (prompts[0] & prompts[2])
        and not (prompts[1] & prompts[2])
    )


def test_fact_tasks_are_learnable_from_the_web():
    """Test-split capitals are never taught by SFT, but the web text states them."""
    text = " ".join(d.text for d in web_corpus(n_docs=4000))
    for e in examples("test", ("capital",)):
        assert e.gold in text


def test_raw_corpus_plants_labelled_junk():
    docs = web_corpus(n_docs=1000, raw=True, leaks=["Quiz: the ferryman whispered lantern."])
    kinds = Counter(d.kind for d in docs)
    for junk in ("exact_dup", "near_dup", "spam", "boilerplate", "leak"):
        assert kinds[junk] > 0, junk
    for d in docs:
        if d.kind == "exact_dup":
            assert d.text == docs[d.source].text
        if d.kind == "near_dup":
            assert d.text != docs[d.source].text
    assert all(
        d.kind in ("fact", "person", "arithmetic", "email", "story")
        for d in web_corpus(n_docs=200)
    )


def test_format_check():
    assert check_format("The capital of A is B.<|end|>")
    assert not check_format("The capital of A is B.")  # never ended its turn
    assert not check_format("<|end|>")  # empty reply
    assert not check_format("line one\nline two<|end|>")
    assert not check_format("Sure<|user|>next question<|end|>")


def test_gold_check_is_whole_word():
    assert check_gold("The capital of Velmora is Tarsk.<|end|>", "Tarsk")
    assert not check_gold("The capital of Velmora is Tarskia.<|end|>", "Tarsk")
    assert check_gold("3 plus 4 is 7.<|end|>", "7")
    assert not check_gold("3 plus 4 is 17.<|end|>", "7")
    assert check_gold("Budget review on Friday<|end|>", "Budget review on Friday")
    assert not check_gold("Blah<|end|>Tarsk", "Tarsk")  # text after the turn does not count
