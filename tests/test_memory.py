"""The memory arithmetic: exact parameter counts, the ZeRO paper's example and its communication,
the activation formula against autograd on the CPU for every option, and the step's peak against
the profiler's memory timeline. Cost: about 20 s here (two fresh processes for the CLI, 48 tiny
forward/backward passes, 6 profiled steps)."""

import itertools
import json
import re
import subprocess
import sys
from contextlib import nullcontext

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import ROOT, error_line
from lifecycle.memory import (
    GPT2_FAMILY,
    Step,
    activation_bytes,
    cpu_peak_bytes,
    enable_checkpointing,
    gpt2_params,
    inference_bytes,
    kv_cache_bytes,
    model_states,
    saved_activation_bytes,
    step_peak,
    zero_collectives,
    zero_traffic,
)

# a tiny GPT-2 and batch: every term of the formula is present
L, H, A, V, B, S = (2, 32, 4, 200, 3, 12)


@pytest.mark.parametrize("name", list(GPT2_FAMILY))
def test_gpt2_family_parameter_counts_are_exact(name):
    n_layer, n_embd, n_head = GPT2_FAMILY[name]
    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head))
    assert gpt2_params(n_layer, n_embd) == sum(p.numel() for p in model.parameters())


def test_zero_paper_example_7_5b_on_64_gpus():
    """Rajbhandari et al. (2020), Figure 1: Ψ = 7.5B, N_d = 64, K = 12."""

    def gb(stage):
        return model_states(7.5e9, gpus=64, zero_stage=stage).total / 1e9

    assert gb(0) == pytest.approx(120)
    assert gb(1) == pytest.approx(31.4, abs=0.05)
    assert gb(2) == pytest.approx(16.6, abs=0.05)
    assert gb(3) == pytest.approx(1.9, abs=0.05)


def test_zero_communication_model():
    """ZeRO §7: stages 1-2 move what DDP moves (2Ψ); stage 3 moves 3Ψ, none after the step."""
    assert [zero_traffic(s) for s in range(4)] == [2.0, 2.0, 2.0, 3.0]
    after_step = [what for op, what, when, _ in zero_collectives(3) if "after" in when]
    assert after_step == []
    gathers = [when for op, what, when, _ in zero_collectives(3) if op == "all-gather"]
    assert (
        len(gathers) == 2
        and any("forward" in w for w in gathers)
        and any("backward" in w for w in gathers)
    )
    assert ("all-gather", "updated weights", "after the optimizer step", 1.0) in zero_collectives(
        1
    )


def test_parallelism_table_matches_the_communication_model():
    """§2.4's table: each ZeRO row names exactly the collectives of `zero_collectives`, and stage 3
    no all-gather of updated weights after the step."""
    page = (ROOT / "docs" / "explainer" / "2-pretraining.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (ZeRO-[^|]*?) \|.*$", page, re.M)}
    stage12 = next(r for k, r in rows.items() if "1" in k and "2" in k)
    stage3 = next(r for k, r in rows.items() if "3" in k)
    for row, stage in ((stage12, 1), (stage3, 3)):
        cells = row.split("|")[4].lower()  # "what is communicated"
        for op, what, _when, _ in zero_collectives(stage):
            assert op in cells and what.split()[-1] in cells, (stage, op, what, cells)
    communicated3 = stage3.split("|")[4]
    assert (
        "updated weights" not in communicated3
        and "forward" in communicated3
        and "backward" in communicated3
    )


def test_inference_travels_light():
    params = gpt2_params(12, 768)
    kv = kv_cache_bytes(12, 768, batch=1, seq_len=1024)
    assert kv == 2 * 12 * 768 * 1024 * 2
    assert model_states(params).total / inference_bytes(params, kv_cache=kv) > 6


def test_params_from_config_and_tensor_count():
    from lifecycle.memory import gpt2_param_tensors, params_from_config

    config = GPT2Config(n_layer=3, n_embd=48, n_head=4, vocab_size=300, n_positions=40)
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    params = list(model.parameters())
    assert params_from_config(config) == sum(p.numel() for p in params)
    assert gpt2_param_tensors(3) == len(params)  # the tied lm_head is not a second tensor


