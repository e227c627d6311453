"""Reward modeling: a Bradley–Terry reward model learns which of two replies people prefer.

    python code/labs/reward.py --output_dir runs/reward                  # lesson, a CPU minute
    python code/labs/reward.py --output_dir runs/reward --preset smoke   # seconds
    python code/labs/reward.py --output_dir runs/reward --preset gpu     # gpt2, UltraFeedback
    python code/labs/reward.py --output_dir runs/reward --data my_pairs.jsonl   # your own pairs

TRL's RewardTrainer trains reward models from the SFT model (a scalar score head in place of the LM
head), as InstructGPT does: the *correct* one on the world's correct pairs (chosen = correct,
concise, polite; rejected = a near miss, or wrong and rude or rambling), and the *proxy* one on the
deliberately flawed pairs where, for one question in three, a flattering reply wins even when it is
wrong. The PPO lab optimizes against the proxy. A curve retrains the correct model with a share of
its labels swapped, in the training and the held-out pairs alike (noisy labelers): held-out
accuracy against the labels as given and against the true ones. Writes `metrics.json`,
`margins.png`, `curve.png`, `results.md`, `model/` and `proxy_model/`.

Longer than the 250 lines a lab aims for: the correct and the flawed (proxy) reward model, a
label-noise curve, and accuracy split by the kind of rejected reply.
"""

import random
import time
from dataclasses import dataclass, field

