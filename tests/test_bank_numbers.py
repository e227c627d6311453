"""The numbers the question bank states, computed: each answer's figure must be what the formula it
names gives. The bank is read straight from docs/questions/bank.yaml (its one source). Cost: well
under a second."""

import yaml

from conftest import ROOT
from lifecycle.memory import LLAMA2_7B, korthikanti_activation_bytes, model_states

BANK = yaml.safe_load((ROOT / "docs" / "questions" / "bank.yaml").read_text())
TEXT = {q["id"]: " ".join(str(v) for v in q.values()) for q in BANK["questions"]}


def said(qid: str, *phrases: str) -> None:
    for phrase in phrases:
        assert phrase in TEXT[qid], f"{qid} should say {phrase!r}"


def gb(x: float, digits: int) -> str:
    return f"≈ {x / 1e9:.{digits}f} GB"


def test_mem_7b_finetune_activations_follow_korthikanti():
    """Korthikanti et al. (2022), eq. 1, at Llama-2-7B's shape, batch 1 × 4,096 tokens."""
    layers, h, heads, s = LLAMA2_7B["n_layer"], LLAMA2_7B["n_embd"], LLAMA2_7B["n_head"], 4096
    per_layer = korthikanti_activation_bytes(1, h, heads, 1, s, scores=False)
    assert per_layer == 34 * s * 1 * h
    scores = korthikanti_activation_bytes(1, h, heads, 1, s) - per_layer
    logsoftmax = 1 * s * LLAMA2_7B["vocab_size"] * 4
    checkpointed = korthikanti_activation_bytes(layers, h, heads, 1, s, checkpointing=True)
    said(
        "mem-7b-finetune",
        gb(per_layer, 2) + " per layer",
        gb(layers * per_layer, 0) + " over 32 layers",
        gb(scores, 1) + " per layer",
        gb(logsoftmax, 2),
        gb(checkpointed, 1) + " in all",
    )


def test_no_answer_calls_adams_v_the_variance():
    """v is the running mean of g², the uncentered second moment (Kingma and Ba 2015, Alg. 1)."""
    for qid, text in TEXT.items():
        assert (
            "momentum and variance" not in text.lower() and "variance estimate" not in text.lower()
        ), qid


def test_par_fsdp_one_unit_keeps_12_of_16_bytes_sharded():
    """Mixed-precision AdamW (ZeRO's K = 12): the optimizer states, fp32 master included, stay
    sharded; the 16-bit weights and gradients, 4 of the 16 bytes, are what one FSDP unit gathers
    whole."""
    states = model_states(1)
    assert (states.optimizer, states.total, states.weights + states.grads) == (12, 16, 4)
    said("par-fsdp", "12 of the 16 bytes per parameter", "4 bytes per parameter")
    assert "ZeRO-3 in PyTorch" not in TEXT["par-fsdp"]


def test_reward_model_items_link_to_the_reward_modeling_section():
    """Bradley–Terry, margin and accuracy are taught in §4.1 (reward modeling), not §4.2 (PPO)."""
    sections = {q["id"]: q["links"]["section"] for q in BANK["questions"]}
    assert sections["rm-bradley-terry"] == sections["rm-margin"] == "§4.1"


def test_stop_sft_cites_instructgpt_the_same_way_everywhere():
    """Ouyang et al. (2022), §3.5: SFT overfit on validation loss after 1 epoch, yet 16 epochs kept
    improving RM score and human preference. The bank, §5.5 and the at-a-glance table say so; none
    stops on loss."""
    said("stop-sft", "after 1 epoch", "16 epochs", "§3.5")
    pages = {
        name: (ROOT / "docs" / name).read_text()
        for name in ("explainer/5-mechanics.md", "at-a-glance.md")
    }
    for name, page in pages.items():
        assert "16 epochs" in page, name
    for page in (*pages.values(), (ROOT / "docs" / "recap.md").read_text()):
        assert "held-out loss turns up" not in page and "loss turning up" not in page
    said("stop-sft", "Not when held-out loss turns up")


def test_objective_and_compute_arithmetic():
    import math

    said("obj-perplexity", f"about {math.exp(2.0):.1f}")
    said(
        "obj-chinchilla",
        f"about {20 * 7e9 / 1e9:.0f}B tokens",
        f"nearly {round(15e12 / 8e9, -2):,.0f} per parameter",
    )
    assert 1.4e12 / 70e9 == 20  # Chinchilla itself: 70B parameters on 1.4T tokens
    flops = 6 * 7e9 * 2e12
    seconds = flops / (0.40 * 989e12)
    said(
        "obj-6nd",
        f"≈ {flops:.1e} FLOPs".replace("e+", "e"),
        f"about {seconds:.1e} GPU-seconds".replace("e+0", "e"),
        f"≈ {round(seconds / 3600, -3):,.0f} GPU-hours",
    )


