"""The numbers the question bank states, computed: each answer's figure must be what the formula it names
gives. The bank is read straight from docs/questions/bank.yaml (its one source). Cost: well under a second."""

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
    said("mem-7b-finetune", gb(per_layer, 2) + " per layer", gb(layers * per_layer, 0) + " over 32 layers",
         gb(scores, 1) + " per layer", gb(logsoftmax, 2), gb(checkpointed, 1) + " in all")


def test_no_answer_calls_adams_v_the_variance():
    """v is the running mean of g², the uncentered second moment (Kingma and Ba 2015, Algorithm 1)."""
    for qid, text in TEXT.items():
        assert "momentum and variance" not in text.lower() and "variance estimate" not in text.lower(), qid


def test_par_fsdp_one_unit_keeps_12_of_16_bytes_sharded():
    """Mixed-precision AdamW (ZeRO's K = 12): the optimizer states, fp32 master included, stay sharded; the
    16-bit weights and gradients, 4 of the 16 bytes, are what one FSDP unit gathers whole."""
    states = model_states(1)
    assert (states.optimizer, states.total, states.weights + states.grads) == (12, 16, 4)
    said("par-fsdp", "12 of the 16 bytes per parameter", "4 bytes per parameter")
    assert "ZeRO-3 in PyTorch" not in TEXT["par-fsdp"]


def test_reward_model_items_link_to_the_reward_modeling_section():
    """Bradley–Terry, the margin and accuracy are taught in §4.1 (reward modeling), not §4.2 (PPO)."""
    sections = {q["id"]: q["links"]["section"] for q in BANK["questions"]}
    assert sections["rm-bradley-terry"] == sections["rm-margin"] == "§4.1"


def test_stop_sft_cites_instructgpt_the_same_way_everywhere():
    """Ouyang et al. (2022), §3.5: SFT overfit on validation loss after 1 epoch, yet 16 epochs kept improving
    RM score and human preference. The bank, §5.5 and the at-a-glance table say so; none stops on loss."""
    said("stop-sft", "after 1 epoch", "16 epochs", "§3.5")
    pages = {name: (ROOT / "docs" / name).read_text() for name in ("explainer/5-mechanics.md", "at-a-glance.md")}
    for name, page in pages.items():
        assert "16 epochs" in page, name
    for page in (*pages.values(), (ROOT / "docs" / "recap.md").read_text()):
        assert "held-out loss turns up" not in page and "loss turning up" not in page
    said("stop-sft", "Not when held-out loss turns up")
