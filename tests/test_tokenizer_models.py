"""Tokenizer, chat template and model factory."""

import pytest
import torch

from lifecycle.cli import LabError
from lifecycle.models import SIZES, build_model, load
from lifecycle.tokenizer import load_tokenizer
from lifecycle.world import examples


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_special_tokens(tok):
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.eos_token == "<|end|>" and tok.bos_token == "<|endoftext|>"
    for marker in ("<|user|>", "<|assistant|>", "<|system|>"):
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1


def test_chat_template_masks_everything_but_the_reply(tok):
    e = examples("train")[0]
    out = tok.apply_chat_template(
        e.messages(), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    reply = tok.decode([i for i, m in zip(ids, mask) if m])
    # the reply (opened by a space) and its end-of-turn token
    assert reply == " " + e.answer + "<|end|>"


def test_a_name_copied_into_the_reply_keeps_its_tokens(tok):
    """The template opens the reply with a space, so a name the reply starts with is tokenized as
    it is in the question; without the space byte-level BPE spells it with other tokens."""
    # "What does Kroufel export?" -> "Kroufel exports ..."
    e = next(x for x in examples("train") if x.task == "export")
    name = e.prompt.removeprefix("What does ").removesuffix(" export?")
    in_question = tok(" " + name, add_special_tokens=False)["input_ids"]
    text = tok.apply_chat_template(e.messages(), tokenize=False)
    reply_ids = tok(text.split("<|assistant|>", 1)[1], add_special_tokens=False)["input_ids"]
    assert reply_ids[: len(in_question)] == in_question
    # the trap the space avoids
    assert tok(name, add_special_tokens=False)["input_ids"] != in_question


def test_round_trip(tok):
    text = "Subject: Team lunch on Friday\n\nHi Ana, 3 plus 4 is 7."
    assert tok.decode(tok(text)["input_ids"]) == text


def test_sizes_and_save_load_round_trip(tok, tmp_path):
    model = build_model("smoke", tok).eval()  # eval: no dropout, so the outputs are comparable
    assert model.config.n_layer == SIZES["smoke"]["n_layer"]
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    again, tok2 = load(str(tmp_path))
    x = torch.tensor([[1, 2, 3]])
    assert torch.equal(model(x).logits, again(x).logits)
    assert len(tok2) == len(tok)


def test_gpt2_shape_has_124m_parameters(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, **SIZES["gpt2"]))
    assert sum(p.numel() for p in model.parameters()) == 124_439_808


def test_hub_model_offline_is_one_clear_error():
    with pytest.raises(LabError, match="could not be fetched from the Hub.*--preset lesson"):
        load("gpt2")
