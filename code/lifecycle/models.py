"""Tiny GPT-2 models from `GPT2Config`, and loading any model through `from_pretrained`.

Every model the labs make is saved with `save_pretrained` (safetensors) and loaded back with
`from_pretrained`: the same code path a reader uses with the real `gpt2`.
"""

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
)

from .cli import LabError
from .device import device

# --8<-- [start:sizes]
SIZES = {
    # seconds on a CPU
    "smoke": dict(n_layer=2, n_head=2, n_embd=64, n_positions=128),
    # learns the world in CPU minutes
    "lesson": dict(n_layer=4, n_head=4, n_embd=128, n_positions=256),
    # the real GPT-2 small shape
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024),
}
# --8<-- [end:sizes]


def build_model(size: str, tokenizer, seed: int = 0) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 of a named size, for our tokenizer."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SIZES[size],
    )
    return GPT2LMHeadModel(config)


def load(name_or_path: str, head: str = "causal", padding_side: str = "right"):
    """Load a model and its tokenizer: a local folder, or a Hub id such as `gpt2` when online.

    `padding_side` is the side this tokenizer pads when a trainer pads with it (PPOTrainer needs
    "left"); our own calls pass it per call instead. The model goes to the GPU when there is one,
    so what runs outside a Trainer (generation, perplexity, reward scores) runs there too. Offline,
    an id that is not a local folder fails with one line that names the offline presets.
    """
    cls = {"causal": AutoModelForCausalLM, "reward": AutoModelForSequenceClassification}[head]
    kwargs = {"num_labels": 1} if head == "reward" else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, padding_side=padding_side)
        model = cls.from_pretrained(name_or_path, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as e:
        if Path(name_or_path).exists():
            raise LabError(
                f"cannot load model from {name_or_path!r}: {str(e).splitlines()[0]}"
            ) from None
        raise LabError(
            f"model {name_or_path!r} is not a local folder and could not be fetched from the Hub "
            "(offline?); run offline with --preset lesson or --preset smoke"
        ) from None
    return model.to(device()), tokenizer
