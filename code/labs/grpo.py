"""GRPO with a verifiable reward: sample a group of replies, score each with a program, learn from
the differences within the group.

    python code/labs/grpo.py --output_dir runs/grpo                  # lesson preset: CPU minutes
    python code/labs/grpo.py --output_dir runs/grpo --preset smoke   # half a minute
    python code/labs/grpo.py --output_dir runs/grpo --preset gpu     # real gpt2 on openai/gsm8k
    python code/labs/grpo.py --output_dir runs/grpo --num_generations 4 --beta 0.3   # your G and β

TRL's `GRPOTrainer` tunes the SFT model on half of its training questions, rewarded by a program
(is the final answer the gold one? plus a small format bonus), at β = 0 (TRL's default), at β > 0,
and paid for the format alone, which gets gamed. The questions: emails whose subject line was cut
(write it: a skill the SFT model has half learned), and facts and sums (knowledge: one answer per
question). Scored on GRPO's questions, the other half (SFT only) and held-out ones, each task
apart. Writes metrics.json, memory.json, groups.png, results.md, samples.md.

Longer than the 250 lines a lab aims for: three GRPO runs (β = 0, β > 0, a format-only reward
that gets gamed), each scored on three question sets, greedy and sampled, with the group
statistics logged during training.
"""

import time
import zlib
from dataclasses import dataclass, field, replace

import torch
from datasets import Dataset
from transformers import set_seed
from trl import GRPOConfig, GRPOTrainer

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, comma_list, parse, run, write_metrics, write_peak_rss
from lifecycle.evaluation import chat_prompts, spread
from lifecycle.models import load
from lifecycle.rewards import correct, formatted, gsm8k, set_scores
from lifecycle.rlhf import kl_to_reference, model_memory
from lifecycle.stages import stage_model
from lifecycle.tokenizer import ready_tokenizer
from lifecycle.training import trainer_defaults
from lifecycle.world import TASKS, Example, examples


def _help(text: str) -> dict:  # field metadata
    return {"help": text}


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = (
        "num_generations",
        "prompts_per_step",
        "max_steps",
        "learning_rate",
        "max_completion_length",
        "temperature",
        "beta",
    )
    model: str | None = field(default=None, metadata=_help("The SFT policy (default: SFT stage)."))
    tasks: str | None = field(default=None, metadata=_help("Comma-separated world tasks to ask."))
    hub_data: str | None = field(default=None, metadata=_help("A GSM8K-style Hub dataset (gpu)."))
    num_generations: int | None = field(default=None, metadata=_help("G: replies per prompt."))
    prompts_per_step: int | None = field(default=None, metadata=_help("Prompts (groups) a step."))
    max_steps: int | None = field(default=None, metadata=_help("Optimizer steps per run."))
    learning_rate: float | None = field(default=None, metadata=_help("Peak learning rate."))
    max_completion_length: int | None = field(default=None, metadata=_help("Max tokens a reply."))
    temperature: float | None = field(default=None, metadata=_help("Sampling temperature."))
    beta: float | None = field(default=None, metadata=_help("β of the second run (the first: 0)."))
    format_weight: float | None = field(default=None, metadata=_help("Format bonus (answer: 1)."))
    eval_questions: int | None = field(default=None, metadata=_help("Questions per set (0: all)."))


SHORT = "capital,export,job,arithmetic"  # facts and sums: knowledge, one answer per question
WORLD = dict(
    tasks=f"subject,{SHORT}",
    prompts_per_step=8,
    max_completion_length=16,
    temperature=1.0,
    beta=0.3,
    format_weight=0.1,
    eval_questions=0,
)
PRESETS = {
    "smoke": WORLD | dict(num_generations=8, max_steps=24, learning_rate=6e-4),
    "lesson": WORLD | dict(num_generations=8, max_steps=50, learning_rate=3e-4),
    "gpu": dict(
        hub_data="openai/gsm8k",
        num_generations=8,
        prompts_per_step=8,
        max_steps=200,
        learning_rate=1e-6,
        max_completion_length=256,
        temperature=1.0,
        beta=0.04,
        format_weight=0.1,
        eval_questions=200,
    ),
}
# --8<-- [end:args]
SETS = {
    "trained": "questions GRPO trained on",
    "sft_only": "the other half (SFT only)",
    "heldout": "held-out questions",
}
KINDS = {"subject": "email subject lines", "facts": "facts and sums"}  # a skill; knowledge