import torch
from transformers import set_seed
from trl import RewardConfig, RewardTrainer

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, comma_list, parse, run, write_metrics
from lifecycle.data import fit_splits, read_pairs
from lifecycle.device import measured_on
from lifecycle.models import load
from lifecycle.rlhf import hub_pairs, pair_dataset, pair_scores, preference_accuracy, split_heldout
from lifecycle.stages import check_model, stage_model
from lifecycle.tokenizer import ready_tokenizer
from lifecycle.training import trainer_defaults
from lifecycle.world import TASKS, pairs, proxy_pairs


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("epochs", "batch_size", "learning_rate", "max_length")
    model: str | None = field(
        default=None,
        metadata={"help": "Starting model, folder or Hub id (default: the SFT stage)."},
    )
    data: str | None = field(
        default=None,
        metadata={"help": "Your pairs: a JSONL or JSON file (see Bring your own data)."},
    )
    hub_data: str | None = field(
        default=None, metadata={"help": "A TRL preference dataset on the Hub (gpu preset)."}
    )
    tasks: str | None = field(
        default=None, metadata={"help": "Comma-separated world tasks to draw pairs from."}
    )
    epochs: float | None = field(
        default=None, metadata={"help": "Passes over the training pairs."}
    )
    batch_size: int | None = field(default=None, metadata={"help": "Pairs per step."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    max_length: int | None = field(default=None, metadata={"help": "Longer pairs are dropped."})
    near_miss: float | None = field(
        default=None, metadata={"help": "Share of near-miss pairs (world data)."}
    )
    curve: str | None = field(
        default=None, metadata={"help": "Label-noise rates, one RM each ('' = none)."}
    )


PRESETS = {
    "smoke": dict(
        tasks="capital,export,job,summary",
        epochs=1.0,
        batch_size=16,
        learning_rate=1e-3,
        max_length=128,
        near_miss=0.5,
        curve="0.4",
    ),
    "lesson": dict(
        epochs=2.0,
        batch_size=16,
        learning_rate=5e-4,
        max_length=256,
        near_miss=0.5,
        curve="0.2,0.4",
    ),
    "gpu": dict(
        hub_data="trl-lib/ultrafeedback_binarized",
        epochs=1.0,
        batch_size=8,
        learning_rate=1e-5,
        max_length=512,
        near_miss=0.5,
        curve="",
    ),
}
# --8<-- [end:args]


def data(args):
    """(train, held-out) pairs for the correct reward model, and (train, held-out) proxy pairs."""
    tasks = tuple(comma_list("tasks", args.tasks, choices=TASKS)) if args.tasks else TASKS
    proxy = proxy_pairs("train", tasks, args.seed), proxy_pairs("test", tasks, args.seed)
    if args.data:
        return split_heldout(read_pairs(args.data), args.data), proxy  # one pair in five held out
    if args.hub_data:
        return (
            hub_pairs(args.hub_data, "train", 4000),
            hub_pairs(args.hub_data, "test", 500),
        ), proxy
    return world_pairs(tasks, args.seed, args.near_miss), proxy


def world_pairs(tasks, seed: int, near_miss: float) -> tuple[list[dict], list[dict]]:
    return pairs("train", tasks, seed, near_miss), pairs("test", tasks, seed, near_miss)


LOGGING_STEPS = 5  # the first training loss is logged at this step


# --8<-- [start:trainer]
def train_reward_model(args, model_path, train_rows, name):
    model, tokenizer = load(model_path, head="reward")  # (1)!
    ready_tokenizer(tokenizer, model)  # gpt2: add our role markers, pad and template
    config = RewardConfig(
        # fp32 on a CPU, no checkpoints, ...
        **trainer_defaults(args.output_dir / "trainer" / name, args.seed),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        center_rewards_coefficient=0.01,  # (2)!
        lr_scheduler_type="cosine",
        warmup_steps=5,
        logging_steps=LOGGING_STEPS,
    )
    trainer = RewardTrainer(
        model=model,
        args=config,
        train_dataset=pair_dataset(train_rows),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


# --8<-- [end:trainer]


# --8<-- [start:curve]
def flipped(n: int, rate: float, seed: int) -> set[int]:
    """Which of `n` pairs a labeler got backwards: a random `rate` share of them."""
    return set(random.Random(seed).sample(range(n), round(rate * n)))


def label_noise_curve(args, model_path, train, heldout, rates: list[float]) -> list[dict]:
    """The correct reward model retrained with a `rate` share of its training labels swapped, and
    scored on held-out pairs with the same share swapped, as real labels are (annotators disagree),
    and on the clean ones: accuracy against the labels as given, and against the truth."""
    curve = []
    for rate in rates:
        swap = flipped(len(train), rate, args.seed)
        noisy = [
            r | {"chosen": r["rejected"], "rejected": r["chosen"]} if i in swap else r
            for i, r in enumerate(train)
        ]
        trainer = train_reward_model(args, model_path, noisy, f"label_noise{rate:g}")
        chosen, rejected = pair_scores(trainer.model, trainer.processing_class, heldout)
        wrong = flipped(len(heldout), rate, args.seed + 1)  # held-out labels swapped
        held = torch.tensor([i in wrong for i in range(len(heldout))])
        curve.append(
            {
                "label_noise": rate,
                # what you measure when the held-out labels are as noisy as the training ones
                "heldout_accuracy": preference_accuracy(
                    torch.where(held, rejected, chosen), torch.where(held, chosen, rejected)
                ),
                "heldout_accuracy_clean": preference_accuracy(chosen, rejected),
            }
        )
    return curve


# --8<-- [end:curve]


def by_kind(chosen, rejected, rows, kinds: set[str]) -> float:
    """Held-out accuracy over the pairs of the given kinds (each world pair says its kind)."""
    pick = [i for i, r in enumerate(rows) if r.get("kind") in kinds]
    return preference_accuracy(chosen[pick], rejected[pick]) if pick else float("nan")


def margin_plot(margins, proxy_margins, path):
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.6))
    ax.hist(
        margins.numpy(),
        bins=30,
        alpha=0.7,
        label="correct RM on correct pairs: r(chosen) − r(rejected)",
    )
    ax.hist(
        proxy_margins.numpy(),
        bins=30,
        alpha=0.7,
        label="proxy RM on proxy pairs: r(chosen) − r(rejected)",
    )
    ax.axvline(0, color="k", lw=1)
    ax.set_xlabel("reward margin on held-out pairs (logits); right of 0 = prefers chosen")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    plots.save(fig, path)


def curve_plot(curve: list[dict], path):
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.4))
    x = [c["label_noise"] for c in curve]
    ax.plot(x, [c["heldout_accuracy"] for c in curve], "o-", label="against the noisy labels")
    ax.plot(
        x, [c["heldout_accuracy_clean"] for c in curve], "s--", label="against the true labels"
    )
    ax.set_ylim(0.4, 1.02)
    ax.axhline(0.5, color="k", lw=0.8, ls=":")
    ax.set_xlabel("share of labels swapped (training and held-out)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Noisy labels cap the accuracy you can measure", fontsize=10)
    ax.legend(fontsize=8)
    plots.save(fig, path)


