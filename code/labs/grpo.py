"""GRPO with a verifiable reward: sample a group of replies, score each with a program, learn from the
differences within the group.

    python code/labs/grpo.py --output_dir runs/grpo                  # lesson preset, about two CPU minutes
    python code/labs/grpo.py --output_dir runs/grpo --preset smoke   # seconds
    python code/labs/grpo.py --output_dir runs/grpo --preset gpu     # real gpt2 on openai/gsm8k
    python code/labs/grpo.py --output_dir runs/grpo --num_generations 4 --beta 0.1   # your own G and β

TRL's `GRPOTrainer` fine-tunes the SFT model on the world's questions. The reward is a program, not a
model: is the reply's final answer the gold one? (plus a small bonus for the reply format). Three runs from
the same SFT model: TRL's default β = 0 (no KL term, no reference model), the same with β > 0, and one paid
by a lenient checker that accepts the gold answer anywhere in the reply, which gets gamed. Each run's
greedy replies to held-out questions are scored by both checkers, and its KL to the SFT model is measured
on held-out prompts. Writes `metrics.json`, `groups.png`, `results.md` and `samples.md`.
"""

import time
from dataclasses import dataclass, field

import torch
from datasets import Dataset, load_dataset
from transformers import set_seed
from trl import GRPOConfig, GRPOTrainer

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, comma_list, parse, run, write_metrics
from lifecycle.evaluation import chat_prompts, complete
from lifecycle.models import load
from lifecycle.rlhf import kl_to_reference, param_bytes
from lifecycle.stages import stage_model
from lifecycle.tokenizer import ready_tokenizer
from lifecycle.training import trainer_defaults
from lifecycle.rewards import correct, formatted
from lifecycle.world import TASKS, Example, examples


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("num_generations", "prompts_per_step", "max_steps", "learning_rate", "max_completion_length",
                "temperature", "beta")
    model: str | None = field(default=None, metadata={"help": "The SFT policy: a folder or Hub id (default: the SFT stage)."})
    tasks: str | None = field(default=None, metadata={"help": "Comma-separated world tasks to ask."})
    hub_data: str | None = field(default=None, metadata={"help": "A GSM8K-style Hub dataset (gpu preset)."})
    num_generations: int | None = field(default=None, metadata={"help": "G: replies sampled per prompt (a group)."})
    prompts_per_step: int | None = field(default=None, metadata={"help": "Prompts (groups) per optimizer step."})
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps per run."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    max_completion_length: int | None = field(default=None, metadata={"help": "Max tokens per reply."})
    temperature: float | None = field(default=None, metadata={"help": "Sampling temperature of the groups."})
    beta: float | None = field(default=None, metadata={"help": "β of the second run (KL term); the first has β = 0."})
    format_weight: float | None = field(default=None, metadata={"help": "The format bonus; a right answer earns 1."})
    eval_questions: int | None = field(default=None, metadata={"help": "Held-out questions scored (0: all)."})


WORLD = dict(tasks="capital,export,job,arithmetic", max_completion_length=16, temperature=1.0, beta=0.1,
             format_weight=0.1, eval_questions=0)
PRESETS = {
    "smoke": WORLD | dict(num_generations=4, prompts_per_step=8, max_steps=12, learning_rate=3e-4),
    "lesson": WORLD | dict(num_generations=8, prompts_per_step=8, max_steps=50, learning_rate=1e-4),
    "gpu": dict(hub_data="openai/gsm8k", num_generations=8, prompts_per_step=8, max_steps=200, learning_rate=1e-6,
                max_completion_length=256, temperature=1.0, beta=0.04, format_weight=0.1, eval_questions=200),
}
# --8<-- [end:args]


# --8<-- [start:data]
def questions(args) -> tuple[list[Example], list[Example]]:
    """Training prompts and held-out questions: the world's test split (other entities, other sums), or
    GSM8K's test split, whose gold is the number after `####` at the end of each worked answer."""
    if args.hub_data:
        try:
            data = load_dataset(args.hub_data, "main")
        except Exception as e:  # datasets raises several types when offline
            raise LabError(f"cannot load {args.hub_data} from the Hub (offline?): {type(e).__name__}") from None
        exs = {split: [Example("gsm8k", r["question"], r["answer"], r["answer"].rsplit("####", 1)[-1].strip()
                               .replace(",", ""), split) for r in data[split]] for split in ("train", "test")}
        train, held = exs["train"], exs["test"]
    else:
        tasks = tuple(comma_list("tasks", args.tasks, str, TASKS))
        train, held = examples("train", tasks, args.seed), examples("test", tasks, args.seed)
    return train, held[: args.eval_questions] if args.eval_questions else held


