"""Reward modeling: a Bradley–Terry reward model learns which of two replies people prefer.

    python code/labs/reward.py --output_dir runs/reward                  # lesson preset, about a CPU minute
    python code/labs/reward.py --output_dir runs/reward --preset smoke   # seconds
    python code/labs/reward.py --output_dir runs/reward --preset gpu     # real gpt2 on UltraFeedback pairs
    python code/labs/reward.py --output_dir runs/reward --data my_pairs.jsonl   # your own pairs

TRL's RewardTrainer trains two reward models from the pretrained base model (a scalar score head on top):
the *correct* one on the world's correct pairs (chosen = correct, concise, polite), and the *proxy* one on
the deliberately flawed pairs where a reply with the keyword wins even when it is wrong. The PPO lab
optimizes against the proxy. Writes `metrics.json`, `margins.png`, `results.md`, `model/` and
`proxy_model/`.
"""

import time
from dataclasses import dataclass, field

from transformers import set_seed
from trl import RewardConfig, RewardTrainer

from lifecycle import plots, report
from lifecycle.cli import LabArgs, comma_list, parse, run, write_metrics
from lifecycle.data import fit_splits, read_pairs
from lifecycle.device import measured_on
from lifecycle.models import load
from lifecycle.rlhf import hub_pairs, pair_dataset, pair_scores, preference_accuracy, split_heldout
from lifecycle.stages import base_model
from lifecycle.tokenizer import ready_tokenizer
from lifecycle.training import trainer_defaults
from lifecycle.world import TASKS, pairs, proxy_pairs


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("epochs", "batch_size", "learning_rate", "max_length")
    model: str | None = field(default=None, metadata={"help": "Base model folder or Hub id (default: our pretrained base)."})
    data: str | None = field(default=None, metadata={"help": "Your pairs: a JSONL or JSON file (see Bring your own data)."})
    hub_data: str | None = field(default=None, metadata={"help": "A TRL preference dataset on the Hub (gpu preset)."})
    tasks: str | None = field(default=None, metadata={"help": "Comma-separated world tasks to draw pairs from."})
    epochs: float | None = field(default=None, metadata={"help": "Passes over the training pairs."})
    batch_size: int | None = field(default=None, metadata={"help": "Pairs per step."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    max_length: int | None = field(default=None, metadata={"help": "Longer pairs are dropped."})


PRESETS = {
    "smoke": dict(tasks="capital,export,job,arithmetic", epochs=1.0, batch_size=16, learning_rate=1e-3, max_length=128),
    "lesson": dict(tasks="capital,export,job,arithmetic", epochs=2.0, batch_size=16, learning_rate=5e-4, max_length=256),
    "gpu": dict(model="gpt2", hub_data="trl-lib/ultrafeedback_binarized", epochs=1.0, batch_size=8,
                learning_rate=1e-5, max_length=512),
}
# --8<-- [end:args]


def data(args):
    """(train, held-out) pairs for the correct reward model, and (train, held-out) proxy pairs."""
    tasks = tuple(comma_list("tasks", args.tasks, choices=TASKS)) if args.tasks else TASKS
    proxy = proxy_pairs("train", tasks, args.seed), proxy_pairs("test", tasks, args.seed)
    if args.data:
        return split_heldout(read_pairs(args.data), args.data), proxy  # one pair in five held out
    if args.hub_data:
        return (hub_pairs(args.hub_data, "train", 4000), hub_pairs(args.hub_data, "test", 500)), proxy
    return (pairs("train", tasks, args.seed), pairs("test", tasks, args.seed)), proxy


LOGGING_STEPS = 5  # the first training loss is logged at this step


# --8<-- [start:trainer]
def train_reward_model(args, model_path, train_rows, name):
    model, tokenizer = load(model_path, head="reward")  # (1)!
    ready_tokenizer(tokenizer, model)  # gpt2: add our role markers, pad and template
    config = RewardConfig(
        **trainer_defaults(args.output_dir / "trainer" / name, args.seed),  # fp32 on a CPU, no checkpoints, ...
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        center_rewards_coefficient=0.01,  # (2)!
        lr_scheduler_type="cosine",
        warmup_steps=5,
        logging_steps=LOGGING_STEPS,
    )
    trainer = RewardTrainer(model=model, args=config, train_dataset=pair_dataset(train_rows),
                            processing_class=tokenizer)
    trainer.train()
    return trainer
# --8<-- [end:trainer]


def margin_plot(margins, proxy_margins, path):
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.6))
    ax.hist(margins.numpy(), bins=30, alpha=0.7, label="correct RM on correct pairs: r(chosen) − r(rejected)")
    ax.hist(proxy_margins.numpy(), bins=30, alpha=0.7, label="proxy RM on proxy pairs: r(keyword) − r(plain)")
    ax.axvline(0, color="k", lw=1)
    ax.set_xlabel("reward margin on held-out pairs (logits); right of 0 = prefers chosen")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    plots.save(fig, path)


