"""PPO against a flawed reward model: optimize reward, on a KL leash.

    python code/labs/ppo.py --output_dir runs/ppo                  # lesson preset, CPU minutes
    python code/labs/ppo.py --output_dir runs/ppo --preset smoke   # about a minute
    python code/labs/ppo.py --output_dir runs/ppo --preset gpu     # gpt2 (SFT, reward on gpt2)
    # your own sweep:
    python code/labs/ppo.py --output_dir runs/ppo --kl_coefs 0,0.3,1,3 --tuned_kl_coef 1

TRL 1.12's `trl.experimental.ppo.PPOTrainer` fine-tunes the SFT model against the *proxy* reward
model from the reward lab: it prefers polite, concise replies, and over-values flattery ("Wonderful
question, wonderful!"), right answer or not. One run per KL coefficient, `kl_coef = 0` included. At
a few checkpoints during every run, sampled replies to held-out prompts are scored twice, by the
proxy and by the world's gold check (the reference reply, nothing else), and the KL to the
reference is measured on the same prompts: the over-optimization curve of Gao, Schulman & Hilton
(2022). Writes `metrics.json`, `overoptimization.png`, `training.png`, `results.md`, `samples.md`
and `memory.json` (peak RSS, which differs between runs).

Longer than the 250 lines a lab aims for: a KL sweep whose every run is evaluated at several
checkpoints (proxy reward, gold score, √KL: the over-optimization curve), plus sampled replies
and training curves in its report.
"""

import math
import os
import time
from dataclasses import dataclass, field

from datasets import Dataset
from transformers import set_seed

# PPO is experimental in TRL 1.12 (gone in 1.13): pinned
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
from trl.experimental.ppo import PPOConfig, PPOTrainer  # noqa: E402

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, comma_list, parse, run, write_metrics, write_peak_rss
from lifecycle.device import caption
from lifecycle.evaluation import chat_prompts, sample
from lifecycle.models import load
from lifecycle.rlhf import Checkpoints, kl_to_reference, model_memory, reward_scores
from lifecycle.stages import stage_model
from lifecycle.training import trainer_defaults
from lifecycle.world import TASKS, examples
from lifecycle.world.tasks import PROXY_KEYWORD, is_gold_reply


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = (
        "episodes",
        "batch_size",
        "learning_rate",
        "response_length",
        "reward_scale",
        "temperature",
        "eval_samples",
    )
    model: str | None = field(
        default=None, metadata={"help": "The SFT policy: a folder (default: the SFT stage)."}
    )
    reward_model: str | None = field(
        default=None, metadata={"help": "The proxy reward model (default: reward stage)."}
    )
    kl_coefs: str | None = field(
        default=None, metadata={"help": "Comma-separated KL coefficients, one run each."}
    )
    tuned_kl_coef: float | None = field(
        default=None, metadata={"help": "The coefficient the page calls tuned."}
    )
    episodes: int | None = field(
        default=None, metadata={"help": "Sampled replies per run (PPO's total_episodes)."}
    )
    batch_size: int | None = field(default=None, metadata={"help": "Replies per rollout."})
    mini_batches: int | None = field(
        default=None, metadata={"help": "Mini-batches per rollout; divides batch_size."}
    )
    ppo_epochs: int | None = field(
        default=None, metadata={"help": "Passes over each rollout (>=2 exercises clipping)."}
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": "Policy and value learning rate."}
    )
    response_length: int | None = field(
        default=None, metadata={"help": "Max tokens per sampled reply."}
    )
    temperature: float | None = field(
        default=None, metadata={"help": "Sampling temperature, in training and scoring."}
    )
    missing_eos_penalty: float | None = field(
        default=None, metadata={"help": "Subtracted from a reply that never ends."}
    )
    reward_scale: float | None = field(
        default=None, metadata={"help": "Multiplies the reward model's score head."}
    )
    tasks: str | None = field(
        default=None, metadata={"help": "Comma-separated world tasks for prompts."}
    )
    eval_samples: int | None = field(
        default=None, metadata={"help": "Sampled replies per held-out prompt at a check."}
    )
    checkpoints: str | None = field(
        default=None, metadata={"help": "Rollouts after which a run is scored."}
    )


