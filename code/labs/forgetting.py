"""Domain fine-tuning and catastrophic forgetting, then the same run with replay.

    # lesson preset, about two minutes; smoke: seconds; gpu: the SFT'd gpt2
    python code/labs/forgetting.py --output_dir runs/forgetting
    python code/labs/forgetting.py --output_dir runs/forgetting --preset smoke
    python code/labs/forgetting.py --output_dir runs/forgetting --preset gpu

Starts from the SFT stage's model (`code/labs/sft.py`, run on demand and cached) and fine-tunes it
on one task only (the domain slice), many steps at a high learning rate. A second run trains the
same steps on the same domain rows mixed with general data (web text and the other tasks' chats):
replay. During both runs a callback measures domain perplexity, general held-out perplexity and the
other tasks' accuracy. Writes `metrics.json`, `results.md` and `forgetting.png`.

Longer than the 250 lines a lab aims for: two fine-tuning runs, a callback that measures three
things while they train, and a three-panel plot of them.
"""

import math
import random
import time
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from transformers import TrainerCallback, set_seed
from trl import SFTConfig, SFTTrainer

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, parse, run, write_metrics
from lifecycle.device import caption
from lifecycle.evaluation import chat_prompts, complete, perplexity, score
from lifecycle.models import load
from lifecycle.stages import stage_model
from lifecycle.training import chat_row, text_row, trainer_defaults
from lifecycle.world import examples, web_corpus
from lifecycle.world.tasks import TASKS


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = (
        "max_steps",
        "batch_size",
        "learning_rate",
        "eval_every",
        "max_new_tokens",
        "eval_docs",
    )
    model: str | None = field(
        default=None, metadata={"help": "An SFT model folder; default: the sft stage's model."}
    )
    domain: str | None = field(
        default=None, metadata={"help": f"The task to fine-tune on, one of {', '.join(TASKS)}."}
    )
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps for each run."})
    batch_size: int | None = field(default=None, metadata={"help": "Rows per step."})
    learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate (high on purpose)."}
    )
    replay_share: float | None = field(
        default=None, metadata={"help": "Share of general rows in the replay run."}
    )
    eval_every: int | None = field(default=None, metadata={"help": "Steps between measurements."})
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Reply length limit when scoring."}
    )
    eval_docs: int | None = field(
        default=None, metadata={"help": "Held-out web documents for the general perplexity."}
    )


PRESETS = {
    "smoke": dict(
        domain="arithmetic",
        max_steps=80,
        batch_size=16,
        learning_rate=3e-3,
        replay_share=0.5,
        eval_every=40,
        max_new_tokens=16,
        eval_docs=200,
    ),
    "lesson": dict(
        domain="arithmetic",
        max_steps=200,
        batch_size=16,
        learning_rate=1e-3,
        replay_share=0.5,
        eval_every=40,
        max_new_tokens=24,
        eval_docs=200,
    ),
    "gpu": dict(
        domain="arithmetic",
        max_steps=600,
        batch_size=16,
        learning_rate=1e-4,
        replay_share=0.5,
        eval_every=100,
        max_new_tokens=32,
        eval_docs=200,
    ),
}
# --8<-- [end:args]