def test_llama_7b_count_matches_transformers():
    from transformers import LlamaConfig, LlamaForCausalLM

    from lifecycle.memory import LLAMA2_7B, llama_params

    s = LLAMA2_7B
    config = LlamaConfig(
        hidden_size=s["n_embd"],
        intermediate_size=s["intermediate"],
        num_hidden_layers=s["n_layer"],
        num_attention_heads=s["n_head"],
        vocab_size=s["vocab_size"],
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    expected = llama_params(s["n_layer"], s["n_embd"], s["intermediate"], s["vocab_size"])
    assert expected == sum(p.numel() for p in model.parameters()) == 6_738_415_616


def tiny(step: Step, **config) -> GPT2LMHeadModel:
    p = step.dropout
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            n_layer=L,
            n_embd=H,
            n_head=A,
            vocab_size=V,
            n_positions=16,
            bos_token_id=0,
            eos_token_id=0,
            resid_pdrop=p,
            embd_pdrop=p,
            attn_pdrop=p,
            use_cache=step.use_cache,
            attn_implementation="eager" if step.attn == "eager" else "sdpa",
            **config,
        )
    ).train()
    if step.checkpointing:
        enable_checkpointing(model)
    return model


def run_step(model, ids, step: Step, optimizer=None):
    """Forward with the loss and backward, as the lab does it (math backend for backward too)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH) if step.attn == "math" else nullcontext():
        with (
            torch.autocast("cpu", dtype=torch.bfloat16) if step.dtype == "bf16" else nullcontext()
        ):
            loss = model(ids, labels=ids).loss
        loss.backward()
    if optimizer:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


GRID = list(
    itertools.product(
        ("sdpa", "eager", "math"), ("fp32", "bf16"), (0.0, 0.1), (False, True), (True, False)
    )
)


@pytest.mark.parametrize("attn, dtype, dropout, checkpointing, use_cache", GRID)
def test_activation_formula_is_exact_on_cpu(attn, dtype, dropout, checkpointing, use_cache):
    """Every option's CPU part: the formula equals the bytes autograd saves, to the byte."""
    step = Step("cpu", attn, dtype, dropout, checkpointing, use_cache)
    model = tiny(step)
    ids = torch.randint(0, V, (B, S))
    measured = saved_activation_bytes(model, lambda: run_step(model, ids, step))
    assert measured == activation_bytes(L, H, A, V, B, S, step)


def test_options_change_the_bytes_the_way_the_page_says():
    """Each option's direction on a GPU (the CUDA rules): fused attention keeps no s×s term, so its
    bytes grow linearly in s; bf16 autocast saves less than fp32; dropout adds 1-byte masks;
    checkpointing keeps little; use_cache=False drops the k, v copies."""

    def at(s, **kw):
        return activation_bytes(12, 768, 12, 50257, 1, s, Step(**kw))

    fused = [at(s) - at(0) for s in (1024, 2048)]
    eager = [at(s, attn="eager") - at(0, attn="eager") for s in (1024, 2048)]
    assert fused[1] == pytest.approx(2 * fused[0], rel=1e-3) and eager[1] > 2.5 * eager[0]
    assert at(1024) < at(1024, dtype="fp32")
    masks = at(1024) - at(1024, dropout=0.0)
    # two residual masks per block and the embedding's, 1 byte each
    assert masks == 1024 * 768 * (2 * 12 + 1)
    assert at(1024, checkpointing=True) < at(1024) / 3
    assert at(1024) - at(1024, use_cache=False) == 12 * 1024 * 2 * 768 * 2


def test_what_to_try_checkpointing_gpt2_xl():
    """memory.md, What to try: `estimate --model gpt2-xl --batch 8 --seq-len 1024`, then with
    `--checkpointing`. The saved activations fall by more than 10x, the model states stay, and the
    peak falls far less: it moves to the optimizer step, which the model states set."""
    from lifecycle.memory import estimate_cli

    flags = ["--model", "gpt2-xl", "--batch", "8", "--seq-len", "1024"]
    full, ckpt = estimate_cli(flags), estimate_cli([*flags, "--checkpointing"])
    assert full["activation_bytes"] > 10 * ckpt["activation_bytes"]
    assert full["model_state_bytes_per_gpu"] == ckpt["model_state_bytes_per_gpu"]
    assert full["peak_bytes"] / ckpt["peak_bytes"] < 3
    assert (full["peak_phase"], ckpt["peak_phase"]) == ("backward start", "optimizer")
    assert ckpt["model_state_bytes_per_gpu"] > ckpt["peak_bytes"] / 2


PEAKS = [
    ("fp32", False, False),
    ("bf16", False, False),
    ("fp32", False, True),
    ("fp32", True, False),
    ("bf16", True, False),
    ("bf16", True, True),
]