PRESETS = {
    "smoke": dict(
        # a third fewer episodes than the lesson: at beta 1 the proxy rose by under 3 standard
        # errors within them, at 0.5 by 4 (gold rising too)
        kl_coefs="0,0.5",
        tuned_kl_coef=0.5,
        episodes=512,
        batch_size=16,
        mini_batches=2,
        ppo_epochs=2,
        learning_rate=4e-4,
        response_length=32,
        temperature=1.3,
        missing_eos_penalty=3.0,
        reward_scale=1.0,
        tasks="summary",
        eval_samples=4,
        checkpoints="2,8,16",
    ),
    "lesson": dict(
        kl_coefs="0,1",
        tuned_kl_coef=1.0,
        episodes=768,
        batch_size=16,
        mini_batches=2,
        ppo_epochs=2,
        learning_rate=2e-4,
        response_length=24,
        # above 1: varied enough samples that, unleashed, every seed drifts far (at 1.0 two
        # seeds in three never left the SFT model's replies, and their gold held)
        temperature=1.3,
        missing_eos_penalty=3.0,
        reward_scale=1.0,
        tasks="summary",
        eval_samples=4,
        checkpoints="2,4,8,16,32,48",
    ),
    "gpu": dict(
        kl_coefs="0,0.3,1",
        tuned_kl_coef=1.0,
        episodes=2048,
        batch_size=32,
        mini_batches=4,
        ppo_epochs=2,
        learning_rate=1e-5,
        response_length=32,
        temperature=1.0,
        missing_eos_penalty=3.0,
        reward_scale=1.0,
        tasks="summary",
        eval_samples=2,
        checkpoints="2,8,16,32,64",
    ),
}
# --8<-- [end:args]


def check_args(args) -> tuple[list[float], list[int]]:
    values = comma_list("kl_coefs", args.kl_coefs, float)
    if any(c < 0 for c in values):
        raise LabError(f"--kl_coefs must not be negative, got {args.kl_coefs!r}")
    if args.tuned_kl_coef not in values:
        raise LabError(
            f"--tuned_kl_coef {args.tuned_kl_coef} is not one of --kl_coefs {args.kl_coefs}"
        )
    if args.batch_size % args.mini_batches:
        raise LabError(
            f"--mini_batches {args.mini_batches} must divide --batch_size {args.batch_size}"
        )
    rollouts = math.ceil(args.episodes / args.batch_size)
    steps = sorted(
        {s for s in comma_list("checkpoints", args.checkpoints, int) if 0 < s < rollouts}
        | {rollouts}
    )
    return values, steps


# --8<-- [start:data]
def prompt_dataset(tokenizer, exs, batch_size: int) -> Dataset:
    """Tokenized chat prompts (PPOTrainer takes `input_ids`, and pads them on the left itself)."""
    ids = [
        tokenizer(p, add_special_tokens=False)["input_ids"] for p in chat_prompts(tokenizer, exs)
    ]
    while len(ids) < 2 * batch_size:  # (1)!
        ids += ids
    return Dataset.from_dict({"input_ids": ids})


# --8<-- [end:data]


# --8<-- [start:score]
def evaluate(policy, ref, proxy, tokenizer, heldout, args) -> dict:
    """Sampled replies to held-out prompts (the policy PPO trains is the sampling one), scored by
    the proxy reward model and by the world's gold check; and KL(π‖π_ref) on the same prompts."""
    prompts = chat_prompts(tokenizer, heldout)
    n = args.eval_samples
    replies = sample(
        policy, tokenizer, prompts, n, args.response_length, args.temperature, seed=args.seed
    )
    # prompt-major, as `sample` returns them
    asked = [x for x in zip(prompts, heldout) for _ in range(n)]
    scores = reward_scores(proxy, tokenizer, [p + r for (p, _), r in zip(asked, replies)])
    gold = sum(is_gold_reply(r, e) for (_, e), r in zip(asked, replies)) / len(replies)
    kl = kl_to_reference(policy, ref, tokenizer, prompts, args.response_length, seed=args.seed)
    keyword = sum(PROXY_KEYWORD in r.lower() for r in replies) / len(replies)
    return {
        "proxy_reward": scores.mean().item(),
        "proxy_reward_se": (scores.std() / len(scores) ** 0.5).item(),
        "gold_score": gold,
        "kl": kl,
        "sqrt_kl": math.sqrt(max(kl, 0.0)),
        "keyword_rate": keyword,
        "replies": replies[::n],
    }


