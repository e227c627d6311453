"""The special tokens and the chat template, a byte-level BPE tokenizer trained on our world, and
the same set-up for a Hub tokenizer (`ready_tokenizer`).

- `<|endoftext|>` separates pretraining documents; `<|pad|>` pads (it must differ from EOS: PPO
  masks padding by token id).
- `<|end|>` ends an assistant turn and is the EOS token, so `generate()` stops where a turn ends.
- The chat template wraps the assistant turn in `{% generation %}`, which is what TRL's
  `assistant_only_loss=True` uses to mask everything but the reply.
- The reply opens with a space, as the words of the question do. Byte-level BPE gives " Kroufel"
  and "Kroufel" different tokens, so a reply that starts with a name from the question must copy
  the same tokens, not learn a second spelling of every name.

This is the one home of these tokens: the world's format checker (`world.tasks`) imports them from
here.
"""

import os
import shutil
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .cache import PACKAGE, cache_dir, fingerprint

BOS, PAD, END = "<|endoftext|>", "<|pad|>", "<|end|>"
ROLES = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL = [BOS, PAD, END, *ROLES.values()]
VOCAB_SIZE = 1024

# --8<-- [start:template]
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "<|assistant|>{% generation %} {{ m['content'] }}<|end|>{% endgeneration %}"
    "{% else %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# --8<-- [end:template]


def train_tokenizer(seed: int = 0, vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train BPE on the clean web text and the task texts (about 2 s)."""
    from .world import examples, web_corpus  # here: the world imports this module's tokens

    texts = [d.text for d in web_corpus("train", n_docs=4000, seed=seed)]
    texts += [e.prompt + " " + e.answer for e in examples("train", seed=seed)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=END,
        pad_token=PAD,
        additional_special_tokens=list(ROLES.values()),
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tokenizer_path(seed: int = 0) -> Path:
    sources = [*(PACKAGE / "world").glob("*.py"), Path(__file__)]
    return cache_dir() / f"tokenizer-s{seed}-{fingerprint(*sources)}"


def load_tokenizer(seed: int = 0) -> PreTrainedTokenizerFast:
    """The world's tokenizer, trained once, then loaded from the cache with `from_pretrained`."""
    path = tokenizer_path(seed)
    if not (path / "tokenizer.json").exists():
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        train_tokenizer(seed).save_pretrained(tmp)
        try:
            tmp.rename(path)
        except OSError:  # another process saved it first
            shutil.rmtree(tmp, ignore_errors=True)
    return AutoTokenizer.from_pretrained(path)


def ready_tokenizer(tokenizer, *models):
    """Give a Hub tokenizer (gpt2 has none of these) what ours already has: the role markers, a pad
    token that is not EOS (PPO masks padding by token id), `<|end|>` as EOS, and our chat template;
    and resize each model's embeddings to match. The tokens are always added in the same order, so
    every stage's models share token ids. A no-op on our own tokenizer."""
    if tokenizer.chat_template == CHAT_TEMPLATE:
        return tokenizer
    tokenizer.add_special_tokens(
        {"pad_token": PAD, "eos_token": END, "additional_special_tokens": list(ROLES.values())}
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    for model in models:
        model.resize_token_embeddings(len(tokenizer))
        for cfg in (model.config, getattr(model, "generation_config", None)):
            if cfg is not None:
                cfg.eos_token_id, cfg.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    return tokenizer
