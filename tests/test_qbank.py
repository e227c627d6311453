"""The question bank: schema, the card covered, one source for pages, deck and export, the JS."""

import copy
import csv
import io
import json
import math
import re
import shutil
import subprocess

import pytest
import yaml

import qbank
from conftest import ROOT
from lifecycle import memory

DOCS = ROOT / "docs"
LAB_KEYS = yaml.safe_load((qbank.DATA / "lab_keys.yaml").read_text())
REQUIRED_TOPICS = {
    "data",
    "objective",
    "memory",
    "parallelism",
    "sft",
    "forgetting",
    "reward",
    "ppo",
    "dpo",
    "precision",
    "schedules",
    "accumulation",
    "checkpointing",
    "stopping",
}


@pytest.fixture(scope="module")
def source():
    return qbank.load()


def test_bank_validates_against_the_schema(source):
    bank, card = source
    # Metric keys: the lab's published snippets/results/<lab>.json when it exists, else the
    # contract list in code/site/data/lab_keys.yaml (the labs are written in parallel; the fallback
    # keeps links checkable).
    assert qbank.check(bank, card, DOCS, qbank.RESULTS, LAB_KEYS) == []


def test_validator_catches_each_kind_of_problem(source):
    bank, card = copy.deepcopy(source[0]), source[1]
    q = bank["questions"]
    q[1]["id"] = q[0]["id"]
    q[2]["difficulty"] = "hard"
    q[3]["links"]["section"] = "§9.9"
    q[4]["links"] = {"section": "§2.3", "lab": "memory", "metric": "no_such_key"}
    q[5]["links"] = {"section": "§2.3", "lab": "no_such_lab"}
    del q[6]["common_mistake"]
    q[7]["topic"] = "astrology"
    problems = "\n".join(qbank.check(bank, card, DOCS, qbank.RESULTS, LAB_KEYS))
    for needle in (
        "duplicate id",
        "difficulty 'hard'",
        "§9.9",
        "'no_such_key' is not a key",
        "no_such_lab",
        "missing common_mistake",
        "unknown topic 'astrology'",
    ):
        assert needle in problems


def test_metric_keys_come_from_published_results_first(tmp_path, source):
    bank, card = copy.deepcopy(source[0]), source[1]
    bank["questions"] = bank["questions"][:1]
    bank["questions"][0]["links"] = {"section": "§1.1", "lab": "sft", "metric": "only_in_results"}
    bank["failures"] = [
        f | {"links": {"section": "§4.3"}} for f in bank["failures"] if f.get("note")
    ]
    # not published: the contract list decides
    assert qbank.check(bank, card, DOCS, tmp_path, LAB_KEYS)
    (tmp_path / "sft.json").write_text(json.dumps({"only_in_results": 0.5, "runs": [{"x": 1}]}))
    assert qbank.check(bank, card, DOCS, tmp_path, LAB_KEYS) == []
    assert qbank.published_keys(tmp_path, "sft") == {"only_in_results", "runs", "runs.x"}


def test_pages_quote_published_results_and_only_those(tmp_path, source):
    bank, card = source
    (tmp_path / "ppo.json").write_text(
        json.dumps(
            {"runs": [{"kl_coef": 0.0, "kl_final": 3.25}, {"kl_coef": 0.05, "kl_final": 0.5}]}
        )
    )
    ppo = qbank.render(bank, card, tmp_path)["questions/ppo.md"]
    assert (
        "metric `runs.kl_final` "
        "(measured at the lesson preset: kl_coef 0: 3.25; kl_coef 0.05: 0.5)" in ppo
    )
    assert (
        "measured at the lesson preset"
        not in qbank.render(bank, card, tmp_path)["questions/memory.md"]
    )


def test_coverage(source):
    bank, _ = source
    qs = bank["questions"]
    assert len(qs) >= 60
    assert sum("source" not in q for q in qs) >= 40
    topics = {q["topic"] for q in qs}
    assert REQUIRED_TOPICS <= topics
    text = json.dumps(qs)
    for relative in ("IPO", "KTO", "ORPO", "GRPO", "ZeRO", "FSDP", "GAE"):
        assert relative in text
    assert len(bank["failures"]) >= 12


def test_every_card_question_is_in_the_bank_word_for_word(source):
    bank, card = source
    by_text = {q["question"]: q for q in bank["questions"]}
    for item in card["self_check"]:
        if item.get("kind") == "pointer":
            continue
        q = by_text.get(item["q"])
        assert q, f"self-check question missing: {item['q']}"
        assert q.get("source") == "self-check" and q["links"]["section"] == item["ref"], q["id"]
    for phrasing in card["interview_phrasings"]:
        assert by_text.get(phrasing, {}).get("source") == "interview", (
            f"interview phrasing missing: {phrasing}"
        )
    assert sum(q.get("source") == "self-check" for q in bank["questions"]) == 15
    assert sum(q.get("source") == "interview" for q in bank["questions"]) == 5