def prompt_dataset(exs: list[Example]) -> Dataset:
    """Conversational prompts (TRL applies the chat template); every other column reaches the reward."""
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": e.prompt}] for e in exs],
                              "gold": [e.gold for e in exs], "task": [e.task for e in exs]})
# --8<-- [end:data]


# --8<-- [start:reward]
def verifiable_reward(tokenizer, G: int, format_weight: float, anywhere: bool = False):
    """A TRL reward function: 1 for a right answer plus `format_weight` for the format, per reply. It also
    logs the statistics of each group of G replies, which TRL's own logs only summarize."""
    def reward(completion_ids, gold, task, log_metric, **kwargs) -> list[float]:
        texts = tokenizer.batch_decode(completion_ids)  # (1)!
        right = torch.tensor([correct(t, g, k, anywhere) for t, g, k in zip(texts, gold, task)], dtype=torch.float)
        shaped = torch.tensor([formatted(t, k) for t, k in zip(texts, task)], dtype=torch.float)
        rewards = right + format_weight * shaped
        groups = rewards.view(-1, G)  # (2)!
        stats = {"gold": right.mean(), "format": shaped.mean(), "group_mean": groups.mean(),
                 "group_std": groups.std(1).mean(), "zero_variance_group_share": (groups.std(1) == 0).float().mean()}
        for key, value in stats.items():  # (3)!
            log_metric(key, value.item())
        return rewards.tolist()

    reward.__name__ = "verifiable"
    return reward
# --8<-- [end:reward]


# --8<-- [start:trainer]
def grpo_run(args, train: Dataset, beta: float, anywhere: bool, name: str):
    policy, tokenizer = load(args.model)
    ready_tokenizer(tokenizer, policy)  # a no-op for our tokenizer and for the SFT stage's gpt2
    config = GRPOConfig(
        **trainer_defaults(args.output_dir / "trainer" / name, args.seed),
        num_generations=args.num_generations,  # (1)!
        per_device_train_batch_size=args.num_generations * args.prompts_per_step,  # (2)!
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        max_completion_length=args.max_completion_length,
        temperature=args.temperature,
        beta=beta,  # (3)!
        loss_type="dapo",  # (4)!
        scale_rewards="group",  # (5)!
        disable_dropout=True,  # the same log-probabilities in the loss, the KL term and the sampler
        logging_steps=1,
    )
    reward = verifiable_reward(tokenizer, args.num_generations, args.format_weight, anywhere)
    trainer = GRPOTrainer(model=policy, reward_funcs=reward, args=config, train_dataset=train,
                          processing_class=tokenizer)
    trainer.train()
    return trainer
# --8<-- [end:trainer]


# --8<-- [start:evaluate]
def evaluate(model, tokenizer, exs: list[Example], max_new_tokens: int) -> tuple[dict, list[str]]:
    """Greedy replies to held-out questions: the share in format, the share whose final answer is right (gold
    score), and the share the lenient check would pass."""
    replies = complete(model, tokenizer, chat_prompts(tokenizer, exs), max_new_tokens)
    n = len(exs)
    return {"gold_score": sum(correct(r, e.gold, e.task) for r, e in zip(replies, exs)) / n,
            "gold_anywhere": sum(correct(r, e.gold, e.task, anywhere=True) for r, e in zip(replies, exs)) / n,
            "format_rate": sum(formatted(r, e.task) for r, e in zip(replies, exs)) / n}, replies
# --8<-- [end:evaluate]


def curve(history: list[dict], key: str) -> list[dict]:
    return [{"step": h["step"], "value": h[key]} for h in history if key in h]


