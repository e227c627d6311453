"""Training: what every trainer config shares, text packed into blocks, and one `Trainer` recipe
for next-token training on a block budget.

- `trainer_defaults`: the plumbing fields every `TrainingArguments` / TRL config in the labs
  shares, so a lab's config holds only the knobs its lesson is about.
- `chat_row` / `text_row`: one tokenized training row for SFT-style trainers: a chat (the loss on
  the replies, as `SFTTrainer` masks it), or pretraining text replayed (the loss on every token).
- `blocks` / `budget_blocks`: documents packed into full blocks; `budget_blocks` cuts a corpus to
  exactly the same number of blocks as another, which is how the curation lab trains every corpus
  on the same token budget.
- `train`: the stock `Trainer` over blocks, drawn in a seeded random order (pretraining) or read in
  the order given (the Trainer's sequential sampler), which is what a curriculum needs.
"""

import random
import re

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments, default_data_collator

from .cli import LabError
from .device import bf16, device


# --8<-- [start:defaults]
def trainer_defaults(output_dir, seed: int, **overrides) -> dict:
    """The fields every `TrainingArguments` / TRL config in the labs shares; pass the lesson's own
    knobs next to them: `SFTConfig(**trainer_defaults(out, seed), learning_rate=...)`.

    - no checkpoints, no logging service: a run writes only what its lab reports;
    - fp32 on a CPU, bf16 on a GPU that supports it (TRL's configs default to bf16, which fails on
      a CPU);
    - activation (gradient) checkpointing off: TRL's configs turn it on, and these models have no
      memory to save, so it would only cost time;
    - the run's seed; data loaded in the main process (worker processes only cost start-up time).
    """
    return (
        dict(
            output_dir=str(output_dir),
            save_strategy="no",
            report_to="none",
            use_cpu=device().type == "cpu",
            bf16=bf16(),  # the precision lifecycle.device's `measured_on` reports
            activation_checkpointing=False,
            seed=seed,
            dataloader_num_workers=0,
        )
        | overrides
    )


# --8<-- [end:defaults]


def blocks(tokenizer, texts: list[str], block_size: int) -> torch.Tensor:
    """Documents joined by BOS and cut into full blocks (the tail dropped): blocks × tokens."""
    sep = tokenizer.bos_token or tokenizer.eos_token
    ids = tokenizer(sep.join(texts), add_special_tokens=False)["input_ids"]
    n = len(ids) // block_size
    if n == 0:
        raise ValueError(f"need at least {block_size} tokens to form one block, got {len(ids)}")
    return torch.tensor(ids[: n * block_size]).view(n, block_size)


def budget_blocks(
    tokenizer, texts: list[str], block_size: int, n_blocks: int, seed: int = 0
) -> torch.Tensor:
    """Exactly `n_blocks` blocks: documents shuffled (seeded), packed, repeated if too few."""
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    data = blocks(tokenizer, texts, block_size)
    reps = -(-n_blocks // len(data))  # ceiling: whole passes over the corpus
    return data.repeat(reps, 1)[:n_blocks]


# --8<-- [start:rows]
def chat_row(tokenizer, row: dict, limit: int | None = None) -> dict:
    """`input_ids` and the loss mask `assistant_masks` (1 = trained) of one chat row, cut at
    `limit` tokens, as TRL's `SFTTrainer` builds them (a test compares the two). `SFTTrainer` turns
    the mask into `labels`, with -100 (ignored by the loss) wherever it is 0.

    - `{"messages": [...]}`: through the chat template; the tokens inside its `{% generation %}`
      block (each assistant reply and its `<|end|>`) are trained, the template and the user's words
      are not (`assistant_only_loss`). An assistant turn with `"weight": 0` (OpenAI's format) is
      not trained either.
    - `{"text"}`: EOS added, every token trained. `{"prompt", "completion"}` (text): EOS added
      after the completion, only the completion trained (`completion_only_loss`).

    Rows in these forms come from the world, or from a reader's file through
    `lifecycle.data.check_chats`. Raises LabError if the template does not wrap each assistant turn
    in `{% generation %}`."""
    if "messages" in row:
        chat = [{"role": t["role"], "content": t["content"]} for t in row["messages"]]
        enc = tokenizer.apply_chat_template(
            chat, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
        # one per assistant turn
        spans = [m.span() for m in re.finditer("1+", "".join(map(str, mask)))]
        weights = [t.get("weight", 1) for t in row["messages"] if t["role"] == "assistant"]
        if len(spans) != len(weights):
            raise LabError("the chat template must wrap each assistant turn in {% generation %}")
        for (start, end), weight in zip(spans, weights):
            mask[start:end] = [weight] * (end - start)
    else:
        eos, prompt = tokenizer.eos_token, row.get("prompt", "")
        body = row["text"] if "text" in row else row["completion"]
        ids = tokenizer(prompt + body + ("" if body.endswith(eos) else eos))["input_ids"]
        n_prompt = len(tokenizer(prompt)["input_ids"]) if prompt else 0
        mask = [0] * n_prompt + [1] * (len(ids) - n_prompt)
    return {"input_ids": ids[:limit], "assistant_masks": mask[:limit]}


def text_row(tokenizer, text: str, limit: int) -> dict:
    """Pretraining text replayed during fine-tuning, as the base model saw it in pretraining (BOS
    first, as `blocks` joins documents; no EOS), with the loss on every token."""
    ids = tokenizer(tokenizer.bos_token + text, add_special_tokens=False)["input_ids"][:limit]
    return {"input_ids": ids, "assistant_masks": [1] * len(ids)}


# --8<-- [end:rows]


# --8<-- [start:train]
def train(
    model,
    data: torch.Tensor,
    output_dir,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int,
    seed: int = 0,
    max_steps: int | None = None,
    order: str = "sequential",
) -> list[dict]:
    """Next-token training on `data` (blocks × tokens); returns the Trainer's log history.

    `max_steps` defaults to one pass in row order (`order="sequential"`: ours, shuffled or
    curated-last for a curriculum); `order="random"` samples the blocks in a seeded random order,
    as pretraining does.
    """
    max_steps = max_steps or len(data) // batch_size
    config = TrainingArguments(
        **trainer_defaults(output_dir, seed),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        train_sampling_strategy=order,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",  # after warmup, half a cosine down to zero
        # a linear ramp from zero: Adam's first moment estimates are noisy
        warmup_steps=warmup_steps,
        weight_decay=0.1,
        max_grad_norm=1.0,
        logging_steps=max(1, max_steps // 40),
    )
    ids = data.tolist()  # the labels are the inputs: the model shifts them by one inside its loss
    trainer = Trainer(
        model=model,
        args=config,
        data_collator=default_data_collator,
        train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}),
    )
    trainer.train()
    return trainer.state.log_history


# --8<-- [end:train]