@pytest.mark.parametrize("dtype, checkpointing, first_step", PEAKS)
def test_step_peak_against_the_cpu_memory_timeline(dtype, checkpointing, first_step):
    """The step's peak, measured from every allocation and free the profiler records. Backward
    start (saved tensors plus two b×s×V fp32 gradients) is exact to 1%; the blocks phase, a model,
    to 6%."""
    shape = (2, 64, 4, 512, 4, 64)
    step = Step("cpu", "sdpa", dtype, 0.1, checkpointing)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            n_layer=2,
            n_embd=64,
            n_head=4,
            vocab_size=512,
            n_positions=64,
            bos_token_id=0,
            eos_token_id=0,
        )
    ).train()
    if checkpointing:
        enable_checkpointing(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, 512, shape[-2:])
    if not first_step:
        run_step(model, ids, step, optimizer)
    measured = (
        cpu_peak_bytes(lambda: run_step(model, ids, step, optimizer))
        - ids.untyped_storage().nbytes()
    )
    predicted = step_peak(*shape, step, n_positions=64, first_step=first_step)
    error = abs(predicted["peak"] - measured) / measured
    assert error <= (0.06 if predicted["phase"] == "blocks" else 0.01), (predicted, measured)
    assert predicted["phase"] == ("blocks" if checkpointing else "backward start")


def test_step_rejects_unknown_options():
    with pytest.raises(ValueError):
        Step(attn="flash")
    with pytest.raises(ValueError):
        Step(dropout=1.0)


def test_estimate_keys_and_kv_cache_follows_batch():
    from lifecycle.memory import estimate

    out = estimate(124e6, shape=(12, 768, 12, 50257), batch=8, seq_len=1024)
    assert out["kv_cache_bytes"] == kv_cache_bytes(12, 768, 8, 1024)
    assert out["master_weights_bytes"] + out["adam_moments_bytes"] == out["optimizer_bytes"]
    assert out["peak_phase"] == "backward start" and out["peak_bytes"] > out["activation_bytes"]
    assert "activation_bytes" not in estimate(124e6)
    assert "peak_bytes" not in estimate(
        124e6, gpus=8, zero_stage=3, shape=(12, 768, 12, 50257), batch=8, seq_len=1024
    )


def estimate(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle.memory", "estimate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert not check or proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.mark.parametrize("stage, gb", [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_estimate_cli_reproduces_zero_paper(stage, gb, capsys):
    from lifecycle.memory import main

    main(["estimate", "--params", "7.5e9", "--gpus", "64", "--zero-stage", str(stage), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["model_state_bytes_per_gpu"] / 1e9 == pytest.approx(gb, abs=0.05)
    assert (
        out["weights_bytes"] + out["grads_bytes"] + out["optimizer_bytes"]
        == out["model_state_bytes_per_gpu"]
    )


def test_estimate_cli_contract_named_model():
    """A reader's command, in a fresh process: GPU defaults, each option explicit in the output."""
    out = json.loads(
        estimate("--model", "gpt2-medium", "--batch", "8", "--seq-len", "1024", "--json").stdout
    )
    assert out["params"] == 354_823_168
    assert out["kv_cache_bytes"] == 2 * 24 * 1024 * 8 * 1024 * 2
    assert out["model_state_bytes_per_gpu"] == 16 * out["params"]
    assert (out["device"], out["attn"], out["dtype"], out["dropout"]) == (
        "cuda",
        "sdpa",
        "bf16",
        0.1,
    )
    assert out["activation_bytes"] == activation_bytes(24, 1024, 16, 50257, 8, 1024, Step())


def test_estimate_cli_options_reach_the_formula(capsys):
    from lifecycle.memory import main

    args = ["estimate", "--model", "gpt2", "--batch", "2", "--seq-len", "512", "--json"]
    main(
        [
            *args,
            "--attn",
            "eager",
            "--dtype",
            "fp32",
            "--dropout",
            "0",
            "--checkpointing",
            "--device",
            "cpu",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["activation_bytes"] == activation_bytes(
        12, 768, 12, 50257, 2, 512, Step("cpu", "eager", "fp32", 0.0, True)
    )
    main(["estimate", "--model", "llama-2-7b", "--batch", "1", "--seq-len", "4096", "--json"])
    assert json.loads(capsys.readouterr().out)["dropout"] == 0.0  # Llama-2's config has no dropout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpus", "8"], "one of the arguments --params --model is required"),
        (["--params", "1e9", "--zero-stage", "4"], "--zero-stage"),
        (["--params", "-1"], "must be positive"),
        (["--model", "gpt2", "--attn", "flash"], "--attn"),
        (["--model", "gpt2", "--dropout", "1.5"], "--dropout"),
    ],
    ids=["no-size", "bad-stage", "negative", "bad-attn", "bad-dropout"],
)
def test_estimate_bad_input_raises_lab_error(args, message):
    from lifecycle.cli import LabError
    from lifecycle.memory import main

    with pytest.raises(LabError, match=message):
        main(["estimate", *args])


def test_estimate_bad_input_is_one_line_exit_2():
    line = error_line(estimate("--gpus", "8", check=False))
    assert line.startswith("memory: error: estimate:") and "--params --model" in line
