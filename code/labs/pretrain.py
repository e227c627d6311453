"""GPT-2 from scratch: next-token pretraining, perplexity before and after.

    python code/labs/pretrain.py --output_dir runs/pretrain                 # lesson: minutes
    python code/labs/pretrain.py --output_dir runs/pretrain --preset smoke  # seconds
    python code/labs/pretrain.py --output_dir runs/pretrain --preset gpu    # gpt2, WikiText-2

Offline presets build a GPT-2 from `GPT2Config` and train it on the synthetic world's web text. The
`gpu` preset fine-tunes the real `gpt2` on WikiText-2 with the same trainer and the same perplexity
code. Writes `metrics.json`, `loss.png`, `results.md` and the model (`model/`, safetensors).
"""

import time
from dataclasses import dataclass, field

from datasets import load_dataset
from transformers import set_seed

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, parse, run, write_metrics
from lifecycle.device import measured_on
from lifecycle.evaluation import perplexity
from lifecycle.models import build_model, load
from lifecycle.tokenizer import load_tokenizer
from lifecycle.training import blocks, train
from lifecycle.world import web_corpus


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    # checked by parse()
    positive = ("max_steps", "batch_size", "block_size", "learning_rate", "train_docs")
    model: str | None = field(
        default=None,
        metadata={"help": "A model size (smoke, lesson) or a Hub id / folder (gpt2)."},
    )
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps."})
    batch_size: int | None = field(default=None, metadata={"help": "Blocks per step."})
    block_size: int | None = field(default=None, metadata={"help": "Tokens per block."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    warmup_steps: int | None = field(
        default=None, metadata={"help": "Linear warmup before the cosine decay."}
    )
    train_docs: int | None = field(
        default=None, metadata={"help": "Web documents to train on (offline presets)."}
    )


PRESETS = {
    "smoke": dict(
        model="smoke",
        max_steps=600,
        batch_size=8,
        block_size=64,
        learning_rate=3e-3,
        warmup_steps=15,
        train_docs=2000,
    ),
    "lesson": dict(
        model="lesson",
        max_steps=600,
        batch_size=16,
        block_size=128,
        learning_rate=2e-3,
        warmup_steps=60,
        train_docs=6000,
    ),
    "gpu": dict(
        model="gpt2",
        max_steps=500,
        batch_size=8,
        block_size=512,
        learning_rate=5e-5,
        warmup_steps=50,
    ),
}
# --8<-- [end:args]


def offline_data(args):
    """The world's web text: `train_docs` documents to learn from, unseen ones for validation."""
    train = [d.text for d in web_corpus("train", n_docs=args.train_docs, seed=args.seed)]
    val = [d.text for d in web_corpus("val", n_docs=300, seed=args.seed)]
    return train, val


def hub_data(args):
    """WikiText-2 from the Hub (gpu preset)."""
    try:
        ds = load_dataset("Salesforce/wikitext", "wikitext-2-raw-v1")
    except Exception as e:  # datasets raises several types when offline
        raise LabError(
            f"cannot load WikiText-2 from the Hub (offline?): {type(e).__name__}"
        ) from None

    def keep(split):
        return [t for t in ds[split]["text"] if t.strip()]

    return keep("train"), keep("validation")[:2000]


def write_report(args, metrics: dict, history: list[dict]) -> None:
    """`results.md` and the loss curve."""
    plots.loss_curve(history, args.output_dir / "loss.png", f"Pretraining ({args.model})")
    (args.output_dir / "results.md").write_text(
        report.table(
            [
                ("model", args.model, ""),
                ("parameters", metrics["params"], ","),
                ("training tokens", metrics["train_tokens"], ","),
                ("validation perplexity, untrained", metrics["val_perplexity_before"], ".1f"),
                ("validation perplexity, trained", metrics["val_perplexity_after"], ".2f"),
                (f"wall time (s, {measured_on()})", metrics["wall_seconds"], ".0f"),
            ]
        )
    )


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    set_seed(args.seed)
    start = time.perf_counter()

    # --8<-- [start:model]
    if args.model in ("smoke", "lesson"):
        tokenizer = load_tokenizer(args.seed)
        # random weights: it knows nothing yet
        model = build_model(args.model, tokenizer, args.seed)
        train_texts, val_texts = offline_data(args)
    else:
        model, tokenizer = load(args.model)  # e.g. the real gpt2, when online
        train_texts, val_texts = hub_data(args)
    # --8<-- [end:model]

    # --8<-- [start:data]
    ids = blocks(tokenizer, train_texts, args.block_size)  # pack documents into full blocks
    # --8<-- [end:data]

    ppl_before = perplexity(model, tokenizer, val_texts, args.block_size)

    # --8<-- [start:trainer]
    history = train(
        model,
        ids,
        args.output_dir / "trainer",
        args.batch_size,
        args.learning_rate,
        args.warmup_steps,
        args.seed,
        max_steps=args.max_steps,
        order="random",
    )
    # --8<-- [end:trainer]

    ppl_after = perplexity(model, tokenizer, val_texts, args.block_size)
    model.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "model")

    # --8<-- [start:metrics]
    metrics = {
        "val_perplexity_before": ppl_before,
        "val_perplexity_after": ppl_after,
        "params": sum(p.numel() for p in model.parameters()),  # tied wte/lm_head counted once
        "train_tokens": args.max_steps * args.batch_size * args.block_size,
        "vocab_size": len(tokenizer),
        "final_train_loss": [h["loss"] for h in history if "loss" in h][-1],
        "wall_seconds": time.perf_counter() - start,
    }
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, history)
    # --8<-- [end:metrics]
    return metrics


if __name__ == "__main__":
    run(main)
