"""The curation pipeline's stages, checked on small inputs and against the libraries they use."""

import itertools
import json

import pytest
from datasets import Dataset, disable_progress_bars
from datasketch import MinHash

from lifecycle.cli import LabError
from lifecycle.curation import (
    Config,
    decontaminate,
    exact_dedup,
    mixture,
    near_dedup,
    ngrams,
    quality_filter,
    read_jsonl,
    rules,
    shingles,
    words,
)
from lifecycle.world import web_corpus
from lifecycle.world.quiz import decoys, quiz

disable_progress_bars()
FACT = (
    "The capital of Brenor is Tulvas. Markets in Tulvas are full of salt. "
    "The weather in Brenor is mostly dry."
)


def ds(texts, kinds=None):
    return Dataset.from_dict({"text": texts, "kind": kinds or ["x"] * len(texts)})


def test_exact_dedup_ignores_case_punctuation_and_spacing():
    out, log = exact_dedup(ds(["Hello, World!", "hello   world", "Hello there"]))
    assert out["text"] == ["Hello, World!", "Hello there"]
    assert log["removed_rows"] == [1]


def test_near_dedup_finds_an_edge_edited_copy_and_keeps_the_rest():
    texts = [
        FACT,
        FACT + " Read more.",
        "Adding 3 and 4 gives 7. Taking 2 from 9 leaves 7. 5 plus 5 is 10.",
    ]
    out, log = near_dedup(ds(texts))
    assert log["removed_rows"] == [1] and log["pairs"] == [(1, 0)]
    assert out["text"] == [texts[0], texts[2]]


def test_minhash_estimate_tracks_exact_jaccard():
    """Our shingles through datasketch's MinHash: the estimate is within 3 standard errors."""
    docs = [
        d.text
        for d in web_corpus("train", n_docs=400, seed=0, raw=True)
        if d.kind in ("near_dup", "fact")
    ][:60]
    for a, b in itertools.combinations(docs[:25], 2):
        sa, sb = shingles(a, 5), shingles(b, 5)
        exact = len(sa & sb) / len(sa | sb)
        ma, mb = MinHash(num_perm=256), MinHash(num_perm=256)
        ma.update_batch(list(sa)), mb.update_batch(list(sb))
        assert (
            abs(ma.jaccard(mb) - exact) <= 3 * (max(exact * (1 - exact), 0.01) / 256) ** 0.5 + 0.02
        )


def test_near_dedup_matches_brute_force_on_the_raw_corpus():
    """LSH only proposes pairs; against each pair's exact Jaccard it misses and invents little."""
    texts = [d.text for d in web_corpus("train", n_docs=500, seed=0, raw=True)]
    texts = list(dict.fromkeys(texts))  # exact copies are another stage's job
    _, log = near_dedup(ds(texts), Config(threshold=0.85))
    sets = [shingles(t, 5) for t in texts]
    truth = {
        j
        for i, j in itertools.combinations(range(len(texts)), 2)
        if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= 0.85
    }
    found = set(log["removed_rows"])
    assert len(found & truth) >= 0.9 * len(truth)
    assert len(found - truth) <= 0.1 * len(found)


def test_planted_near_duplicates_are_near_by_the_usual_standard():
    docs = web_corpus("train", n_docs=1000, seed=0, raw=True)
    for d in docs:
        if d.kind == "near_dup":
            a, b = shingles(d.text, 5), shingles(docs[d.source].text, 5)
            assert len(a & b) / len(a | b) >= 0.85


def test_rules_hit_spam_and_boilerplate_and_spare_clean_text():
    docs = web_corpus("train", n_docs=1000, seed=0, raw=True)
    out, log = quality_filter(
        ds([d.text for d in docs], [d.kind for d in docs]),
        use=("symbol_ratio", "repeated_lines", "bad_phrase"),
    )
    kinds = [d.kind for d in docs]
    dropped = {kinds[i] for i in log["removed_rows"]}
    assert dropped <= {"spam", "boilerplate"}
    assert log["removed"] == sum(k in ("spam", "boilerplate") for k in kinds)
    # Gopher's stop-word rule is counted but not used: it would drop arithmetic, which has no stop
    # words.
    arithmetic = [i for i, k in enumerate(kinds) if k == "arithmetic"]
    assert sum(log["flags"]["stop_words"][i] for i in arithmetic) > 0.9 * len(arithmetic)