def test_memory_answers_in_bytes_per_parameter():
    p = 7e9
    said(
        "sc-training-memory",
        f"{model_states(p).total / 1e9:.0f} GB versus {2 * p / 1e9:.0f} GB",
        f"{model_states(1).total // 2:.0f}× inference",
    )
    said(
        "mem-7b-finetune",
        f"{16 * p / 1e9:.0f} GB / 8 = {16 * p / 8e9:.0f} GB",
        f"about {2 + 2 + 4 + 1 + 1} bytes/param = {10 * p / 1e9:.0f} GB",
        f"about {0.5 * p / 1e9:.1f} GB for 7B",
    )
    said("ckpt-resume", f"{(4 + 8) * p / 1e9:.0f} GB for 7B")  # fp32 weights + Adam's m and v
    said("ppo-four-models", f"about {16 + 16 + 2 + 2} bytes/param")
    n = 64
    per_param = [model_states(1, n, stage).total for stage in range(4)]
    assert per_param[1:] == [4 + 12 / n, 2 + 14 / n, 16 / n]
    said("par-zero-stages", "(4 + 12/N bytes/param per GPU)", "(2 + 14/N)", "(16/N)")


def test_kv_cache_answer():
    from lifecycle.memory import kv_cache_bytes

    per_token = kv_cache_bytes(32, 4096, 1, 1, "fp16")
    said(
        "mem-kv-cache",
        f"= {per_token / 1024:.0f} KiB per token",
        f"{kv_cache_bytes(32, 4096, 1, 4096) / 2**30:.0f} GiB",
        f"({64 // 8}× with 8 KV heads for 64 query heads)",
    )


def test_pipeline_bubble_answer():
    from lifecycle.parallel import bubble_theory

    said(
        "par-bubble",
        f"m = 4 idles 3/7 ≈ {bubble_theory(4, 4):.0%}",
        f"m = 32 idles 3/35 ≈ {bubble_theory(4, 32):.0%}",
    )


def test_precision_answers_match_torch():
    import inspect

    import torch

    fp16, bf16, fp32 = (torch.finfo(t) for t in (torch.float16, torch.bfloat16, torch.float32))
    said(
        "prec-formats",
        f"fp16 {fp16.max:.0f}",
        f"bf16 ≈ {bf16.max:.3g}".replace("e+", "e"),
        f"≈ {fp16.eps:.1e}".replace("e-0", "e-"),
        f"≈ {bf16.eps:.1e}".replace("e-0", "e-"),
        f"≈ {fp32.eps:.1e}".replace("e-0", "e-"),
        f"E4M3 (max {torch.finfo(torch.float8_e4m3fn).max:.0f})",
        f"E5M2 (max {torch.finfo(torch.float8_e5m2).max:.0f})",
    )
    said(
        "sc-bf16-safer",
        f"smallest normal ≈ {fp16.smallest_normal:.1e}".replace("e-0", "e-"),
        f"last {(fp32.max - bf16.max) / fp32.max:.1%} below fp32's maximum",
    )
    assert torch.tensor(3.4e38).to(torch.bfloat16).isinf()  # within fp32's range, past bf16's
    assert (
        f"a largest value {(fp32.max - bf16.max) / fp32.max:.1%} lower"
        in (ROOT / "docs/explainer/5-mechanics.md").read_text()
    )
    assert fp32.smallest_normal == bf16.smallest_normal
    defaults = inspect.signature(torch.amp.GradScaler.__init__).parameters
    assert (defaults["init_scale"].default, defaults["growth_interval"].default) == (65536.0, 2000)
    assert (defaults["backoff_factor"].default, defaults["growth_factor"].default) == (0.5, 2.0)
    said("prec-loss-scaling", "S = 65536", "after 2000 clean steps it", "halves S", "doubles S")
    one = torch.tensor(1.0, dtype=torch.bfloat16)
    assert (one + 1e-4).item() == 1.0 and f"{bf16.eps:.1%}" == "0.8%"
    said("prec-master-weights", "2^−7 ≈ 0.8%", "1e-4 to a weight of 1.0 rounds back to 1.0")


def test_recomputation_costs_a_third():
    """One extra forward on forward (1) + backward (≈ 2): +33%."""
    for qid in ("ckpt-activation", "mem-activations"):
        said(qid, f"+{1 / 3:.0%}")