def values(points: list[dict]) -> list[float]:
    return [p["value"] for p in points]


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    if args.num_generations < 2:
        raise LabError(f"--num_generations must be at least 2 (a group needs two replies to compare), got {args.num_generations}")
    set_seed(args.seed)
    train_exs, heldout = questions(args)  # first, so that bad input fails before any model is built
    args.model = args.model or stage_model("sft", args.preset, args.seed)
    start = time.perf_counter()  # GRPO's own time, not the SFT stage's
    sft, tokenizer = load(args.model)
    ready_tokenizer(tokenizer, sft)
    before, replies = evaluate(sft, tokenizer, heldout, args.max_completion_length)
    samples = {"SFT model": replies}

    # --8<-- [start:runs]
    plan = [("final answer, β = 0", 0.0, False),  # TRL's default β: no reference model
            (f"final answer, β = {args.beta:g}", args.beta, False),
            ("answer anywhere, β = 0", 0.0, True)]  # the lenient checker, gamed
    runs, histories, seconds = [], {}, []
    for name, beta, anywhere in plan:
        set_seed(args.seed)
        t0 = time.perf_counter()
        trainer = grpo_run(args, prompt_dataset(train_exs), beta, anywhere, f"run{len(runs)}")
        seconds.append({"run": name, "seconds": time.perf_counter() - t0})
        policy = trainer.model
        after, samples[name] = evaluate(policy, tokenizer, heldout, args.max_completion_length)
        kl = kl_to_reference(policy, sft, tokenizer, chat_prompts(tokenizer, heldout), args.max_completion_length,
                             seed=args.seed)
        models = [m for m in (trainer.model, trainer.ref_model) if m is not None]
        runs.append({"run": name, "beta": beta, "checker": "anywhere" if anywhere else "final answer",
                     "gold_score_after": after["gold_score"], "gold_anywhere_after": after["gold_anywhere"],
                     "format_rate_after": after["format_rate"], "kl_to_reference": kl, "models_held": len(models),
                     "param_bytes_held": param_bytes(*models)})
        histories[name] = trainer.state.log_history
    # --8<-- [end:runs]

    main_run, kl_run = runs[:2]
    history = histories[main_run["run"]]
    metrics = {
        "gold_score_before": before["gold_score"], "gold_score_after": main_run["gold_score_after"],
        "format_rate_before": before["format_rate"], "format_rate_after": main_run["format_rate_after"],
        "gold_anywhere_before": before["gold_anywhere"], "runs": runs,
        "zero_variance_group_share": curve(history, "zero_variance_group_share"),
        "frac_reward_zero_std": curve(history, "frac_reward_zero_std"),  # TRL's own count, for the cross-check
        "group_reward_mean": curve(history, "group_mean"), "group_reward_std": curve(history, "group_std"),
        "kl_to_reference": [{"beta": r["beta"], "kl": r["kl_to_reference"]} for r in (main_run, kl_run)],
        "num_generations": args.num_generations, "beta": args.beta, "format_weight": args.format_weight,
        "heldout_questions": len(heldout), "train_prompts": len(train_exs),
        "models_held": main_run["models_held"], "param_bytes_held": main_run["param_bytes_held"],
        "replies_sampled_per_run": args.max_steps * args.prompts_per_step * args.num_generations,
        "run_seconds": seconds, "wall_seconds": time.perf_counter() - start,
    }
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, histories, heldout, samples)
    return metrics


def write_report(args, m: dict, histories: dict, heldout: list[Example], samples: dict) -> None:
    out, runs = args.output_dir, m["runs"]
    rows = [r | {"mib": r["param_bytes_held"] / 2**20, "s": t["seconds"]} for r, t in zip(runs, m["run_seconds"])]
    (out / "results.md").write_text(report.records(rows, [
        ("run", "run (checker, β)", ""), ("gold_score_after", "gold score (final answer)", ".0%"),
        ("gold_anywhere_after", "answer anywhere", ".0%"), ("format_rate_after", "format rate", ".0%"),
        ("kl_to_reference", "KL to SFT model", ".2f"), ("models_held", "models held", ""),
        ("mib", "parameter memory (MiB)", ".1f"), ("s", "training time (s)", ".0f"),
    ]) + f"\nBefore GRPO (the SFT model): gold score {m['gold_score_before']:.0%} (answer anywhere "
        f"{m['gold_anywhere_before']:.0%}), format rate {m['format_rate_before']:.0%}. Greedy replies to "
        f"{m['heldout_questions']} held-out questions; KL in nats per reply; G = {m['num_generations']}, "
        f"{m['replies_sampled_per_run']:,} replies sampled per run; times on a shared 2-core CPU.\n")
    lines = ["| question | gold | model | reply |", "| --- | --- | --- | --- |"]
    for i in range(0, len(heldout), max(1, len(heldout) // 4))[:4]:  # spread over the tasks
        e = heldout[i]
        lines += [f"| {report.cell(e.prompt, 40)} | {report.cell(e.gold, 20)} | {name} | "
                  f"{'✓' if correct(r[i], e.gold, e.task) else '✗'} {report.cell(r[i])} |" for name, r in samples.items()]
    (out / "samples.md").write_text("\n".join(lines) + "\n")

    fig, (a, b) = plots.plt.subplots(1, 2, figsize=(8.0, 3.4))
    (steps, mean), std = zip(*[(p["step"], p["value"]) for p in m["group_reward_mean"]]), values(m["group_reward_std"])
    a.plot(steps, mean, label="mean reward of a group")
    a.fill_between(steps, [x - s for x, s in zip(mean, std)], [x + s for x, s in zip(mean, std)], alpha=0.25,
                   label="± std within a group")
    a.set_title(f"{runs[0]['run']}: reward per group", fontsize=9)
    for name, history in histories.items():
        b.plot(steps, values(curve(history, "zero_variance_group_share")), label=name)
    b.set(ylim=(-0.05, 1.05), title="share of groups whose G replies all scored the same")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    plots.save(fig, out / "groups.png")


if __name__ == "__main__":
    run(main)
