"""Curation: each stage removes what was planted, the curated model wins at the same budget, and
leaked quiz items inflate only the leaked model's score. Bad corpus files are a counted skip or one
line, exit 2."""

import json

import pytest

from conftest import ROOT, error_line, run_lab

KEYS = [
    "docs_raw",
    "docs_after_exact_dedup",
    "docs_after_near_dedup",
    "docs_after_filters",
    "docs_final",
    "near_dup_precision",
    "near_dup_recall",
    "spam_filter_precision",
    "contaminated_docs_found",
    "val_perplexity_raw",
    "val_perplexity_curated",
    "eval_score_leaked_on_leaked_items",
    "eval_score_leaked_on_fresh_items",
    "eval_score_clean_on_leaked_items",
    "docs_per_second",
]


def test_stages_remove_what_was_planted(lab_metrics):
    m = lab_metrics("curation")
    assert set(KEYS) <= m.keys()
    counts = [m[k] for k in KEYS[:5]]
    # every stage removes something
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 5
    assert m["near_dup_precision"] >= 0.9 and m["near_dup_recall"] >= 0.9
    assert m["spam_filter_precision"] >= 0.9
    assert m["contaminated_docs_found"] == m["leak_docs_reaching_decontamination"] > 0
    assert m["leaked_items_found"] == 40 and m["fresh_items_found"] == 0


def test_curated_beats_raw_at_the_same_token_budget(lab_metrics):
    m = lab_metrics("curation")
    assert m["corpus_tokens_raw"] > m["corpus_tokens_curated"]  # more raw tokens ...
    assert m["val_perplexity_curated"] < 0.9 * m["val_perplexity_raw"]  # ... and a worse model


def test_contamination_inflates_only_the_leaked_model(lab_metrics):
    m = lab_metrics("curation")
    leaked_gap = m["eval_score_leaked_on_leaked_items"] - m["eval_score_leaked_on_fresh_items"]
    clean_gap = m["eval_score_clean_on_leaked_items"] - m["eval_score_clean_on_fresh_items"]
    assert leaked_gap >= 0.15
    assert abs(clean_gap) < leaked_gap / 2


def test_committed_lesson_results_meet_the_bar():
    """The published lesson run (make results) keeps the issue's promises."""
    m = json.loads((ROOT / "snippets" / "results" / "curation.json").read_text())
    assert set(KEYS) <= m.keys()
    assert m["near_dup_precision"] >= 0.9 and m["near_dup_recall"] >= 0.9
    assert m["contaminated_docs_found"] == m["leak_docs_reaching_decontamination"]
    assert m["val_perplexity_curated"] < m["val_perplexity_raw"]
    assert m["eval_score_leaked_on_leaked_items"] - m["eval_score_leaked_on_fresh_items"] >= 0.2
    # >= 50k documents a minute: judged on CPU time, since a shared machine inflates the wall clock
    assert (
        m["throughput_docs"] / m["pipeline_cpu_seconds"] * 60 >= 50_000
        and m["throughput_docs"] >= 50_000
    )


def test_bad_lines_are_counted_skips(tmp_path):
    corpus = tmp_path / "c.jsonl"
    lines = [
        json.dumps({"text": d}).encode()
        for d in ["A first clean document about the capital of Brenor and its salt."] * 3
    ]
    corpus.write_bytes(
        b"\n".join([lines[0], b"", b'{"text": "caf\xe9"}', *lines[1:], b""]) + b"\n"
    )
    run_lab(
        "curation",
        "--output_dir",
        str(tmp_path / "out"),
        "--preset",
        "smoke",
        "--corpus",
        str(corpus),
    )
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["skipped_empty_lines"] == 2 and m["skipped_non_utf8_lines"] == 1
    assert m["docs_raw"] == 3 and m["docs_final"] == 1  # two exact copies removed
    assert (tmp_path / "out" / "curated.jsonl").read_text().count("\n") == 1


@pytest.mark.parametrize(
    "extra, content, message",
    [
        (
            ["--corpus", "{f}"],
            b'{"text": "ok"}\n{"body": "no text"}\n',
            "c.jsonl:2: no 'text' field (found: body)",
        ),
        (
            ["--dataset", "no-such/dataset"],
            None,
            "cannot load dataset 'no-such/dataset' from the Hub (offline?)",
        ),
        (["--threshold", "1.5"], None, "--threshold must be in (0, 1]"),
        (["--num_perm", "0"], None, "--num_perm must be a positive number"),
    ],
    ids=["missing-text-column", "hub-offline", "bad-threshold", "bad-num-perm"],
)
def test_bad_input_is_one_line_exit_2(extra, content, message, tmp_path, request):
    """Through the script (other bad files: unit tests of `read_jsonl`). The Hub case runs in a
    fresh process, as a reader meets it (the Hub's libraries might print more); the others in this
    process (`run_lab(here=True)`), about 5 CPU s cheaper each."""
    f = tmp_path / "c.jsonl"
    if content is not None:
        f.write_bytes(content)
    extra = [a.replace("{f}", str(f) if content is not None else str(tmp_path)) for a in extra]
    proc = run_lab(
        "curation",
        *("--output_dir", str(tmp_path / "out"), "--preset", "smoke", *extra),
        check=False,
        here=request.node.callspec.id != "hub-offline",
    )
    line = error_line(proc)
    assert line.startswith("curation: error:"), proc.stderr[-2000:]
    assert message in line