# --8<-- [start:data]
def datasets_for(tokenizer, args, limit: int) -> tuple[Dataset, Dataset]:
    """Narrow: the domain task's chats only. Replay: the same rows plus general rows (half web
    text, half the other tasks' chats), so that `replay_share` of all rows are general."""
    rng = random.Random(args.seed)
    domain = [
        chat_row(tokenizer, {"messages": e.messages()}, limit)
        for e in examples("train", (args.domain,), args.seed)
    ]
    n_general = round(len(domain) * args.replay_share / (1 - args.replay_share))
    others = examples("train", tuple(t for t in TASKS if t != args.domain), args.seed)
    web = web_corpus("train", n_docs=n_general, seed=args.seed + 1)
    general = [text_row(tokenizer, d.text, limit) for d in web[: n_general - n_general // 2]]
    general += [
        chat_row(tokenizer, {"messages": e.messages()}, limit)
        for e in rng.sample(others, n_general // 2)
    ]
    replay = domain + general
    rng.shuffle(replay)
    return Dataset.from_list(domain), Dataset.from_list(replay)


# --8<-- [end:data]


# --8<-- [start:measure]
@torch.no_grad()
def reply_perplexity(model, tokenizer, exs) -> float:
    """exp(mean cross-entropy) over reply tokens of held-out chats: what domain tuning lowers."""
    model.eval()
    nll, count = 0.0, 0
    for e in exs:
        enc = tokenizer.apply_chat_template(
            e.messages(), return_dict=True, return_assistant_tokens_mask=True
        )
        ids = torch.tensor([enc["input_ids"]], device=model.device)
        labels = ids.masked_fill(
            torch.tensor([enc["assistant_masks"]], device=model.device) == 0, -100
        )
        n = int((labels[:, 1:] != -100).sum())
        nll += model(input_ids=ids, labels=labels).loss.item() * n
        count += n
    return math.exp(nll / count)


class Probe(TrainerCallback):
    """Measures the model before the first step and every `every` steps: domain, general, tasks."""

    def __init__(self, model, tokenizer, args, run: str):
        self.model, self.tok, self.run, self.every, self.new = (
            model,
            tokenizer,
            run,
            args.eval_every,
            args.max_new_tokens,
        )
        self.domain = examples("test", (args.domain,), args.seed)
        self.others = examples("test", tuple(t for t in TASKS if t != args.domain), args.seed)
        self.web = [d.text for d in web_corpus("val", n_docs=args.eval_docs, seed=args.seed)]
        self.block = min(128, model.config.n_positions)
        self.curve = []

    def measure(self, step: int) -> dict:
        replies = complete(self.model, self.tok, chat_prompts(self.tok, self.others), self.new)
        point = {
            "run": self.run,
            "step": step,
            "domain_perplexity": reply_perplexity(self.model, self.tok, self.domain),
            "general_perplexity": perplexity(self.model, self.tok, self.web, self.block),
            "other_task_accuracy": score(replies, self.others)["task_accuracy"],
        }
        self.curve.append(point)
        self.model.train()
        return point

    def on_train_begin(self, args, state, control, **kwargs):
        self.measure(0)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.measure(state.global_step)


# --8<-- [end:measure]


# --8<-- [start:trainer]
def finetune(model_path: str, train: Dataset, args, run: str) -> list[dict]:
    model, tokenizer = load(model_path)  # a fresh copy of the SFT model for each run
    config = SFTConfig(
        **trainer_defaults(args.output_dir / f"trainer-{run}", args.seed),
        max_steps=args.max_steps,  # (1)!
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,  # (2)!
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=args.max_steps // 20,
        logging_steps=args.eval_every,
    )
    probe = Probe(model, tokenizer, args, run)
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[probe],
    )
    trainer.train()
    return probe.curve


# --8<-- [end:trainer]


def curves_plot(narrow: list[dict], replay: list[dict], args, path) -> None:
    fig, axes = plots.plt.subplots(1, 3, figsize=(9.6, 3.2))
    panels = [
        ("domain_perplexity", f"{args.domain} perplexity (replies)"),
        ("general_perplexity", "general perplexity (web text)"),
        ("other_task_accuracy", "other tasks' accuracy"),
    ]
    for ax, (key, title) in zip(axes, panels):
        for curve, label, style in ((narrow, "narrow", "C3"), (replay, "replay", "C2")):
            ax.plot(
                [p["step"] for p in curve],
                [p[key] for p in curve],
                marker="o",
                ms=3,
                color=style,
                label=label,
            )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        # general perplexity rises by factors, not steps
        ax.set_yscale("log" if key == "general_perplexity" else "linear")
    axes[2].set_ylim(0, 1)
    axes[0].legend()
    plots.save(fig, path)


def write_report(args, narrow: list[dict], replay: list[dict]) -> None:
    """`results.md` (start, narrow, replay) and `forgetting.png` (the measures over steps)."""
    table = [
        {"model": "SFT model (start)", **narrow[0]},
        {"model": f"narrow: {args.domain} only", **narrow[-1]},
        {"model": f"replay: {args.replay_share:.0%} general rows", **replay[-1]},
    ]
    (args.output_dir / "results.md").write_text(
        report.records(
            table,
            [
                ("model", "model", ""),
                ("domain_perplexity", f"{args.domain} perplexity (replies)", ".2f"),
                ("general_perplexity", "general perplexity (web text)", ".2f"),
                ("other_task_accuracy", "other tasks' accuracy", ".0%"),
            ],
        ).replace("| ---: |", "| --- |", 1)
        + caption()
    )
    curves_plot(narrow, replay, args, args.output_dir / "forgetting.png")


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    if args.domain not in TASKS:
        raise LabError(f"--domain must be one of {', '.join(TASKS)}, got {args.domain!r}")
    if not 0 < args.replay_share < 1:
        raise LabError(
            f"--replay_share must lie strictly between 0 and 1, got {args.replay_share}"
        )
    set_seed(args.seed)
    start = time.perf_counter()
    path = args.model or stage_model("sft", args.preset, args.seed)  # the SFT stage's model
    _, tokenizer = load(path)

    # --8<-- [start:runs]
    narrow_data, replay_data = datasets_for(tokenizer, args, limit=128)
    narrow = finetune(path, narrow_data, args, "narrow")  # domain rows only
    replay = finetune(path, replay_data, args, "replay")  # same steps, general rows mixed in
    # --8<-- [end:runs]

    base, end_n, end_r = narrow[0], narrow[-1], replay[-1]
    metrics = {}
    for key in ("domain_perplexity", "general_perplexity", "other_task_accuracy"):
        metrics |= {
            f"{key}_base": base[key],
            f"{key}_narrow": end_n[key],
            f"{key}_replay": end_r[key],
        }
    rise = end_n["general_perplexity"] - base["general_perplexity"]
    metrics["replay_recovered_share"] = (
        (end_n["general_perplexity"] - end_r["general_perplexity"]) / rise if rise > 0 else 0.0
    )
    metrics |= {
        "domain": args.domain,
        "domain_rows": len(narrow_data),
        "replay_rows": len(replay_data),
        "curves": narrow + replay,
        "wall_seconds": time.perf_counter() - start,
    }
    write_metrics(args.output_dir, metrics)
    write_report(args, narrow, replay)
    return metrics


if __name__ == "__main__":
    run(main)