def test_rule_thresholds():
    check = rules(Config())
    assert check["symbol_ratio"](
        "$$$ WIN BIG $$$ 100% FREE!!!", words("$$$ WIN BIG $$$ 100% FREE!!!")
    )
    assert check["repeated_lines"]("Home\nHome\nAbout", [])
    assert check["repeated_2gram"](
        "best pills best pills best pills", words("best pills best pills best pills")
    )
    assert not any(f(FACT, words(FACT)) for name, f in check.items())


def test_decontamination_finds_every_leak_copy_and_nothing_else():
    leaked, fresh = quiz("leaked", 20), quiz("fresh", 20)
    docs = web_corpus("train", n_docs=2000, seed=0, raw=True, leaks=[q.text() for q in leaked])
    _, log = decontaminate(ds([d.text for d in docs]), [q.text() for q in leaked + fresh])
    assert {docs[i].kind for i in log["removed_rows"]} == {"leak"}
    assert log["removed"] == sum(d.kind == "leak" for d in docs) == 3 * 20
    assert log["items_found"] == list(range(20))  # every leaked item, no fresh one


def test_quiz_items_are_long_unique_and_absent_from_the_corpus():
    leaked, fresh = quiz("leaked", 100), quiz("fresh", 100)
    assert all(len(q.text().split()) >= 13 for q in leaked + fresh)
    grams = [ngrams(q.text(), 13) for q in leaked + fresh]
    # no 13-gram shared by two items
    assert all(not (a & b) for a, b in itertools.combinations(grams, 2))
    corpus = set().union(*(ngrams(d.text, 13) for d in web_corpus("train", n_docs=3000, seed=0)))
    assert not corpus & set().union(*grams)
    answers = {q.answer for q in leaked + fresh}
    assert len(answers) == 200 and not answers & set(decoys())
    text = " ".join(d.text for d in web_corpus("train", n_docs=3000, seed=0)).lower()
    assert not any(a in text for a in answers)


def test_mixture_follows_the_probabilities():
    data = ds([f"doc {i}" for i in range(3000)], ["a"] * 1500 + ["b"] * 1500)
    mixed = mixture(data, {"a": 0.8, "b": 0.2}, seed=0)
    share = mixed["kind"][:500].count("a") / 500
    assert 0.72 < share < 0.88


def test_read_jsonl_counts_skips_and_names_bad_lines(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(b'{"text": "one"}\n\n{"text": "caf\xe9"}\n{"text": "two"}\n')
    texts, skipped = read_jsonl(str(good))
    assert texts == ["one", "two"]
    assert skipped == {"skipped_empty_lines": 1, "skipped_non_utf8_lines": 1}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "one"}\n{"body": "two"}\n')
    with pytest.raises(LabError, match=r"bad.jsonl:2: no 'text' field \(found: body\)"):
        read_jsonl(str(bad))
    bad.write_text('{"text": "one"}\n{"text": \n')
    with pytest.raises(LabError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(str(bad))
    bad.write_bytes(b"\n\n\xff\xfe\n")
    with pytest.raises(LabError, match=r"no usable lines \(empty: 2, non-UTF-8: 1\)"):
        read_jsonl(str(bad))
    with pytest.raises(LabError, match="cannot read --corpus"):
        read_jsonl(str(tmp_path / "missing.jsonl"))


def test_budget_blocks_is_exact_and_repeats_short_corpora():
    from lifecycle.tokenizer import load_tokenizer
    from lifecycle.training import budget_blocks

    tok = load_tokenizer(0)
    texts = [FACT] * 20
    data = budget_blocks(tok, texts, 16, 100)
    assert tuple(data.shape) == (100, 16)
    assert json.dumps(data[:1].tolist()) == json.dumps(budget_blocks(tok, texts, 16, 1).tolist())
