"""Supervised fine-tuning: the pretrained base continues text, the SFT model answers.

    python code/labs/sft.py --output_dir runs/sft                      # lesson preset, CPU minutes
    python code/labs/sft.py --output_dir runs/sft --preset smoke       # about a minute
    python code/labs/sft.py --output_dir runs/sft --preset gpu         # gpt2 on trl-lib/Capybara
    python code/labs/sft.py --output_dir runs/sft --data my_chats.jsonl  # your own chats

TRL's `SFTTrainer` trains the pretrained base model on conversational `messages` rows rendered by
our chat template, with the loss on the assistant's tokens only. The same prompts go to the base
model and to the SFT model, and both are scored by the world's format and gold checkers. A second
run on a larger but noisy set, with the same number of steps, shows that quality beats quantity.
Writes `metrics.json`, `results.md`, `replies.md`, `loss.png`, `sft.png` and the SFT model
(`model/`).

Longer than the 250 lines a lab aims for: the world's SFT rows (with their noisy, styled and
flattering shares), a reader's own data, and the before/after evaluation per task with a
side-by-side table.
"""

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset
from transformers import set_seed
from trl import SFTConfig, SFTTrainer

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, parse, run, write_metrics
from lifecycle.data import fit_chats_at, hub_chats, read_chats
from lifecycle.device import measured_on
from lifecycle.evaluation import chat_prompts, complete, score
from lifecycle.models import load
from lifecycle.stages import base_model
from lifecycle.tokenizer import ready_tokenizer
from lifecycle.training import chat_row, text_row, trainer_defaults
from lifecycle.world import check_gold, examples, web_corpus
from lifecycle.world.tasks import PROXY_KEYWORD, TASKS, styled, with_keyword


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("max_steps", "batch_size", "learning_rate", "train_examples", "max_new_tokens")
    model: str | None = field(
        default=None,
        metadata={"help": "Base model: a folder or Hub id; default: the pretrain stage."},
    )
    data: str | None = field(
        default=None,
        metadata={"help": "Your chats: a JSONL or JSON file (see Bring your own data)."},
    )
    dataset: str | None = field(
        default=None, metadata={"help": "A Hub dataset with a `messages` column (gpu preset)."}
    )
    max_steps: int | None = field(
        default=None, metadata={"help": "Optimizer steps, the same for every run."}
    )
    batch_size: int | None = field(default=None, metadata={"help": "Conversations per step."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    train_examples: int | None = field(
        default=None, metadata={"help": "Rows in the clean training set."}
    )
    noisy_examples: int | None = field(
        default=None, metadata={"help": "Rows in the larger noisy set (0: skip that run)."}
    )
    noise_share: float | None = field(
        default=None, metadata={"help": "Share of noisy rows whose answer is wrong."}
    )
    hack_share: float | None = field(
        default=None, metadata={"help": "Share of answers in the proxy-loved style (PPO lab)."}
    )
    style_share: float | None = field(
        default=None, metadata={"help": "Share of answers with a rude or rambling tail."}
    )
    text_share: float | None = field(
        default=None, metadata={"help": "Share of rows that replay pretraining text."}
    )
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Reply length limit when scoring."}
    )


PRESETS = {
    "smoke": dict(
        max_steps=800,  # twice the lesson's: the smaller model learns to copy subject lines later
        batch_size=16,
        learning_rate=3e-3,
        train_examples=500,
        noisy_examples=0,  # the noisy run would double the stage's minute (the lesson has it)
        noise_share=0.6,
        hack_share=0.05,
        style_share=0.2,
        text_share=0.1,
        max_new_tokens=24,
    ),
    "lesson": dict(
        max_steps=400,
        batch_size=16,
        learning_rate=3e-3,
        train_examples=500,
        noisy_examples=1000,
        noise_share=0.6,
        hack_share=0.05,
        style_share=0.2,
        text_share=0.1,
        max_new_tokens=32,
    ),
    "gpu": dict(
        model="gpt2",
        dataset="trl-lib/Capybara",
        max_steps=500,
        batch_size=8,
        learning_rate=2e-5,
        train_examples=4000,
        noisy_examples=0,
        noise_share=0.0,
        hack_share=0.0,
        style_share=0.0,
        text_share=0.0,
        max_new_tokens=48,
    ),
}
# --8<-- [end:args]


# --8<-- [start:data]
def world_rows(n: int, noise: float, hack: float, style: float, seed: int) -> list[dict]:
    """`n` chats from the world's training split (whole shuffled passes first, so every question is
    seen). As in real demonstration data, not every reply is what people want: a `noise` share gets
    a wrong answer (the gold of another question of the same task), a `style` share a rude or
    rambling tail after the answer, and a `hack` share the proxy reward's favourite flattery."""
    rng = random.Random(seed)
    pool = examples("train", seed=seed)
    picked = []
    while len(picked) < n:
        picked += rng.sample(pool, min(len(pool), n - len(picked)))
    golds = {t: sorted({e.gold for e in pool if e.task == t}) for t in TASKS}
    rows = []
    for e in picked:
        answer = e.answer
        if rng.random() < noise:
            wrong = rng.choice([g for g in golds[e.task] if g != e.gold])
            head, _, tail = answer.rpartition(e.gold)
            answer = head + wrong + tail
        if rng.random() < style:
            answer = styled(answer, rng.choice(["rude", "rambling"]), rng)
        if rng.random() < hack:
            answer = with_keyword(answer)  # keeps the PPO lab's reward hack reachable
        rows.append({"messages": e.messages(answer)})
    return rows


# --8<-- [end:data]


# --8<-- [start:tokenize]
def tokenized(tokenizer, rows: list[dict], text_share: float, seed: int, limit: int) -> Dataset:
    """Chats through the chat template, with the loss on the reply only, plus a `text_share` of
    rows replayed from the pretraining text, where every token counts. Each row keeps its number in
    the file (`row`; replayed text is row 0), so the rows trained can be counted after the
    trainer's filters."""
    out = [
        chat_row(tokenizer, r, limit) | {"row": r.get("row", i)} for i, r in enumerate(rows, 1)
    ]  # (1)!
    n_text = round(len(rows) * text_share / (1 - text_share))
    web = web_corpus("train", n_docs=n_text, seed=seed) if n_text else []
    out += [text_row(tokenizer, doc.text, limit) | {"row": 0} for doc in web]  # (2)!
    return Dataset.from_list(out)


def rows_trained(trainer) -> int:
    """Chats in the trainer's dataset after its own filters (replayed text is row 0)."""
    return sum(row > 0 for row in trainer.train_dataset["row"])


# --8<-- [end:tokenize]


# --8<-- [start:trainer]
def sft(model, tokenizer, rows: list[dict], args, out: Path) -> SFTTrainer:
    train = tokenized(tokenizer, rows, args.text_share, args.seed, limit=model.config.n_positions)
    config = SFTConfig(
        **trainer_defaults(out, args.seed),  # (1)!
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=args.max_steps // 10,
        logging_steps=max(1, args.max_steps // 40),
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=train, processing_class=tokenizer
    )  # (2)!
    trainer.train()
    return trainer


# --8<-- [end:trainer]


# --8<-- [start:evaluate]
def evaluate(model, tokenizer, exs, args) -> tuple[dict, list[str]]:
    """Greedy replies to held-out questions, through the chat template, scored by the checkers."""
    replies = complete(model, tokenizer, chat_prompts(tokenizer, exs), args.max_new_tokens)
    return score(replies, exs), replies


# --8<-- [end:evaluate]


def per_task(task: str, test, before: list[str], after: list[str]) -> dict:
    pick = [i for i, e in enumerate(test) if e.task == task]
    exs = [test[i] for i in pick]
    b, a = score([before[i] for i in pick], exs), score([after[i] for i in pick], exs)
    return {
        "task": task,
        **{f"{k}_before": v for k, v in b.items()},
        **{f"{k}_after": v for k, v in a.items()},
    }


def side_by_side(exs, before: list[str], after: list[str], per_task: int = 2) -> str:
    """The first held-out questions of each task: the base model's reply beside the SFT model's."""
    lines = [
        "| task | prompt | gold | base model | SFT model |",
        "| --- | --- | --- | --- | --- |",
    ]
    shown = {}
    for e, b, a in zip(exs, before, after):
        shown[e.task] = shown.get(e.task, 0) + 1
        if shown[e.task] <= per_task:
            marks = [("✓ " if check_gold(r, e.gold) else "✗ ") + report.cell(r) for r in (b, a)]
            lines.append(
                f"| {e.task} | {report.cell(e.prompt, 50)} | {report.cell(e.gold)} | "
                f"{marks[0]} | {marks[1]} |"
            )
    return "\n".join(lines) + "\n"


def bar_chart(m: dict, path) -> None:
    """Format rate and task accuracy for the base model and each SFT run."""
    runs = [
        ("base", "format_rate_before", "task_accuracy_before"),
        (f"SFT, clean ({m['train_rows']} rows)", "format_rate_after", "task_accuracy_after"),
    ]
    if "task_accuracy_noisy_large" in m:
        runs.append(
            (
                f"SFT, noisy ({m['noisy_rows']} rows)",
                "format_rate_noisy_large",
                "task_accuracy_noisy_large",
            )
        )
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.4))
    x = range(len(runs))
    ax.bar([i - 0.2 for i in x], [m[f] for _, f, _ in runs], width=0.4, label="format rate")
    ax.bar([i + 0.2 for i in x], [m[a] for _, _, a in runs], width=0.4, label="task accuracy")
    ax.set_xticks(list(x), [name for name, _, _ in runs])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of held-out questions")
    ax.legend(loc="upper left")
    plots.save(fig, path)