def write_report(args, m: dict, margins, proxy_margins) -> None:
    """`results.md`, `margins.png` and `curve.png`."""
    margin_plot(margins, proxy_margins, args.output_dir / "margins.png")
    rows = [
        ("training pairs", m["train_pairs"], ","),
        ("held-out pairs (unseen questions)", m["heldout_pairs"], ","),
        ("held-out accuracy, correct RM", m["heldout_accuracy"], ".1%"),
        ("… when the rejected reply is rude or rambling", m.get("heldout_accuracy_style"), ".1%"),
        (
            "… on near misses (a wrong answer, same style)",
            m.get("heldout_accuracy_near_miss"),
            ".1%",
        ),
        ("mean margin, correct RM (logits)", m["mean_margin"], ".2f"),
        (
            "proxy RM prefers the flattering reply (held-out)",
            m["proxy_prefers_keyword_reply"],
            ".1%",
        ),
        (
            "… even when the flattering reply is wrong",
            m["proxy_prefers_wrong_keyword_reply"],
            ".1%",
        ),
        ("proxy RM accuracy on the correct pairs", m["proxy_accuracy_on_correct_pairs"], ".1%"),
        (f"wall time (s, {measured_on()})", m["wall_seconds"], ".0f"),
    ]
    text = report.table([r for r in rows if r[1] is not None])
    if m["curve"]:
        curve_plot(m["curve"], args.output_dir / "curve.png")
        text += "\n" + report.records(
            m["curve"],
            [
                ("label_noise", "labels swapped", ".0%"),
                ("heldout_accuracy", "held-out accuracy (labels as given)", ".1%"),
                ("heldout_accuracy_clean", "… against the true labels", ".1%"),
            ],
        )
    (args.output_dir / "results.md").write_text(text)


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    rates = sorted(comma_list("curve", args.curve, float)) if args.curve else []
    if not 0 <= args.near_miss <= 1 or any(not 0 < x <= 0.5 for x in rates):
        raise LabError(
            f"--near_miss must lie in [0, 1] and --curve rates in (0, 0.5], "
            f"got {args.near_miss} and {args.curve!r}"
        )
    if args.data or args.hub_data:
        rates = []  # the curve is the lesson's, on the world's pairs
    set_seed(args.seed)
    (train, heldout), (proxy_train, proxy_heldout) = data(args)
    in_file = len(train) + len(heldout)
    if args.data:  # the whole file, before the SFT stage runs
        steps = (args.batch_size, args.epochs, LOGGING_STEPS)  # enough pairs for one logged step
        checked_on = args.model or check_model(args.preset, args.seed)
        train, heldout = fit_splits(
            checked_on, train, heldout, args.max_length, "reward", args.data, steps
        )
    # as InstructGPT: start from SFT
    model_path = args.model or stage_model("sft", args.preset, args.seed)
    start = time.perf_counter()  # the reward models' own time, not the SFT stage's

    # --8<-- [start:evaluate]
    trainer = train_reward_model(args, model_path, train, "correct")
    rm, tokenizer, history = trainer.model, trainer.processing_class, trainer.state.log_history
    chosen, rejected = pair_scores(rm, tokenizer, heldout)  # questions the model never trained on
    proxy = train_reward_model(args, model_path, proxy_train, "proxy").model
    p_chosen, p_rejected = pair_scores(proxy, tokenizer, proxy_heldout)
    # the proxy, judged on the correct pairs
    g_chosen, g_rejected = pair_scores(proxy, tokenizer, heldout)
    # --8<-- [end:evaluate]

    rm.save_pretrained(args.output_dir / "model")
    proxy.save_pretrained(args.output_dir / "proxy_model")
    tokenizer.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "proxy_model")

    world = not (args.data or args.hub_data)  # the world's pairs carry their kind
    metrics = {
        # a tie counts one half, as in the DPO lab
        "heldout_accuracy": preference_accuracy(chosen, rejected),
        "mean_margin": (chosen - rejected).mean().item(),
        "heldout_pairs": len(heldout),
        "train_pairs": len(trainer.train_dataset),  # after RewardTrainer's own length filter
        "proxy_prefers_keyword_reply": by_kind(
            p_chosen, p_rejected, proxy_heldout, {"keyword-right", "keyword-wrong"}
        ),
        "proxy_prefers_wrong_keyword_reply": by_kind(
            p_chosen, p_rejected, proxy_heldout, {"keyword-wrong"}
        ),
        "proxy_accuracy_on_correct_pairs": preference_accuracy(g_chosen, g_rejected),
        "proxy_mean_margin": (p_chosen - p_rejected).mean().item(),
        "final_train_loss": (
            [h["loss"] for h in history if "loss" in h] or [history[-1]["train_loss"]]
        )[-1],
        "near_miss_share": args.near_miss if world else None,
        "curve": label_noise_curve(args, model_path, train, heldout, rates) if rates else [],
    } | ({"pairs_in_file": in_file} if args.data else {})
    if world:
        metrics |= {
            "heldout_accuracy_style": by_kind(chosen, rejected, heldout, {"rude", "rambling"}),
            "heldout_accuracy_near_miss": by_kind(chosen, rejected, heldout, {"near-miss"}),
        }
    if rates:  # the main run, clean labels, is the curve's first point
        clean = metrics["heldout_accuracy"]
        main_point = {
            "label_noise": 0.0,
            "heldout_accuracy": clean,
            "heldout_accuracy_clean": clean,
        }
        metrics["curve"] = [main_point, *metrics["curve"]]
    metrics["wall_seconds"] = time.perf_counter() - start
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, chosen - rejected, p_chosen - p_rejected)
    return metrics


if __name__ == "__main__":
    run(main)