def test_difficulty_follows_the_card_where_the_card_rates_the_topic(source):
    bank, _ = source
    card_rated = {
        "memory": "🟡",
        "parallelism": "🟡",
        "ppo": "🔴",
        "dpo": "🔴",
        "forgetting": "🔴",
    }
    for q in bank["questions"]:
        if q.get("source") and q["topic"] in card_rated:
            assert q["difficulty"] == card_rated[q["topic"]], q["id"]


def test_number_claims_match_the_libraries(source):
    """The bits and bytes the answers quote, checked against torch.finfo and the memory module."""
    import torch

    text = {q["id"]: json.dumps(q, ensure_ascii=False) for q in source[0]["questions"]}
    layout = {}
    for name, dtype in (
        ("fp32", torch.float32),
        ("fp16", torch.float16),
        ("bf16", torch.bfloat16),
    ):
        info = torch.finfo(dtype)
        mantissa = round(-math.log2(info.eps))
        layout[name] = (info.bits - 1 - mantissa, mantissa)
    assert f"fp32 1/{layout['fp32'][0]}/{layout['fp32'][1]}" in text["prec-formats"]
    assert f"fp16 1/{layout['fp16'][0]}/{layout['fp16'][1]}" in text["prec-formats"]
    assert f"bf16 1/{layout['bf16'][0]}/{layout['bf16'][1]}" in text["prec-formats"]
    assert str(int(torch.finfo(torch.float16).max)) in text["sc-bf16-safer"]
    assert f"{layout['bf16'][0]} exponent bits like fp32" in text["sc-bf16-safer"]
    states = memory.model_states(1)
    assert states.total == 16 and (states.weights, states.grads, states.optimizer) == (2, 2, 12)
    assert memory.model_states(1, mixed_precision=False).total == 16
    for qid in ("sc-training-memory", "mem-16-bytes", "int-training-memory"):
        assert re.search(r"16\s+bytes", text[qid]), qid
    per_gpu = [memory.model_states(7.5e9, 64, stage).total / 1e9 for stage in range(4)]
    assert [f"{x:.1f}" for x in per_gpu] == ["120.0", "31.4", "16.6", "1.9"]
    assert "120 GB → 31.4 → 16.6 → 1.9 GB" in text["par-zero-stages"]
    assert "larger β keeps the policy closer to the" in text["dpo-beta"].lower()


def test_grpo_items_quote_trls_defaults(source):
    """The GRPO items state TRL 1.12's own defaults (read from GRPOConfig), and the failure card
    for tied groups links the lab metric that shows it."""
    from trl import GRPOConfig

    defaults = {name: f.default for name, f in GRPOConfig.__dataclass_fields__.items()}
    assert (defaults["beta"], defaults["loss_type"], defaults["scale_rewards"]) == (
        0.0,
        "dapo",
        "group",
    )
    bank = source[0]
    text = {q["id"]: " ".join(str(v) for v in q.values()) for q in bank["questions"]}
    grpo = {q["id"] for q in bank["questions"] if q["topic"] == "grpo"}
    assert {
        "dpo-grpo",
        "grpo-three-ways",
        "grpo-baseline",
        "grpo-zero-variance",
        "grpo-beta-default",
        "grpo-hack-verifiable",
        "grpo-sharpens",
    } <= grpo
    assert (
        "0.0" in text["grpo-beta-default"]
        and "not load a reference model" in text["grpo-beta-default"]
    )
    assert "`GRPOConfig.beta` defaults to 0.0" in text["dpo-grpo"] and '"dapo"' in text["dpo-grpo"]
    assert "larger β keeps the policy" in text["grpo-beta-default"].lower()
    # the k3 estimator TRL computes
    assert "π_ref/π − log(π_ref/π) − 1" in text["grpo-beta-default"]
    card = next(f for f in bank["failures"] if f["id"] == "fail-zero-variance-groups")
    assert card["title"] == "All groups scored the same, so no signal"
    assert card["links"] == {
        "section": "§4.5",
        "lab": "grpo",
        "metric": "zero_variance_group_share",
    }


def extra_question(qid="added-by-test"):
    return {
        "id": qid,
        "question": "Is this question rendered everywhere?",
        "topic": "memory",
        "difficulty": "🟢",
        "answer_30s": "Yes: pages, deck and export.",
        "deeper": "One source.",
        "common_mistake": "Editing a generated file.",
        "follow_ups": ["Which test checks it?"],
        "links": {"section": "§2.3", "lab": "memory", "metric": "static_bytes_rel_error"},
    }


