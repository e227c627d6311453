"""PPO against a flawed reward model: optimize reward, on a KL leash.

    python code/labs/ppo.py --output_dir runs/ppo                  # lesson preset, a few CPU minutes
    python code/labs/ppo.py --output_dir runs/ppo --preset smoke   # seconds
    python code/labs/ppo.py --output_dir runs/ppo --preset gpu     # real gpt2 (SFT and reward stages on gpt2)
    python code/labs/ppo.py --output_dir runs/ppo --kl_coefs 0,0.01,0.1,0.5   # your own sweep

TRL 1.12's `trl.experimental.ppo.PPOTrainer` fine-tunes the SFT model against the *proxy* reward model from
the reward lab, which loves a keyword whether or not the answer is right. One run per KL coefficient,
`kl_coef = 0` included. Every run is scored twice on held-out questions: by the proxy reward model, and by
the world's gold checker. KL to the reference is measured on held-out prompts, not taken from TRL's logs.
Writes `metrics.json`, `reward_vs_kl.png`, `training.png`, `results.md`, `samples.md` and `memory.json`
(peak RSS: it differs between runs, so it stays out of `metrics.json`).
"""

import os
import time
from dataclasses import dataclass, field

from datasets import Dataset
from transformers import set_seed
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # PPO is experimental in TRL 1.12 (gone in 1.13): pinned
from trl.experimental.ppo import PPOConfig, PPOTrainer  # noqa: E402

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, comma_list, parse, run, write_metrics, write_peak_rss
from lifecycle.device import caption
from lifecycle.evaluation import chat_prompts, complete, spread
from lifecycle.models import load
from lifecycle.rlhf import kl_to_reference, param_bytes, reward_scores
from lifecycle.stages import stage_model
from lifecycle.training import trainer_defaults
from lifecycle.world import TASKS, check_format, check_gold, examples
from lifecycle.world.tasks import PROXY_KEYWORD


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("episodes", "batch_size", "learning_rate", "response_length", "reward_scale", "eval_questions")
    model: str | None = field(default=None, metadata={"help": "The SFT policy: a folder (default: the SFT stage)."})
    reward_model: str | None = field(default=None, metadata={"help": "The proxy reward model (default: reward stage)."})
    kl_coefs: str | None = field(default=None, metadata={"help": "Comma-separated KL coefficients, one run each."})
    tuned_kl_coef: float | None = field(default=None, metadata={"help": "The coefficient the page calls tuned."})
    episodes: int | None = field(default=None, metadata={"help": "Sampled replies per run (PPO's total_episodes)."})
    batch_size: int | None = field(default=None, metadata={"help": "Replies per rollout."})
    mini_batches: int | None = field(default=None, metadata={"help": "Mini-batches per rollout; divides batch_size."})
    ppo_epochs: int | None = field(default=None, metadata={"help": "Passes over each rollout (>=2 exercises clipping)."})
    learning_rate: float | None = field(default=None, metadata={"help": "Policy and value learning rate."})
    response_length: int | None = field(default=None, metadata={"help": "Max tokens per sampled reply."})
    reward_scale: float | None = field(default=None, metadata={"help": "Multiplies the reward model's score head."})
    tasks: str | None = field(default=None, metadata={"help": "Comma-separated world tasks for prompts."})
    eval_questions: int | None = field(default=None, metadata={"help": "Questions each run is scored on (and KL prompts)."})


PRESETS = {
    "smoke": dict(kl_coefs="0,0.2", tuned_kl_coef=0.2, episodes=192, batch_size=16, mini_batches=2, ppo_epochs=2,
                  learning_rate=3e-4, response_length=20, reward_scale=0.05, tasks="capital,export,job,arithmetic",
                  eval_questions=24),
    "lesson": dict(kl_coefs="0,0.05,0.2", tuned_kl_coef=0.2, episodes=768, batch_size=16, mini_batches=2,
                   ppo_epochs=2, learning_rate=3e-4, response_length=24, reward_scale=0.05,
                   tasks="capital,export,job,arithmetic", eval_questions=64),
    "gpu": dict(kl_coefs="0,0.05,0.2", tuned_kl_coef=0.2, episodes=2048, batch_size=32, mini_batches=4, ppo_epochs=2,
                learning_rate=1e-5, response_length=32, reward_scale=0.05, tasks="capital,export,job,arithmetic",
                eval_questions=128),
}
# --8<-- [end:args]


def coefs(args) -> list[float]:
    values = comma_list("kl_coefs", args.kl_coefs, float)
    if any(c < 0 for c in values):
        raise LabError(f"--kl_coefs must not be negative, got {args.kl_coefs!r}")
    if args.tuned_kl_coef not in values:
        raise LabError(f"--tuned_kl_coef {args.tuned_kl_coef} is not one of --kl_coefs {args.kl_coefs}")
    if args.batch_size % args.mini_batches:
        raise LabError(f"--mini_batches {args.mini_batches} must divide --batch_size {args.batch_size}")
    return values