# --8<-- [end:score]


# --8<-- [start:trainer]
def ppo_run(args, kl_coef: float, train: Dataset, steps: list[int], check):
    # PPOTrainer pads the prompts on this side
    policy, tokenizer = load(args.model, padding_side="left")
    ref, _ = load(args.model)  # (1)!
    # the critic: a copy of the policy with a scalar head
    value, _ = load(args.model, head="reward")
    reward, _ = load(args.reward_model, head="reward")
    reward.score.weight.data *= args.reward_scale  # (2)!
    config = PPOConfig(
        **trainer_defaults(args.output_dir / "trainer" / f"kl{kl_coef:g}", args.seed),
        kl_coef=kl_coef,  # (3)!
        total_episodes=args.episodes,  # (4)!
        per_device_train_batch_size=args.batch_size,
        num_mini_batches=args.mini_batches,
        num_ppo_epochs=args.ppo_epochs,  # (5)!
        learning_rate=args.learning_rate,  # (6)!
        response_length=args.response_length,
        temperature=args.temperature,  # (7)!
        stop_token="eos",  # our EOS is the end-of-turn token
        missing_eos_penalty=args.missing_eos_penalty,  # (8)!
        num_sample_generations=0,  # (9)!
        local_rollout_forward_batch_size=args.batch_size,
        logging_steps=1,
    )
    checkpoints = Checkpoints(steps, lambda: check(policy, ref))  # (10)!
    trainer = PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=policy,
        ref_model=ref,
        reward_model=reward,
        value_model=value,
        train_dataset=train,
        callbacks=[checkpoints],
    )
    trainer.train()
    memory = model_memory(
        {"policy": policy, "value": value}, {"reference": ref, "reward": reward}, trainer.optimizer
    )
    return checkpoints.rows, trainer.state.log_history, memory


# --8<-- [end:trainer]


