"""The measurements every lab shares: perplexity, greedy replies, format rate and task accuracy.

The `gpu` presets call the same functions on real `gpt2`, so what the offline tests prove is what the
GPU run reports.
"""

import math

import torch

from .world import check_format, check_gold


def blocks(tokenizer, texts: list[str], block_size: int) -> torch.Tensor:
    """Documents joined by the BOS token and cut into full blocks (the tail is dropped)."""
    sep = tokenizer.bos_token or tokenizer.eos_token
    ids = tokenizer(sep.join(texts), add_special_tokens=False)["input_ids"]
    n = len(ids) // block_size
    if n == 0:
        raise ValueError(f"need at least {block_size} tokens to form one block, got {len(ids)}")
    return torch.tensor(ids[: n * block_size]).view(n, block_size)


# --8<-- [start:perplexity]
@torch.no_grad()
def perplexity(model, tokenizer, texts: list[str], block_size: int = 128, batch_size: int = 16) -> float:
    """exp(mean next-token cross-entropy) over every predicted token of the held-out text."""
    model.eval()
    data = blocks(tokenizer, texts, block_size).to(model.device)
    total_nll, total_tokens = 0.0, 0
    for batch in data.split(batch_size):
        loss = model(input_ids=batch, labels=batch).loss  # mean over batch × (block_size - 1) targets
        n = batch.numel() - batch.size(0)
        total_nll += loss.item() * n
        total_tokens += n
    return math.exp(total_nll / total_tokens)
# --8<-- [end:perplexity]


@torch.no_grad()
def complete(model, tokenizer, prompts: list[str], max_new_tokens: int = 32, batch_size: int = 32) -> list[str]:
    """Greedy completions of raw prompt strings, special tokens kept, padding removed."""
    model.eval()
    tokenizer.padding_side = "left"
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(model.device)
        gen = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
        for row in gen[:, enc["input_ids"].shape[1] :]:
            row = row[row != tokenizer.pad_token_id]
            out.append(tokenizer.decode(row, skip_special_tokens=False))
    return out


def chat_prompts(tokenizer, examples) -> list[str]:
    """Each example's user turn through the chat template, ready for the assistant's reply."""
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": e.prompt}], add_generation_prompt=True, tokenize=False)
        for e in examples
    ]


def score(completions: list[str], examples) -> dict[str, float]:
    """Format rate (the assistant format, ended by the end-of-turn token) and task accuracy (gold found)."""
    n = len(examples)
    return {
        "format_rate": sum(check_format(c) for c in completions) / n,
        "task_accuracy": sum(check_gold(c, e.gold) for c, e in zip(completions, examples)) / n,
    }