# --8<-- [start:data]
def prompt_dataset(tokenizer, exs, batch_size: int) -> Dataset:
    """Tokenized chat prompts (PPOTrainer takes `input_ids`, and pads them on the left itself)."""
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in chat_prompts(tokenizer, exs)]
    while len(ids) < 2 * batch_size:  # (1)!
        ids += ids
    return Dataset.from_dict({"input_ids": ids})
# --8<-- [end:data]


# --8<-- [start:score]
def evaluate(policy, ref, proxy, tokenizer, learned, heldout, args) -> dict:
    """Greedy replies to questions the SFT model learned, scored by the proxy RM and by the gold checker;
    and the KL to the reference on held-out prompts."""
    prompts = chat_prompts(tokenizer, learned)
    replies = complete(policy, tokenizer, prompts, args.response_length)
    proxy_reward = reward_scores(proxy, tokenizer, [p + r for p, r in zip(prompts, replies)]).mean().item()
    gold = sum(check_format(r) and check_gold(r, e.gold) for r, e in zip(replies, learned)) / len(learned)
    kl = kl_to_reference(policy, ref, tokenizer, chat_prompts(tokenizer, heldout), args.response_length, seed=args.seed)
    keyword = sum(PROXY_KEYWORD in r.lower() for r in replies) / len(learned)
    return {"proxy_reward": proxy_reward, "gold_score": gold, "kl": kl, "keyword_rate": keyword, "replies": replies}
# --8<-- [end:score]


# --8<-- [start:trainer]
def ppo_run(args, kl_coef: float, train: Dataset):
    policy, tokenizer = load(args.model, padding_side="left")  # PPOTrainer pads the prompts on this side
    ref, _ = load(args.model)  # (1)!
    value, _ = load(args.model, head="reward")  # the critic: a copy of the policy with a scalar head
    reward, _ = load(args.reward_model, head="reward")
    reward.score.weight.data *= args.reward_scale  # (2)!
    config = PPOConfig(
        **trainer_defaults(args.output_dir / "trainer" / f"kl{kl_coef:g}", args.seed),
        kl_coef=kl_coef,  # (3)!
        total_episodes=args.episodes,  # (4)!
        per_device_train_batch_size=args.batch_size,
        num_mini_batches=args.mini_batches,
        num_ppo_epochs=args.ppo_epochs,  # (5)!
        learning_rate=args.learning_rate,
        response_length=args.response_length,
        stop_token="eos",  # our EOS is the end-of-turn token
        num_sample_generations=0,  # (6)!
        local_rollout_forward_batch_size=args.batch_size,
        logging_steps=1,
    )
    trainer = PPOTrainer(args=config, processing_class=tokenizer, model=policy, ref_model=ref,
                         reward_model=reward, value_model=value, train_dataset=train)
    trainer.train()
    held = param_bytes(trainer.model, trainer.ref_model, trainer.reward_model)  # policy + value live in .model
    return policy, ref, tokenizer, trainer.state.log_history, held, trainer.state.episode
# --8<-- [end:trainer]


