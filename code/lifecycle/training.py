"""Training: what every trainer config shares, text packed into blocks, and one `Trainer` recipe for
next-token training on a block budget.

- `trainer_defaults`: the plumbing fields every `TrainingArguments` / TRL config in the labs shares, so a
  lab's config holds only the knobs its lesson is about.
- `chat_row` / `text_row`: one tokenized training row for SFT-style trainers, with the loss on the reply
  only (a chat) or on every token (plain text).
- `blocks` / `budget_blocks`: documents packed into full blocks; `budget_blocks` cuts a corpus to exactly
  the same number of blocks as another, which is how the curation lab trains every corpus on the same
  token budget.
- `train`: the stock `Trainer` over blocks, drawn in a seeded random order (pretraining) or read in the
  order given (the Trainer's sequential sampler), which is what a curriculum needs.
"""

import random

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments, default_data_collator


# --8<-- [start:defaults]
def trainer_defaults(output_dir, seed: int, **overrides) -> dict:
    """The fields every `TrainingArguments` / TRL config in the labs shares; pass the lesson's own knobs
    next to them: `SFTConfig(**trainer_defaults(out, seed), learning_rate=...)`.

    - no checkpoints, no logging service: a run writes only what its lab reports;
    - fp32 on a CPU, bf16 on a GPU that supports it (TRL's configs default to bf16, which fails on a CPU);
    - activation (gradient) checkpointing off: TRL's configs turn it on, and these models have no memory
      to save, so it would only cost time;
    - the run's seed; data loaded in the main process (worker processes only cost start-up time).
    """
    cuda = torch.cuda.is_available()
    return dict(
        output_dir=str(output_dir),
        save_strategy="no",
        report_to="none",
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        activation_checkpointing=False,
        seed=seed,
        dataloader_num_workers=0,
    ) | overrides
# --8<-- [end:defaults]


def blocks(tokenizer, texts: list[str], block_size: int) -> torch.Tensor:
    """Documents joined by the BOS token and cut into full blocks (the tail is dropped): blocks × tokens."""
    sep = tokenizer.bos_token or tokenizer.eos_token
    ids = tokenizer(sep.join(texts), add_special_tokens=False)["input_ids"]
    n = len(ids) // block_size
    if n == 0:
        raise ValueError(f"need at least {block_size} tokens to form one block, got {len(ids)}")
    return torch.tensor(ids[: n * block_size]).view(n, block_size)


def budget_blocks(tokenizer, texts: list[str], block_size: int, n_blocks: int, seed: int = 0) -> torch.Tensor:
    """Exactly `n_blocks` blocks: documents shuffled (seeded), packed, and repeated if one pass is short."""
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    data = blocks(tokenizer, texts, block_size)
    reps = -(-n_blocks // len(data))  # ceiling: whole passes over the corpus
    return data.repeat(reps, 1)[:n_blocks]


# --8<-- [start:rows]
def chat_row(tokenizer, messages: list[dict], limit: int) -> dict:
    """A conversation through the chat template, cut at `limit` tokens, with the loss on the reply only.

    `assistant_masks` is 1 on the tokens inside the template's `{% generation %}` block (the reply and
    its `<|end|>`) and 0 on the template and the user's words; `SFTTrainer` turns it into `labels`, with
    -100 (ignored by the loss) wherever it is 0."""
    enc = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    return {"input_ids": enc["input_ids"][:limit], "assistant_masks": enc["assistant_masks"][:limit]}


def text_row(tokenizer, text: str, limit: int) -> dict:
    """Plain text as the base model saw it in pretraining (BOS first), with the loss on every token."""
    ids = tokenizer(tokenizer.bos_token + text, add_special_tokens=False)["input_ids"][:limit]
    return {"input_ids": ids, "assistant_masks": [1] * len(ids)}
# --8<-- [end:rows]


# --8<-- [start:train]
def train(model, data: torch.Tensor, output_dir, batch_size: int, learning_rate: float, warmup_steps: int,
          seed: int = 0, max_steps: int | None = None, order: str = "sequential") -> list[dict]:
    """Next-token training on `data` (blocks × tokens); returns the Trainer's log history.

    `max_steps` defaults to one pass in row order (`order="sequential"`: ours, shuffled or curated-last
    for a curriculum); `order="random"` samples the blocks in a seeded random order, as pretraining does.
    """
    max_steps = max_steps or len(data) // batch_size
    config = TrainingArguments(
        **trainer_defaults(output_dir, seed),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        train_sampling_strategy=order,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",  # after warmup, half a cosine down to zero
        warmup_steps=warmup_steps,  # a linear ramp from zero: Adam's first moment estimates are noisy
        weight_decay=0.1,
        max_grad_norm=1.0,
        logging_steps=max(1, max_steps // 40),
    )
    ids = data.tolist()  # the labels are the inputs: the model shifts them by one inside its loss
    trainer = Trainer(model=model, args=config, data_collator=default_data_collator,
                      train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}))
    trainer.train()
    return trainer.state.log_history
# --8<-- [end:train]
