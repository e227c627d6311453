"""The memory arithmetic: exact parameter counts and the ZeRO paper's published example."""

import re

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import ROOT
from lifecycle.memory import (
    GPT2_FAMILY, gpt2_params, inference_bytes, kv_cache_bytes, model_states, zero_collectives, zero_traffic,
)


@pytest.mark.parametrize("name", list(GPT2_FAMILY))
def test_gpt2_family_parameter_counts_are_exact(name):
    n_layer, n_embd, n_head = GPT2_FAMILY[name]
    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head))
    assert gpt2_params(n_layer, n_embd) == sum(p.numel() for p in model.parameters())


def test_zero_paper_example_7_5b_on_64_gpus():
    """Rajbhandari et al. (2020), Figure 1: Ψ = 7.5B, N_d = 64, K = 12."""
    gb = lambda stage: model_states(7.5e9, gpus=64, zero_stage=stage).total / 1e9
    assert gb(0) == pytest.approx(120)
    assert gb(1) == pytest.approx(31.4, abs=0.05)
    assert gb(2) == pytest.approx(16.6, abs=0.05)
    assert gb(3) == pytest.approx(1.9, abs=0.05)


def test_zero_communication_model():
    """ZeRO §7: stages 1-2 move what DDP moves (2Ψ); stage 3 moves 3Ψ and gathers no weights after the step."""
    assert [zero_traffic(s) for s in range(4)] == [2.0, 2.0, 2.0, 3.0]
    after_step = [what for op, what, when, _ in zero_collectives(3) if "after" in when]
    assert after_step == []
    gathers = [when for op, what, when, _ in zero_collectives(3) if op == "all-gather"]
    assert len(gathers) == 2 and any("forward" in w for w in gathers) and any("backward" in w for w in gathers)
    assert ("all-gather", "updated weights", "after the optimizer step", 1.0) in zero_collectives(1)


def test_parallelism_table_matches_the_communication_model():
    """§2.4's table: each ZeRO row names exactly the collectives of `zero_collectives`, and stage 3 no
    all-gather of updated weights after the step."""
    page = (ROOT / "docs" / "explainer" / "2-pretraining.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (ZeRO-[^|]*?) \|.*$", page, re.M)}
    stage12 = next(r for k, r in rows.items() if "1" in k and "2" in k)
    stage3 = next(r for k, r in rows.items() if "3" in k)
    for row, stage in ((stage12, 1), (stage3, 3)):
        cells = row.split("|")[4].lower()  # "what is communicated"
        for op, what, when, _ in zero_collectives(stage):
            assert op in cells and what.split()[-1] in cells, (stage, op, what, cells)
    communicated3 = stage3.split("|")[4]
    assert "updated weights" not in communicated3 and "forward" in communicated3 and "backward" in communicated3


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
    config = LlamaConfig(hidden_size=s["n_embd"], intermediate_size=s["intermediate"], num_hidden_layers=s["n_layer"],
                         num_attention_heads=s["n_head"], vocab_size=s["vocab_size"], tie_word_embeddings=False)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    expected = llama_params(s["n_layer"], s["n_embd"], s["intermediate"], s["vocab_size"])
    assert expected == sum(p.numel() for p in model.parameters()) == 6_738_415_616


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_activation_formula_is_exact(attn, dropout, checkpointing):
    from lifecycle.memory import activation_bytes, enable_checkpointing, saved_activation_bytes

    config = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=200, n_positions=16, bos_token_id=0, eos_token_id=0,
                        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, attn_implementation=attn)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).train()
    if checkpointing:
        enable_checkpointing(model)
    ids = torch.randint(0, 200, (3, 12))
    measured = saved_activation_bytes(model, lambda: model(ids, labels=ids).loss.backward())
    assert measured == activation_bytes(2, 32, 4, 200, 3, 12, checkpointing, attn, dropout > 0)


def test_exact_adamw_state_after_one_step():
    from lifecycle.memory import exact_adamw_state_bytes, gpt2_param_tensors, params_from_config, state_bytes

    config = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=200, n_positions=16, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters())
    ids = torch.randint(0, 200, (2, 8))
    model(ids, labels=ids).loss.backward()
    optimizer.step()
    assert state_bytes(model, optimizer) == exact_adamw_state_bytes(params_from_config(config), gpt2_param_tensors(2))


def test_estimate_keys_and_kv_cache_follows_batch():
    from lifecycle.memory import estimate

    out = estimate(124e6, shape=(12, 768, 12, 50257), batch=8, seq_len=1024)
    assert out["kv_cache_bytes"] == kv_cache_bytes(12, 768, 8, 1024)
    assert out["master_weights_bytes"] + out["adam_moments_bytes"] == out["optimizer_bytes"]
    assert "activation_bytes" not in estimate(124e6)