def sample_table(exs, samples: dict[str, list[str]], n: int = 3) -> str:
    """`n` of the scored questions, answered by the SFT model and by each PPO run (greedy)."""
    lines = ["| question | model | reply |", "| --- | --- | --- |"]
    for i in list(range(0, len(exs), max(1, len(exs) // n)))[:n]:
        for name, replies in samples.items():
            lines.append(f"| {report.cell(exs[i].prompt, 40)} | {name} | {report.cell(replies[i], 80)} |")
    return "\n".join(lines) + "\n"


def reward_vs_kl(runs: list[dict], path) -> None:
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.6))
    kl = [r["kl_final"] for r in runs]
    ax.plot(kl, [r["proxy_reward_after"] for r in runs], "o-", label="proxy reward (what PPO optimizes)")
    gold = ax.twinx()
    gold.plot(kl, [r["gold_score_after"] for r in runs], "s--", color="C2", label="gold score (what we want)")
    gold.set_ylim(-0.05, 1.05)
    gold.set_ylabel("gold score (share correct)")
    gold.grid(False)
    for r in runs:
        ax.annotate(f"β={r['kl_coef']:g}", (r["kl_final"], r["proxy_reward_after"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("KL(π ‖ π_ref) on held-out prompts (nats per reply)")
    ax.set_ylabel("proxy reward (logits)")
    handles = [*ax.get_legend_handles_labels()[0], *gold.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], loc="center left", fontsize=8)
    plots.save(fig, path)


def training_curves(curves: dict[float, list[dict]], path) -> None:
    fig, (a, b) = plots.plt.subplots(1, 2, figsize=(8.0, 3.4))
    for kl_coef, rows in curves.items():
        ep = [h["episode"] for h in rows]
        a.plot(ep, [h["objective/scores"] for h in rows], label=f"β={kl_coef:g}")
        b.plot(ep, [h["objective/kl"] for h in rows], label=f"β={kl_coef:g}")
    a.set_title("proxy score (scaled) per rollout", fontsize=9)
    b.set_title("TRL's logged KL per rollout (one batch)", fontsize=9)
    for ax in (a, b):
        ax.set_xlabel("episodes (sampled replies)")
        ax.legend(fontsize=8)
    plots.save(fig, path)


def write_report(args, metrics: dict, before: dict, curves: dict, learned, samples: dict) -> None:
    """`results.md`, `samples.md` and the two plots."""
    runs = metrics["runs"]
    reward_vs_kl(runs, args.output_dir / "reward_vs_kl.png")
    training_curves(curves, args.output_dir / "training.png")
    (args.output_dir / "results.md").write_text(report.records(runs, [
        ("kl_coef", "KL coefficient β", "g"),
        ("kl_final", "KL to reference (nats/reply)", ".2f"),
        ("proxy_reward_after", "proxy reward", ".2f"),
        ("gold_score_after", "gold score", ".0%"),
        ("keyword_rate_after", f"replies with “{PROXY_KEYWORD}”", ".0%"),
    ]) + f"\nBefore PPO (the SFT model): proxy reward {before['proxy_reward']:.2f}, gold score "
        f"{before['gold_score']:.0%}, replies with “{PROXY_KEYWORD}” {before['keyword_rate']:.0%}. Proxy reward, "
        f"gold score and keyword share: greedy replies to {len(learned)} training questions; KL: {metrics['kl_prompts']} "
        f"held-out prompts.\n" + caption())
    (args.output_dir / "samples.md").write_text(sample_table(learned, samples))


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    kl_coefs = coefs(args)
    tasks = tuple(comma_list("tasks", args.tasks, choices=TASKS)) if args.tasks else TASKS
    set_seed(args.seed)
    start = time.perf_counter()
    # the earlier stages, from the cache or run now
    args.model = args.model or stage_model("sft", args.preset, args.seed)
    args.reward_model = args.reward_model or stage_model("reward", args.preset, args.seed, "proxy_model")

    sft, tokenizer = load(args.model)
    proxy, _ = load(args.reward_model, head="reward")  # unscaled, to report the proxy's own logits
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise LabError(f"{args.model}: the pad token equals EOS; PPO would mask every real end of reply")
    train = prompt_dataset(tokenizer, examples("train", tasks, args.seed), args.batch_size)
    learned = spread(examples("train", tasks, args.seed), args.eval_questions)  # gold: what SFT taught it
    heldout = spread(examples("test", tasks, args.seed), args.eval_questions)  # KL: prompts PPO never saw
    before = evaluate(sft, sft, proxy, tokenizer, learned, heldout, args)

    runs, curves, samples = [], {}, {"SFT (before PPO)": before["replies"]}
    for kl_coef in kl_coefs:
        set_seed(args.seed)
        policy, ref, _, history, held, episodes = ppo_run(args, kl_coef, train)
        after = evaluate(policy, ref, proxy, tokenizer, learned, heldout, args)
        runs.append({
            "kl_coef": kl_coef,
            "proxy_reward_before": before["proxy_reward"], "proxy_reward_after": after["proxy_reward"],
            "gold_score_before": before["gold_score"], "gold_score_after": after["gold_score"],
            "kl_final": after["kl"], "keyword_rate_after": after["keyword_rate"],
        })
        curves[kl_coef] = [h for h in history if "objective/scores" in h]
        samples[f"kl_coef = {kl_coef:g}"] = after["replies"]

    tuned = next(r for r in runs if r["kl_coef"] == args.tuned_kl_coef)
    free = next((r for r in runs if r["kl_coef"] == 0), None)
    metrics = {
        "runs": runs,
        "tuned_kl_coef": args.tuned_kl_coef,
        "kl_ratio_free_vs_tuned": free["kl_final"] / max(tuned["kl_final"], 1e-9) if free else 0.0,
        "models_held": 4,  # policy, reference, reward, value
        "param_bytes_held": held,
        "replies_sampled_per_run": episodes,
        "eval_questions": len(learned),
        "kl_prompts": len(heldout),
        "wall_seconds": time.perf_counter() - start,
    }
    write_metrics(args.output_dir, metrics)
    write_peak_rss(args.output_dir)  # memory.json: it varies by run
    write_report(args, metrics, before, curves, learned, samples)
    return metrics


if __name__ == "__main__":
    run(main)