def with_kinds(scores: dict, sets: dict[str, list[Example]]) -> dict:
    """`scores` plus the gold score of the facts and sums of each set together ("gold_facts_
    heldout"), from the per-task scores, where a set mixes them with subject lines."""
    out = dict(scores)
    for s, exs in sets.items():
        facts = [e.task for e in exs if e.task != "subject"]
        if f"gold_subject_{s}" in scores and facts:
            right = sum(scores[f"gold_{t}_{s}"] * facts.count(t) for t in set(facts))
            out[f"gold_facts_{s}"] = right / len(facts)
    return out


# --8<-- [start:data]
SUBJECT = "Write a subject line for this email."


def without_subject(e: Example) -> Example:
    """A `summary` question with the email's subject line cut out. SFT taught the model to copy
    the subject line, which is the gold; now the topic and the day must come from the body."""
    _, body = e.prompt.split("\n\nSubject: ", 1)[1].split("\n\n", 1)
    return Example("subject", f"{SUBJECT}\n\n{body}", e.answer, e.gold, e.split)


def world_questions(split: str, tasks: list[str], seed: int) -> list[Example]:
    """The world's questions of `tasks` in one split; the task "subject" is `without_subject`."""
    out = []
    for task in tasks:
        exs = examples(split, ("summary" if task == "subject" else task,), seed)
        out += [without_subject(e) for e in exs] if task == "subject" else exs
    return out


def questions(args) -> dict[str, list[Example]]:
    """GRPO's prompts and the three scored sets of `SETS`. World: the SFT model's training
    questions, split in two by a stable hash; GRPO trains on one half and never sees the other;
    held out: the test split (other emails, entities and sums). GSM8K: train and test, no
    `sft_only`."""
    if args.hub_data:
        train, heldout = gsm8k(args.hub_data, "train"), gsm8k(args.hub_data, "test")
        sets = {"prompts": train, "trained": train, "sft_only": [], "heldout": heldout}
    else:
        tasks = comma_list("tasks", args.tasks, str, (*TASKS, "subject"))
        pool = world_questions("train", tasks, args.seed)
        half = [zlib.crc32(f"grpo:{e.task}:{e.prompt}".encode()) % 2 for e in pool]
        trained = [e for e, h in zip(pool, half) if h == 0]
        sets = {
            "prompts": trained,
            "trained": trained,
            "sft_only": [e for e, h in zip(pool, half) if h == 1],
            "heldout": world_questions("test", tasks, args.seed),
        }
    n = args.eval_questions  # the scored sets may be cut, every task kept; GRPO trains on all
    return {k: spread(v, n) if n and k != "prompts" and n < len(v) else v for k, v in sets.items()}


def prompt_dataset(exs: list[Example]) -> Dataset:
    """Conversational prompts (TRL applies the chat template); other columns reach the reward."""
    return Dataset.from_dict(
        {
            "prompt": [[{"role": "user", "content": e.prompt}] for e in exs],
            "gold": [e.gold for e in exs],
            "task": [e.task for e in exs],
        }
    )


# --8<-- [end:data]


# --8<-- [start:reward]
def verifiable_reward(tokenizer, G: int, format_weight: float, answer_weight: float = 1.0):
    """A TRL reward function: `answer_weight` for a right final answer plus `format_weight` for the
    format, per reply. It also logs the statistics of each group of G replies, which TRL's own logs
    only summarize."""

    def reward(completion_ids, gold, task, log_metric, **kwargs) -> list[float]:
        texts = tokenizer.batch_decode(completion_ids)  # (1)!
        right = torch.tensor([correct(t, g, k) for t, g, k in zip(texts, gold, task)])
        shaped = torch.tensor([formatted(t, k) for t, k in zip(texts, task)])
        rewards = answer_weight * right.float() + format_weight * shaped.float()
        groups = rewards.view(-1, G)  # (2)!
        stats = {
            "gold": right.float().mean(),
            "format": shaped.float().mean(),
            "group_mean": groups.mean(),
            "group_std": groups.std(1).mean(),
            "zero_variance_group_share": (groups.std(1) == 0).float().mean(),
        }
        for key, value in stats.items():  # (3)!
            log_metric(key, value.item())
        return rewards.tolist()

    reward.__name__ = "verifiable"  # TRL logs it as rewards/verifiable/mean
    return reward


