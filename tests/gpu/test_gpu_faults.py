"""Regression tests for what a GPU session met (issue #12), and the GPU check's own parts.

The lab runs are the ones test_gpu_presets_*.py make (cached per code fingerprint, built once under
a lock), so these tests add little: about 15 CPU seconds, for importing every lab and one memory
run through check.sh.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, load_lab
from gpu.conftest import check, standin_hub
from lifecycle.cli import parse


def test_every_gpu_preset_passes_its_own_checks(tmp_path):
    """pretrain's gpu preset set train_docs=0 and its own positivity check rejected it, so every
    reader of the GPU tab stopped at once. Every lab's gpu preset, with no overrides, must pass its
    argument checks."""
    for lab in check.lab_names():
        module = load_lab(lab)
        parse(
            module.Args, module.PRESETS, ["--output_dir", str(tmp_path / lab), "--preset", "gpu"]
        )


def test_dpo_runs_no_other_lab(gpu_check):
    """dpo.py --preset gpu first ran the whole PPO lab (and the stages PPO needs) to fill its
    machinery table. Now it resolves only the SFT stage, and the check fails any lab that builds a
    stage it was not given."""
    assert check.upstream("dpo") == ["sft"]
    result = gpu_check.ensure("dpo")
    assert result.exit_code == 0, result.note
    built_by_a_lab = [
        p.name
        for p in gpu_check.cache.glob("*-gpu-s*")
        if ".tmp" not in p.name and not (p / "check.json").exists()
    ]
    assert not built_by_a_lab


def test_dpo_machinery_table_uses_only_existing_results():
    """The table gets the results that exist; no PPO run: a column says so."""
    from lifecycle.rlhf import machinery_table

    ppo = json.loads((ROOT / "snippets" / "results" / "ppo.json").read_text()) | {
        "peak_rss_mib": 900.0
    }
    mine = json.loads((ROOT / "snippets" / "results" / "dpo.json").read_text()) | {
        "peak_rss_mib": 800.0
    }
    missing = machinery_table({"PPO": None, "DPO": mine}, "gpu", 0)
    assert "No PPO run with `--preset gpu --seed 0` is in the cache" in missing
    # the measured rows of the PPO column: parameters, + gradients and AdamW state, model memory,
    # by model, replies sampled, wall time
    assert missing.count("no run yet") == 6
    present = machinery_table({"PPO": ppo, "DPO": mine}, "lesson", 0)
    assert "no run yet" not in present and f"{ppo['replies_sampled_per_run']:,}" in present


def test_dpo_tokenizes_its_pairs_once(gpu_check):
    """DPO re-tokenized the same pairs once per β. Three β, one tokenization of each split
    (probe.py counts the lab's `Dataset.map` calls)."""
    assert len(load_lab("dpo").PRESETS["gpu"]["betas"].split(",")) == 3
    maps = gpu_check.ensure("dpo").dataset_maps
    assert maps["Tokenizing train dataset"] == 1 and maps["Tokenizing eval dataset"] == 1, maps


def test_chat_template_runs_on_the_device_and_reports_progress(gpu_check, monkeypatch):
    """chat_template --preset gpu printed nothing for 45 s on an H200: nothing in it trains, so no
    Trainer ever moved the SFT model to the GPU, and it generated 4 × 174 replies of up to 48
    tokens with GPT-2-124M on the CPU, silently. Now `load()` places every model on the GPU when
    there is one, and the lab prints a line per template."""
    import lifecycle.models

    result = gpu_check.ensure("chat_template")
    assert result.exit_code == 0, result.note
    log = (gpu_check.stage("chat_template") / "log.txt").read_text()
    assert sum(f"{name}: format rate" in log for name in load_lab("chat_template").TEMPLATES) == 4
    # load() puts the model wherever device() says: the meta device stands in for a GPU here
    monkeypatch.setattr(lifecycle.models, "device", lambda: torch.device("meta"))
    model, _ = lifecycle.models.load(str(gpu_check.stage("sft") / "model"))
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_memory_gpu_peak_check(gpu_check):
    """The one part of any gpu preset that truly needs CUDA: the memory lab's step peaks, read from
    torch.cuda.max_memory_allocated (on a CPU the same rows come from the profiler,
    tests/labs/test_memory.py). A later step holds AdamW's m and v, so it peaks above the first, on
    the GPU too."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA: the memory lab's GPU peaks read torch.cuda.max_memory_allocated")
    result = gpu_check.ensure("memory")
    assert result.exit_code == 0, result.note
    peaks = json.loads((gpu_check.stage("memory") / "metrics.json").read_text())["peaks"]
    assert len(peaks) == 8 and all(r["measured_peak_bytes"] > 0 for r in peaks)
    first = {
        (r["dtype"], r["checkpointing"]): r["measured_peak_bytes"]
        for r in peaks
        if r["first_step"]
    }
    assert all(
        r["measured_peak_bytes"] > first[r["dtype"], r["checkpointing"]]
        for r in peaks
        if not r["first_step"]
    )
    assert torch.cuda.get_device_name(0) in (gpu_check.stage("memory") / "results.md").read_text()


def test_standin_is_gpt2_shaped(standin_hub_home):
    """The stand-in's gpt2 has GPT-2's tokenizer facts; the gpt2 flavour has GPT-2-124M's exact
    size; the datasets have the real columns and splits."""
    from datasets import load_dataset
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained("gpt2", cache_dir=standin_hub_home / "hub")
    assert len(tok) == 50257 and tok.convert_tokens_to_ids("<|endoftext|>") == 50256
    assert (
        tok.bos_token == tok.eos_token == tok.unk_token == "<|endoftext|>"
        and tok.all_special_tokens == ["<|endoftext|>"]
    )
    assert tok.pad_token is None and tok.chat_template is None and tok.model_max_length == 1024
    with torch.device("meta"):
        model = GPT2LMHeadModel(
            GPT2Config(vocab_size=standin_hub.VOCAB, **standin_hub.SHAPES["gpt2"])
        )
    assert sum(p.numel() for p in model.parameters()) == 124_439_808
    cache = str(standin_hub_home / "datasets")
    expect = {
        ("Salesforce/wikitext", "wikitext-2-raw-v1"): ({"train", "validation", "test"}, ["text"]),
        ("Salesforce/wikitext", "wikitext-103-raw-v1"): (
            {"train", "validation", "test"},
            ["text"],
        ),
        ("trl-lib/Capybara", None): ({"train", "test"}, ["source", "messages", "num_turns"]),
        ("trl-lib/ultrafeedback_binarized", None): (
            {"train", "test"},
            ["chosen", "rejected", "score_chosen", "score_rejected"],
        ),
        ("openai/gsm8k", "main"): ({"train", "test"}, ["question", "answer"]),
    }
    for (name, config), (splits, columns) in expect.items():
        ds = load_dataset(name, config, cache_dir=cache)
        assert set(ds) == splits and ds["train"].column_names == columns, name
    answer = load_dataset("openai/gsm8k", "main", cache_dir=cache)["test"][0]["answer"]
    assert answer.rsplit("\n", 1)[1].startswith("#### ") and answer.rsplit(" ", 1)[1].isdigit()


def test_check_sh_prints_the_table(tmp_path):
    """code/gpu/check.sh, the GPU session's one command, run on the CPU with the tiny stand-in and
    one lab: it builds the stand-in, runs the lab, and prints and writes the table."""
    env = os.environ | {"PYTHON": sys.executable}
    proc = subprocess.run(
        [
            "bash",
            "code/gpu/check.sh",
            "--flavour",
            "tiny",
            "--cpu",
            "--out",
            str(tmp_path),
            "memory",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (
        "| lab | exit code | seconds | peak GPU memory (GiB) | tokens/s (Trainer steps) | note |"
        in proc.stdout
    )
    assert "| memory | 0 |" in proc.stdout and "stand-in gpt2 `tiny`" in proc.stdout
    (row,) = json.loads((tmp_path / "gpu-check.json").read_text())
    assert row["lab"] == "memory" and row["exit_code"] == 0 and row["seconds"] > 0
    # memory trains without a Trainer: no number rather than a wrong one
    assert row["tokens_per_second"] is None
    assert (row["peak_gpu_bytes"] is None) == (not torch.cuda.is_available())


def test_published_gpu_check_is_the_check_table():
    """snippets/results/gpu-check.md is check.py's own table of the runs in gpu-check.json (one
    H200), not typed: rebuilt from the JSON it is the same text. Every lab passed but GRPO, which
    ran past the check's time cap (the labs index says so), and every lab was checked."""
    results = json.loads((ROOT / "snippets" / "results" / "gpu-check.json").read_text())
    text = (ROOT / "snippets" / "results" / "gpu-check.md").read_text()
    assert check.table([check.Result(**r) for r in results]) in text
    assert text.startswith("Checked on NVIDIA H200, ")
    codes = {r["lab"]: (r["exit_code"], r["note"]) for r in results}
    assert codes.pop("grpo") == (124, "timed out after 100 s")
    assert all(code == 0 for code, _ in codes.values())
    assert {r["lab"] for r in results} == set(check.lab_names())