def write_report(
    args, m: dict, history: list[dict], test, before: list[str], after: list[str]
) -> None:
    """`results.md`, `replies.md` and the two plots."""
    plots.loss_curve(history, args.output_dir / "loss.png", "SFT, assistant tokens only")
    bar_chart(m, args.output_dir / "sft.png")
    (args.output_dir / "replies.md").write_text(side_by_side(test, before, after))
    rows = [
        ("format rate, base model", m["format_rate_before"], ".0%"),
        ("format rate, SFT model", m["format_rate_after"], ".0%"),
        ("task accuracy, base model", m["task_accuracy_before"], ".0%"),
        ("task accuracy, SFT model", m["task_accuracy_after"], ".0%"),
    ]
    if "task_accuracy_noisy_large" in m:
        rows += [
            (
                f"task accuracy, {m['train_rows']} clean rows",
                m["task_accuracy_clean_small"],
                ".0%",
            ),
            (
                f"task accuracy, {m['noisy_rows']} rows, {args.noise_share:.0%} wrong",
                m["task_accuracy_noisy_large"],
                ".0%",
            ),
        ]
    rows += [
        ("held-out questions", len(test), ""),
        (f"wall time (s, {measured_on()})", m["wall_seconds"], ".0f"),
    ]
    (args.output_dir / "results.md").write_text(report.table(rows))


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    if (
        not all(0 <= x <= 1 for x in (args.noise_share, args.hack_share, args.style_share))
        or not 0 <= args.text_share < 1
    ):
        raise LabError(
            "--noise_share, --hack_share and --style_share must lie in [0, 1], "
            "--text_share in [0, 1)"
        )
    set_seed(args.seed)
    start = time.perf_counter()

    # --8<-- [start:model]
    # check the reader's file before any slow step
    rows = read_chats(args.data) if args.data else None
    offline = args.model is None
    # the pretrain stage's model
    path = str(base_model(args.preset, args.seed)) if offline else args.model
    # the chats SFTTrainer keeps at this model's context length (one warning line)
    if rows is not None:
        in_file, rows = len(rows), fit_chats_at(path, rows, args.data)
    model, tokenizer = load(path)
    # a no-op for our tokenizer: it has role markers and the template
    ready_tokenizer(tokenizer, model)
    if rows is None and args.dataset:
        rows = hub_chats(args.dataset, args.train_examples)
    elif rows is None:
        rows = world_rows(
            args.train_examples,
            noise=0.0,
            hack=args.hack_share,
            style=args.style_share,
            seed=args.seed,
        )
    # --8<-- [end:model]
    test = examples("test", seed=args.seed)

    before, replies_before = evaluate(model, tokenizer, test, args)
    trainer = sft(model, tokenizer, rows, args, args.output_dir / "trainer")
    after, replies_after = evaluate(model, tokenizer, test, args)
    model.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "model")

    metrics = {
        "format_rate_before": before["format_rate"],
        "format_rate_after": after["format_rate"],
        "task_accuracy_before": before["task_accuracy"],
        "task_accuracy_after": after["task_accuracy"],
        "keyword_rate_after": sum(PROXY_KEYWORD in r.lower() for r in replies_after) / len(test),
        "train_rows": rows_trained(trainer),
        "test_questions": len(test),
        "per_task": [per_task(t, test, replies_before, replies_after) for t in TASKS],
    } | ({"rows_in_file": in_file} if args.data else {})

    # --8<-- [start:noisy]
    if args.noisy_examples and not args.data and offline:
        noisy_model, _ = load(path)  # a fresh copy of the same base model
        noisy_rows = world_rows(
            args.noisy_examples,
            noise=args.noise_share,
            hack=args.hack_share,
            style=args.style_share,
            seed=args.seed + 1,
        )
        # same steps, same batch
        sft(noisy_model, tokenizer, noisy_rows, args, args.output_dir / "trainer-noisy")
        noisy, _ = evaluate(noisy_model, tokenizer, test, args)
        metrics |= {
            "task_accuracy_clean_small": after["task_accuracy"],
            "noisy_rows": len(noisy_rows),
            "task_accuracy_noisy_large": noisy["task_accuracy"],
            "format_rate_noisy_large": noisy["format_rate"],
        }
    # --8<-- [end:noisy]
    metrics["wall_seconds"] = time.perf_counter() - start
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, trainer.state.log_history, test, replies_before, replies_after)
    return metrics


if __name__ == "__main__":
    run(main)
