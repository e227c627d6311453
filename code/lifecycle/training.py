"""Pretraining on a token budget, in an order we choose; and multiple-choice scoring of quiz items.

The curation lab trains the same model on several corpora for the same number of tokens, so the corpus
is the only thing that differs. `budget_blocks` cuts each corpus to that budget; `train` feeds the blocks
in the given order (the Trainer's sampler is sequential), which is what a curriculum needs.
"""

import random

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments, default_data_collator

from .evaluation import blocks


def budget_blocks(tokenizer, texts: list[str], block_size: int, n_blocks: int, seed: int = 0) -> torch.Tensor:
    """Exactly `n_blocks` blocks: documents shuffled (seeded), packed, and repeated if one pass is short."""
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    data = blocks(tokenizer, texts, block_size)
    reps = -(-n_blocks // len(data))  # ceiling: whole passes over the corpus
    return data.repeat(reps, 1)[:n_blocks]


# --8<-- [start:train]
def train(model, data: torch.Tensor, output_dir, batch_size: int, learning_rate: float, warmup_steps: int,
          seed: int = 0) -> list[dict]:
    """One pass over `data` (blocks × tokens) in row order; returns the Trainer's log history."""
    cuda = torch.cuda.is_available()
    config = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=len(data) // batch_size,
        per_device_train_batch_size=batch_size,
        train_sampling_strategy="sequential",  # our order: shuffled, or curated-last for a curriculum
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=warmup_steps,
        weight_decay=0.1,
        max_grad_norm=1.0,
        logging_steps=max(1, len(data) // batch_size // 40),
        save_strategy="no",
        report_to="none",
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        seed=seed,
        dataloader_num_workers=0,
    )
    ids = data.tolist()
    trainer = Trainer(model=model, args=config, data_collator=default_data_collator,
                      train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}))
    trainer.train()
    return trainer.state.log_history
# --8<-- [end:train]


# --8<-- [start:choice]
@torch.no_grad()
def choice_accuracy(model, tokenizer, items, decoys: list[str], n_choices: int = 4, seed: int = 0) -> float:
    """Share of items whose answer the model rates likelier than `n_choices - 1` decoy answers.

    Each option is scored by the log-probability of its tokens after the question. Chance is 1 / n_choices.
    """
    model.eval()
    rng = random.Random(seed)
    correct = 0
    for it in items:
        options = [it.answer, *rng.sample(decoys, n_choices - 1)]
        rng.shuffle(options)  # so that a tie can never favour the right answer
        prompt = tokenizer(tokenizer.bos_token + it.question, add_special_tokens=False)["input_ids"]
        scores = []
        for option in options:
            tail = tokenizer(f" {option}.", add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + tail], device=model.device)
            logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
            targets = ids[0, len(prompt):]
            scores.append(logp[len(prompt) - 1 :].gather(1, targets[:, None]).sum().item())
        correct += options[max(range(n_choices), key=scores.__getitem__)] == it.answer
    return correct / len(items)
# --8<-- [end:choice]
