"""The measurements every lab shares: perplexity, greedy and sampled replies, format rate, task
accuracy, and multiple-choice accuracy on quiz items.

The `gpu` presets call the same functions on real `gpt2`, so what the offline tests prove is what
the GPU run reports.
"""

import math
import random

import torch

from .training import blocks
from .world import check_format, check_gold


# --8<-- [start:perplexity]
@torch.no_grad()
def perplexity(
    model, tokenizer, texts: list[str], block_size: int = 128, batch_size: int = 16
) -> float:
    """exp(mean next-token cross-entropy) over every predicted token of the held-out text."""
    model.eval()
    data = blocks(tokenizer, texts, block_size).to(model.device)
    total_nll, total_tokens = 0.0, 0
    for batch in data.split(batch_size):
        loss = model(
            input_ids=batch, labels=batch
        ).loss  # mean over batch × (block_size - 1) targets
        n = batch.numel() - batch.size(0)
        total_nll += loss.item() * n
        total_tokens += n
    return math.exp(total_nll / total_tokens)


# --8<-- [end:perplexity]


def left_padded(tokenizer, prompts: list[str], device):
    """Prompts as one batch, padded on the left so that every reply starts at the same position;
    no special tokens added (the chat template already wrote them)."""
    enc = tokenizer(
        prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    )
    return enc.to(device)


@torch.no_grad()
def complete(
    model, tokenizer, prompts: list[str], max_new_tokens: int = 32, batch_size: int = 32
) -> list[str]:
    """Greedy completions of raw prompt strings, special tokens kept, padding removed."""
    model.eval()
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = left_padded(tokenizer, prompts[i : i + batch_size], model.device)
        gen = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        for row in gen[:, enc["input_ids"].shape[1] :]:
            row = row[row != tokenizer.pad_token_id]
            out.append(tokenizer.decode(row, skip_special_tokens=False))
    return out


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: list[str],
    n: int = 1,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
) -> list[str]:
    """`n` sampled completions per prompt (prompt-major: the n replies to prompt 0 first), special
    tokens kept, padding removed. Sampling has its own seed and leaves the global random state as
    it was, so a check in the middle of training does not change what training samples next."""
    model.eval()
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, len(prompts), batch_size):
            enc = left_padded(tokenizer, prompts[i : i + batch_size], model.device)
            gen = model.generate(
                **enc,
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                num_return_sequences=n,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            for row in gen[:, enc["input_ids"].shape[1] :]:
                out.append(
                    tokenizer.decode(row[row != tokenizer.pad_token_id], skip_special_tokens=False)
                )
    return out


def chat_prompts(tokenizer, examples) -> list[str]:
    """Each example's user turn through the chat template, ready for the assistant's reply."""
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": e.prompt}], add_generation_prompt=True, tokenize=False
        )
        for e in examples
    ]


def spread(examples: list, n: int) -> list:
    """`n` examples spread evenly over the list (listed by task), so every task is scored."""
    return examples[:: max(1, len(examples) // n)][:n]


def score(completions: list[str], examples) -> dict[str, float]:
    """Format rate (assistant format, ended by end-of-turn) and task accuracy (gold found)."""
    n = len(examples)
    return {
        "format_rate": sum(check_format(c) for c in completions) / n,
        "task_accuracy": sum(check_gold(c, e.gold) for c, e in zip(completions, examples)) / n,
    }


# --8<-- [start:choice]
@torch.no_grad()
def choice_accuracy(
    model, tokenizer, items, decoys: list[str], n_choices: int = 4, seed: int = 0
) -> float:
    """Share of items whose answer the model rates likelier than `n_choices - 1` decoy answers.

    Each option is scored by the log-probability of its tokens after the question. Chance is 1 /
    n_choices.
    """
    model.eval()
    rng = random.Random(seed)
    correct = 0
    for it in items:
        options = [it.answer, *rng.sample(decoys, n_choices - 1)]
        rng.shuffle(options)  # so that a tie can never favour the right answer
        prompt = tokenizer(tokenizer.bos_token + it.question, add_special_tokens=False)[
            "input_ids"
        ]
        scores = []
        for option in options:
            tail = tokenizer(f" {option}.", add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + tail], device=model.device)
            logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
            targets = ids[0, len(prompt) :]
            scores.append(logp[len(prompt) - 1 :].gather(1, targets[:, None]).sum().item())
        correct += options[max(range(n_choices), key=scores.__getitem__)] == it.answer
    return correct / len(items)


# --8<-- [end:choice]