# --8<-- [end:reward]


# --8<-- [start:trainer]
def grpo_run(args, train: Dataset, beta: float, answer_weight: float, name: str):
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
        disable_dropout=True,  # the same log-probabilities in the loss, the KL term and sampling
        logging_steps=1,
    )
    reward = verifiable_reward(tokenizer, args.num_generations, args.format_weight, answer_weight)
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=reward,
        args=config,
        train_dataset=train,
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


# --8<-- [end:trainer]


def write_report(args, m: dict, histories: dict, asked: list[Example], samples: dict) -> None:
    out, runs = args.output_dir, m["runs"]
    sets, models = [s for s in SETS if m[f"questions_{s}"]], [("SFT model", m["before"][0])]
    measures = (
        [(f"gold_{s}", f"gold: {SETS[s]}") for s in sets]
        + [
            (f"gold_{k}_{s}", f"gold: {SETS[s]}, {label}")
            for s in SETS
            for k, label in KINDS.items()
        ]
        + [(f"sampled_{s}", f"pass@1 sampled: {SETS[s]}") for s in ("trained", "heldout")]
        + [
            ("format_heldout", "format rate: held-out questions"),
            ("anywhere_trained", "lenient check: questions GRPO trained on"),
        ]
    )
    models += [(r["run"], r) for r in runs]
    lines = [
        "| | " + " | ".join(n for n, _ in models) + f" | change ({runs[0]['run']}) |",
        "| --- |" + " ---: |" * (len(models) + 1),
    ]
    lines += [
        f"| {label} | "
        + " | ".join(f"{r[k]:.0%}" for _, r in models)
        + f" | {100 * (runs[0][k] - m['before'][0][k]):+.0f} points |"
        for k, label in measures
        if k in m["before"][0]
    ]
    cost = [
        r
        | {
            "mib": r["param_bytes_held"] / 2**20,
            "s": t,
            "train_mib": (r["train_memory_bytes"] - r["param_bytes_held"]) / 2**20,
        }
        for r, t in zip(runs, m["run_seconds"])
    ]
    (out / "results.md").write_text(
        "\n".join(lines)
        + "\n\n"
        + report.records(
            cost,
            [
                ("run", "run", ""),
                ("kl_to_reference", "KL to SFT model (held-out)", ".2f"),
                ("models_held", "models held", ""),
                ("mib", "parameters (MiB)", ".1f"),
                ("train_mib", "+ gradients, AdamW state (MiB)", ".1f"),
                ("s", "training time (s)", ".0f"),
            ],
        )
        + "\nGold: greedy replies whose final answer is right. pass@1 sampled: the share of right "
        f"replies among G = {m['num_generations']} sampled a question, as in training. Questions "
        "per set: " + ", ".join(f"{SETS[s]} {m[f'questions_{s}']}" for s in sets) + ". KL in nats "
        f"per reply. {m['replies_sampled_per_run']:,} replies sampled per run; times on a shared "
        "2-core CPU.\n"
    )
    right = lambda reply, e: correct(reply, e.gold, e.task)  # noqa: E731
    # an email shown by its news line ("We moved the ... to Tuesday"), not by the instruction
    shown = [
        replace(e, prompt=e.prompt.split("\n")[3]) if e.task == "subject" else e for e in asked
    ]
    (out / "samples.md").write_text(report.samples_table(shown, samples, right))

    zero_variance = {n: report.curve(h, "zero_variance_group_share") for n, h in histories.items()}
    plots.group_rewards(
        m["group_reward_mean"],
        m["group_reward_std"],
        zero_variance,
        out / "groups.png",
        f"{runs[0]['run']}: reward per group",
    )


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    if args.num_generations < 2:  # a group needs two replies to compare
        raise LabError(f"--num_generations must be at least 2, got {args.num_generations}")
    set_seed(args.seed)
    sets = questions(args)  # first, so that bad input fails before any model is built
    args.model = args.model or stage_model("sft", args.preset, args.seed)
    start, cpu = time.perf_counter(), time.process_time()  # GRPO's own time, not the SFT stage's
    sft, tokenizer = load(args.model)
    ready_tokenizer(tokenizer, sft)

    def score(model):  # greedy gold, format and lenient check on every set; sampled pass@1
        scores, replies = set_scores(
            model,
            tokenizer,
            {s: sets[s] for s in SETS if sets[s]},
            args.num_generations,
            args.max_completion_length,
            args.temperature,
            args.seed,
            sampled=("trained", "heldout"),  # the other half: greedy only, to save time
        )
        return with_kinds(scores, sets), replies

    before, replies = score(sft)
    samples = {"SFT model": replies}

    # --8<-- [start:runs]
    # no answer check: the format bonus alone, gamed
    plan = [
        ("answer + format, β = 0", 0.0, 1.0),  # TRL's default β: no reference model
        (f"answer + format, β = {args.beta:g}", args.beta, 1.0),
        ("format only, β = 0", 0.0, 0.0),
    ]
    runs, histories, seconds, dataset = [], {}, [], prompt_dataset(sets["prompts"])
    for name, beta, answer_weight in plan:
        set_seed(args.seed)
        t0 = time.perf_counter()
        trainer = grpo_run(args, dataset, beta, answer_weight, f"run{len(runs)}")
        seconds.append(time.perf_counter() - t0)
        policy, ref = trainer.model, trainer.ref_model  # no reference model at β = 0
        frozen = {"reference": ref} if ref else {}
        memory = model_memory({"policy": policy}, frozen, trainer.optimizer)
        after, samples[name] = score(policy)
        kl = kl_to_reference(
            policy,
            sft,
            tokenizer,
            chat_prompts(tokenizer, sets["heldout"]),
            args.max_completion_length,
            seed=args.seed,
        )
        runs.append(
            {
                "run": name,
                "beta": beta,
                "answer_weight": answer_weight,
                **after,
                "kl_to_reference": kl,
                "models_held": len(memory),
                "param_bytes_held": sum(r["parameter_bytes"] for r in memory),
                "train_memory_bytes": sum(r["total_bytes"] for r in memory),
                "memory": memory,  # by model, as the machinery table shows it
            }
        )
        histories[name] = trainer.state.log_history
    # --8<-- [end:runs]

    main_run, history = runs[0], histories[runs[0]["run"]]
    headline = {
        "gold_score": "gold_heldout",
        "format_rate": "format_heldout",  # key: measure
        "sampled_gold": "sampled_heldout",
        "gold_score_trained": "gold_trained",
        "sampled_gold_trained": "sampled_trained",
        "gold_score_sft_only": "gold_sft_only",
    }
    metrics = {  # the SFT model's (before) and the main run's (after)
        **{
            f"{key}_{when}": m[measure]
            for key, measure in headline.items()
            for when, m in (("before", before), ("after", main_run))
            if measure in m
        },
        "before": [before],
        "runs": runs,  # before: one row, the SFT model's scores
        "zero_variance_group_share": report.curve(history, "zero_variance_group_share"),
        "frac_reward_zero_std": report.curve(history, "frac_reward_zero_std"),  # TRL's own count
        "group_reward_mean": report.curve(history, "group_mean"),
        "group_reward_std": report.curve(history, "group_std"),
        "kl_to_reference": [{"beta": r["beta"], "kl": r["kl_to_reference"]} for r in runs[:2]],
        "num_generations": args.num_generations,
        "beta": args.beta,
        "format_weight": args.format_weight,
        **{f"questions_{k}": len(v) for k, v in sets.items()},
        **{
            k: main_run[k]
            for k in ("models_held", "param_bytes_held", "train_memory_bytes", "memory")
        },
        "replies_sampled_per_run": args.max_steps * args.prompts_per_step * args.num_generations,
        "run_seconds": seconds,
        "wall_seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,  # one thread: the wall time of an idle machine
    }
    write_metrics(args.output_dir, metrics)
    write_peak_rss(args.output_dir)
    write_report(args, metrics, histories, sets["trained"], samples)
    return metrics


if __name__ == "__main__":
    run(main)