def write_report(args, metrics: dict, margins, proxy_margins) -> None:
    """`results.md` and `margins.png`."""
    margin_plot(margins, proxy_margins, args.output_dir / "margins.png")
    (args.output_dir / "results.md").write_text(report.table([
        ("training pairs", metrics["train_pairs"], ","),
        ("held-out pairs (unseen questions)", metrics["heldout_pairs"], ","),
        ("held-out accuracy, correct RM", metrics["heldout_accuracy"], ".1%"),
        ("mean margin, correct RM (logits)", metrics["mean_margin"], ".2f"),
        ("proxy RM prefers the keyword reply (held-out)", metrics["proxy_heldout_accuracy"], ".1%"),
        ("… even when the keyword reply is wrong", metrics["proxy_prefers_wrong_keyword_reply"], ".1%"),
        ("mean margin, proxy RM (logits)", metrics["proxy_mean_margin"], ".2f"),
        ("proxy RM accuracy on the correct pairs", metrics["proxy_accuracy_on_correct_pairs"], ".1%"),
        (f"wall time (s, {measured_on()})", metrics["wall_seconds"], ".0f"),
    ]))


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    set_seed(args.seed)
    start = time.perf_counter()
    (train, heldout), (proxy_train, proxy_heldout) = data(args)
    model_path = args.model or str(base_model(args.preset, args.seed))
    in_file = len(train) + len(heldout)
    if args.data:
        steps = (args.batch_size, args.epochs, LOGGING_STEPS)  # enough pairs for one logged step
        train, heldout = fit_splits(model_path, train, heldout, args.max_length, "reward", args.data, steps)

    # --8<-- [start:evaluate]
    trainer = train_reward_model(args, model_path, train, "correct")
    rm, tokenizer, history = trainer.model, trainer.processing_class, trainer.state.log_history
    chosen, rejected = pair_scores(rm, tokenizer, heldout)  # questions the model never trained on
    margins = chosen - rejected
    proxy = train_reward_model(args, model_path, proxy_train, "proxy").model
    p_chosen, p_rejected = pair_scores(proxy, tokenizer, proxy_heldout)
    p_margins = p_chosen - p_rejected
    wrong = [i for i, r in enumerate(proxy_heldout) if r["kind"] == "keyword-wrong"]
    g_chosen, g_rejected = pair_scores(proxy, tokenizer, heldout)  # the proxy, judged on the correct pairs
    # --8<-- [end:evaluate]

    rm.save_pretrained(args.output_dir / "model")
    proxy.save_pretrained(args.output_dir / "proxy_model")
    tokenizer.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "proxy_model")

    metrics = {
        "heldout_accuracy": preference_accuracy(chosen, rejected),  # a tie counts one half, as in the DPO lab
        "mean_margin": margins.mean().item(),
        "heldout_pairs": len(heldout),
        "train_pairs": len(trainer.train_dataset),  # after RewardTrainer's own length filter
        "proxy_heldout_accuracy": preference_accuracy(p_chosen, p_rejected),
        "proxy_mean_margin": p_margins.mean().item(),
        "proxy_prefers_wrong_keyword_reply": preference_accuracy(p_chosen[wrong], p_rejected[wrong]) if wrong else 0.0,
        "proxy_accuracy_on_correct_pairs": preference_accuracy(g_chosen, g_rejected),
        "final_train_loss": ([h["loss"] for h in history if "loss" in h] or [history[-1]["train_loss"]])[-1],
        "wall_seconds": time.perf_counter() - start,
    } | ({"pairs_in_file": in_file} if args.data else {})
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, margins, p_margins)
    return metrics


if __name__ == "__main__":
    run(main)
