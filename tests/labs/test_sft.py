"""SFT: the base continues text and the SFT model answers; clean beats noisy. (Your own `--data`
files: tests/test_data.py and tests/test_reader_data.py.)"""

import json

from conftest import ROOT, error_line, load_lab, run_lab
from lifecycle.robustness import failures
from lifecycle.world import check_format, examples
from lifecycle.world.tasks import PROXY_KEYWORD


def test_sft_teaches_the_format(lab_metrics):
    m = lab_metrics("sft")
    assert m["format_rate_before"] <= 0.2  # the base model has never seen a role marker
    assert m["format_rate_after"] >= 0.7
    assert m["format_rate_after"] >= m["format_rate_before"] + 0.5
    assert m["task_accuracy_after"] >= m["task_accuracy_before"]


def test_smoke_run_keeps_every_claim_it_measures(lab_metrics):
    """The same `CLAIMS` as the published lesson run and `make robustness`: the format is learned
    and held-out accuracy rises by more than 30 points (the smoke stage: about 40 CPU s). The
    smoke preset skips the noisy run, which would double that, so "clean beats noisy" is checked
    on the lesson run only (test_committed_lesson_results_meet_the_targets, `make robustness`)."""
    m = lab_metrics("sft")
    assert "task_accuracy_noisy_large" not in m
    assert failures("sft", m, skip=("clean data beats the larger noisy set",)) == []


def test_sft_saves_a_loadable_model(lab_metrics):
    from lifecycle.models import load

    model, tokenizer = load(str(ROOT / lab_metrics("sft")["_dir"] / "model"))
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert "{% generation %}" in tokenizer.chat_template


def test_hack_and_style_shares_wrap_about_that_many_answers():
    lab = load_lab("sft")
    rows = lab.world_rows(500, noise=0.0, hack=0.1, style=0.2, seed=0)
    hacked = sum(PROXY_KEYWORD in r["messages"][1]["content"] for r in rows)
    assert 25 <= hacked <= 75
    gold = {e.prompt: e.answer for e in examples("train")}
    tailed = sum(
        not r["messages"][1]["content"].endswith(gold[r["messages"][0]["content"]]) for r in rows
    )
    assert 70 <= tailed <= 130  # a rude or rambling tail after the answer
    assert all(check_format(r["messages"][1]["content"] + "<|end|>") for r in rows)
    noisy = lab.world_rows(500, noise=0.5, hack=0.0, style=0.0, seed=0)
    gold = {e.prompt: e.gold for e in examples("train")}
    wrong = sum(
        gold[r["messages"][0]["content"]] not in r["messages"][1]["content"] for r in noisy
    )
    assert 200 <= wrong <= 300


def test_committed_lesson_results_meet_the_targets():
    """The published lesson run (snippets/results/sft.json) shows the issue's targets."""
    m = json.loads((ROOT / "snippets" / "results" / "sft.json").read_text())
    assert m["format_rate_before"] <= 0.2 and m["format_rate_after"] >= 0.9
    assert m["task_accuracy_clean_small"] > m["task_accuracy_noisy_large"]
    assert m["noisy_rows"] > m["train_rows"]


def test_gpu_preset_offline_is_one_line_exit_2(tmp_path):
    proc = run_lab("sft", "--output_dir", str(tmp_path / "out"), "--preset", "gpu", check=False)
    assert "could not be fetched from the Hub" in error_line(proc)


def test_trl_masks_exactly_the_assistant_tokens(tmp_path):
    """What the page claims: SFTTrainer's labels are the input ids on the assistant's tokens, -100
    elsewhere, the same mask our chat template's `{% generation %}` block gives, and `chat_row`
    (the rows the lab trains on) gives."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from lifecycle.models import build_model
    from lifecycle.tokenizer import load_tokenizer
    from lifecycle.training import chat_row

    tok = load_tokenizer()
    chats = [e.messages() for e in examples("train", ("capital", "summary"))[:4]]
    config = SFTConfig(
        output_dir=str(tmp_path),
        assistant_only_loss=True,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
        max_steps=1,
    )
    trainer = SFTTrainer(
        model=build_model("smoke", tok),
        args=config,
        processing_class=tok,
        train_dataset=Dataset.from_list([{"messages": c} for c in chats]),
    )
    for row, chat in zip(trainer.train_dataset, chats):
        enc = tok.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
        assert chat_row(tok, {"messages": chat}) == {
            k: enc[k] for k in ("input_ids", "assistant_masks")
        }
        assert row["input_ids"] == enc["input_ids"]
        assert row["labels"] == [
            i if m else -100 for i, m in zip(enc["input_ids"], enc["assistant_masks"])
        ]
        # the turn's <|end|> is learned: the model learns to stop
        assert row["labels"][-1] == tok.eos_token_id