def test_adding_a_question_reaches_pages_deck_and_export(tmp_path, source):
    bank_file = tmp_path / "bank.yaml"
    shutil.copy(qbank.BANK, bank_file)
    before = qbank.render(*qbank.load(bank_file))
    # Edit the source as an author would: one more item at the end of the `questions:` list.
    item = yaml.safe_dump([extra_question()], allow_unicode=True, sort_keys=False)
    text = bank_file.read_text().replace(
        "\nfailures:", "\n" + re.sub(r"(?m)^", "  ", item) + "\nfailures:", 1
    )
    bank_file.write_text(text)
    bank, card = qbank.load(bank_file)
    assert bank["questions"][-1]["id"] == "added-by-test"
    after = qbank.render(bank, card)
    assert qbank.check(bank, card) == []

    assert (
        "{#added-by-test}" in after["questions/memory.md"]
        and "added-by-test" not in before["questions/memory.md"]
    )
    assert "memory.md#added-by-test" in after["questions/index.md"]
    cards = json.loads(after[qbank.DECK_JSON])["cards"]
    assert [c["id"] for c in cards][-1] == "added-by-test"
    assert len(cards) == len(json.loads(before[qbank.DECK_JSON])["cards"]) + 1
    rows = [
        r
        for r in csv.reader(io.StringIO(after[qbank.DECK_TSV]), delimiter="\t")
        if not r[0].startswith("#")
    ]
    assert rows[-1][0] == "lifecycle-added-by-test" and "rendered everywhere" in rows[-1][1]
    assert len(rows) == len(bank["questions"])


def test_anki_export_is_well_formed(source):
    tsv = qbank.render(*source)[qbank.DECK_TSV]
    header = [line for line in tsv.splitlines() if line.startswith("#")]
    assert "#separator:tab" in header and "#html:true" in header and "#guid column:1" in header
    rows = [r for r in csv.reader(io.StringIO(tsv), delimiter="\t") if not r[0].startswith("#")]
    assert len(rows) == len(source[0]["questions"])
    assert all(len(r) == 4 and "\n" not in r[2] for r in rows)
    assert len({r[0] for r in rows}) == len(rows)


def test_checklist_is_the_cards_nine_items(source):
    bank, card = source
    fragment = qbank.render(bank, card)["checklist.md"]
    items = re.findall(r"^- \[ \] (.*?) — (.*)$", fragment, re.M)
    assert [text for text, _ in items] == card["health_check"] and len(items) == 9
    assert all("](" in links for _, links in items)
    ids = re.search(r'data-ids="([^"]+)"', fragment).group(1).split()
    assert len(ids) == 9 == len(set(ids))
    assert "labs/memory.md" in items[2][1] and "labs/pretrain.md" in items[5][1]


def test_failure_cards_have_all_five_parts_and_one_worked_note(source):
    bank, card = source
    fragment = qbank.render(bank, card)["failures.md"]
    assert fragment.count("**Symptom.**") == len(bank["failures"]) >= 12
    assert fragment.count("**Regression check.**") == len(bank["failures"])
    assert fragment.index("{#worked-note}") < fragment.index("{#cards}")
    assert all(f["links"].get("lab") for f in bank["failures"])


@pytest.fixture(scope="module")
def site(built_site):
    return built_site


def html(site, page):
    """A built page, whether use_directory_urls is on (page/index.html) or off (page.html)."""
    nested = site / page / "index.html"
    return (nested if nested.exists() else site / f"{page}.html").read_text()


def test_built_site_has_every_question_page_and_the_downloads(site, source):
    bank, _ = source
    for q in bank["questions"]:
        assert f'id="{q["id"]}"' in html(site, f"questions/{q['topic']}"), q["id"]
    assert (site / "assets" / "flashcards" / "lifecycle-deck.tsv").exists()
    flashcards = html(site, "flashcards")
    deck = json.loads(re.search(r'id="flashcard-deck">(.*?)</script>', flashcards, re.S).group(1))
    assert len(deck["cards"]) == len(bank["questions"])
    for script in ("srs.js", "flashcards.js"):
        assert re.search(rf'src="(\.\./)?assets/javascripts/{script}"', flashcards)
    index = (site / "questions" / "index.html").read_text()
    assert "qbank:" not in index and "lifecycle-deck.tsv" in index
    checklist = html(site, "checklist")
    assert (
        'id="health-checklist"' in checklist and checklist.count('type="checkbox" disabled') == 9
    )
    assert re.search(r'src="(\.\./)?assets/javascripts/checklist.js"', checklist)
    assert "qbank:" not in html(site, "failures")


def test_scheduling_unit_tests_pass_under_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the scheduler's unit tests (tests/js/) need it")
    proc = subprocess.run([node, "--test", "tests/js/"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"^# pass [1-9]", proc.stdout, re.M) and re.search(
        r"^# fail 0", proc.stdout, re.M
    )