def sample_table(exs, samples: dict[str, list[str]], n: int = 3) -> str:
    """`n` held-out prompts, answered by the SFT model and by each PPO run (one sampled reply)."""
    lines = ["| prompt | model | reply |", "| --- | --- | --- |"]
    for i in list(range(0, len(exs), max(1, len(exs) // n)))[:n]:
        for name, replies in samples.items():
            lines.append(
                f"| {report.cell(exs[i].prompt, 40)} | {name} | {report.cell(replies[i], 80)} |"
            )
    return "\n".join(lines) + "\n"


def training_curves(curves: dict[float, list[dict]], path) -> None:
    fig, (a, b) = plots.plt.subplots(1, 2, figsize=(8.0, 3.4))
    for kl_coef, rows in curves.items():
        ep = [h["episode"] for h in rows]
        a.plot(ep, [h["objective/scores"] for h in rows], label=f"β={kl_coef:g}")
        b.plot(ep, [h["objective/kl"] for h in rows], label=f"β={kl_coef:g}")
    a.set_title("proxy score per rollout (what PPO maximizes)", fontsize=9)
    b.set_title("TRL's logged KL per rollout (one batch)", fontsize=9)
    for ax in (a, b):
        ax.set(xlabel="episodes (sampled replies)"), ax.legend(fontsize=8)
    plots.save(fig, path)


def write_report(args, m: dict, curves: dict, heldout, samples: dict) -> None:
    """`results.md`, `samples.md` and the two plots."""
    plots.overoptimization(m["overoptimization"], args.output_dir / "overoptimization.png")
    training_curves(curves, args.output_dir / "training.png")
    before = m["runs"][0]
    rows = [
        r
        | {
            "proxy_gain": r["proxy_reward_after"] - r["proxy_reward_before"],
            "proxy_gain_se": (r["proxy_reward_se_before"] ** 2 + r["proxy_reward_se_after"] ** 2)
            ** 0.5,
        }
        for r in m["runs"]
    ]
    (args.output_dir / "results.md").write_text(
        report.records(
            rows,
            [
                ("kl_coef", "KL coefficient β", "g"),
                ("kl_final", "KL to reference (nats/reply)", ".2f"),
                ("proxy_reward_after", "proxy reward", ".2f"),
                ("proxy_gain", "proxy gain", "+.2f"),
                ("proxy_gain_se", "± its standard error", ".2f"),
                ("gold_score_after", "gold score", ".0%"),
                ("keyword_rate_after", f"replies with “{PROXY_KEYWORD}”", ".0%"),
            ],
        )
        + "\nBefore PPO (the SFT model): "
        f"proxy reward {before['proxy_reward_before']:.2f}, "
        f"gold score {before['gold_score_before']:.0%}, "
        f"replies with “{PROXY_KEYWORD}” {before['keyword_rate_before']:.0%}. "
        f"Every number: {args.eval_samples} sampled replies "
        f"(temperature {args.temperature:g}; for the KL, 1) to each of {len(heldout)} held-out "
        "prompts.\n" + caption()
    )
    (args.output_dir / "samples.md").write_text(sample_table(heldout, samples))


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    kl_coefs, steps = check_args(args)
    tasks = tuple(comma_list("tasks", args.tasks, choices=TASKS)) if args.tasks else TASKS
    set_seed(args.seed)
    start = time.perf_counter()
    # the earlier stages, from the cache or run now
    args.model = args.model or stage_model("sft", args.preset, args.seed)
    args.reward_model = args.reward_model or stage_model(
        "reward", args.preset, args.seed, "proxy_model"
    )

    sft, tokenizer = load(args.model)
    proxy, _ = load(args.reward_model, head="reward")  # unscaled, to report the proxy's own logits
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise LabError(
            f"{args.model}: the pad token equals EOS; PPO would mask every real end of reply"
        )
    train = prompt_dataset(tokenizer, examples("train", tasks, args.seed), args.batch_size)
    heldout = examples("test", tasks, args.seed)  # prompts PPO never trains on

    def check(policy, ref):
        return evaluate(policy, ref, proxy, tokenizer, heldout, args)

    before = check(sft, sft)

    runs, curve, curves, samples, memory = [], [], {}, {"SFT (before PPO)": before["replies"]}, []
    for kl_coef in kl_coefs:
        set_seed(args.seed)
        rows, history, memory = ppo_run(args, kl_coef, train, steps, check)
        after = rows[-1]
        runs.append(
            {
                "kl_coef": kl_coef,
                "proxy_reward_before": before["proxy_reward"],
                "proxy_reward_after": after["proxy_reward"],
                "proxy_reward_se_before": before["proxy_reward_se"],
                "proxy_reward_se_after": after["proxy_reward_se"],
                "gold_score_before": before["gold_score"],
                "gold_score_after": after["gold_score"],
                "kl_final": after["kl"],
                "keyword_rate_before": before["keyword_rate"],
                "keyword_rate_after": after["keyword_rate"],
            }
        )
        keep = ("step", "episode", "sqrt_kl", "proxy_reward", "gold_score", "keyword_rate")
        curve += [
            {"kl_coef": kl_coef, **{k: r[k] for k in keep}}
            for r in [{"step": 0, "episode": 0, **before}, *rows]
        ]
        curves[kl_coef] = [h for h in history if "objective/scores" in h]
        samples[f"kl_coef = {kl_coef:g}"] = after["replies"]

    tuned, free = (
        next((r for r in runs if r["kl_coef"] == c), None) for c in (args.tuned_kl_coef, 0)
    )
    metrics = {
        "runs": runs,
        "overoptimization": curve,
        "tuned_kl_coef": args.tuned_kl_coef,
        "kl_ratio_free_vs_tuned": free["kl_final"] / max(tuned["kl_final"], 1e-9) if free else 0.0,
        "memory": memory,  # one row per model: parameters, gradients, optimizer state (bytes)
        "train_memory_bytes": sum(r["total_bytes"] for r in memory),
        "models_held": len(memory),  # policy, value, reference, reward
        "param_bytes_held": sum(r["parameter_bytes"] for r in memory),
        "replies_sampled_per_run": curve[-1]["episode"],
        "eval_prompts": len(heldout),
        "wall_seconds": time.perf_counter() - start,
    }
    # memory.json: varies by run
    (write_metrics(args.output_dir, metrics), write_peak_rss(args.output_dir))
    write_report(args, metrics, curves, heldout, samples)
    return metrics


if __name__ == "__main__":
    run(main)
