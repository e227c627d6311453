"""The memory arithmetic: exact parameter counts and the ZeRO paper's published example."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lifecycle.memory import GPT2_FAMILY, gpt2_params, inference_bytes, kv_cache_bytes, model_states


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


def test_inference_travels_light():
    params = gpt2_params(12, 768)
    kv = kv_cache_bytes(12, 768, batch=1, seq_len=1024)
    assert kv == 2 * 12 * 768 * 1024 * 2
    assert model_states(params).total / inference_bytes(params, kv_cache=kv) > 6
