"""Data curation: dedup, quality filters, decontamination and mixing, and what each costs a model.

    python code/labs/curation.py --output_dir runs/curation                 # lesson: minutes
    python code/labs/curation.py --output_dir runs/curation --preset smoke  # seconds
    python code/labs/curation.py --output_dir runs/curation --preset gpu    # gpt2, a Hub corpus
    python code/labs/curation.py --output_dir runs/mine --corpus my.jsonl   # your JSONL file

Offline presets curate the world's raw "web" corpus, whose junk is labelled, so each stage is
scored against the truth. Then the same small GPT-2 is pretrained for the same number of tokens on
the raw corpus, on the curated mixture, and on a curated mixture that ends on its best source
(annealing); and quiz items planted in the raw corpus show how contamination inflates an
evaluation. Writes `metrics.json`, `results.md`, `rules.md`, `removed.md`, `funnel.png` and
`effect.png`.

Longer than the 250 lines a lab aims for: it is two experiments, the pipeline scored against the
planted junk and three models trained on the same token budget, and its report covers both. The
pipeline itself and its scoring live in `lifecycle/curation.py`.
"""

import json
import time
from dataclasses import dataclass, field

import torch
from datasets import Dataset, disable_progress_bars
from transformers import set_seed

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, parse, run, write_metrics
from lifecycle.curation import (
    Config,
    cpu_seconds,
    curate,
    hub_corpus,
    mixture,
    read_jsonl,
    rule_report,
    rules,
    score_stages,
    stage_inputs,
    write_removed,
)
from lifecycle.device import measured_on
from lifecycle.evaluation import choice_accuracy, perplexity
from lifecycle.models import build_model, load
from lifecycle.tokenizer import load_tokenizer
from lifecycle.training import budget_blocks, train
from lifecycle.world import web_corpus
from lifecycle.world.quiz import decoys, quiz


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = (
        "max_steps",
        "batch_size",
        "block_size",
        "learning_rate",
        "train_docs",
        "num_perm",
        "shingle",
        "num_proc",
    )
    model: str | None = field(
        default=None,
        metadata={"help": "A model size (smoke, lesson) or a Hub id / folder (gpt2)."},
    )
    corpus: str | None = field(
        default=None, metadata={"help": "Curate this JSONL file instead of the world's web."}
    )
    dataset: str | None = field(
        default=None, metadata={"help": "Curate a Hub dataset: NAME or NAME:CONFIG."}
    )
    text_column: str = field(
        default="text", metadata={"help": "The text field of --corpus / --dataset rows."}
    )
    train_docs: int | None = field(
        default=None, metadata={"help": "Clean documents under the junk (or Hub rows)."}
    )
    throughput_docs: int | None = field(
        default=None, metadata={"help": "Raw documents to time the pipeline on."}
    )
    shingle: int | None = field(default=None, metadata={"help": "Words per shingle for MinHash."})
    num_perm: int | None = field(default=None, metadata={"help": "MinHash permutations."})
    threshold: float | None = field(
        default=None, metadata={"help": "Jaccard similarity that counts as a near duplicate."}
    )
    stop_word_rule: bool = field(
        default=False, metadata={"help": "Also drop documents that fail Gopher's stop-word rule."}
    )
    quiz_items: int | None = field(
        default=None, metadata={"help": "Items in each quiz set (leaked, fresh)."}
    )
    leak_copies: int | None = field(
        default=None, metadata={"help": "Copies of each leaked item in the raw corpus, x3."}
    )
    anneal_fraction: float | None = field(
        default=None, metadata={"help": "Share of the budget spent on the best source, last."}
    )
    max_steps: int | None = field(
        default=None, metadata={"help": "Optimizer steps per model (the token budget)."}
    )
    batch_size: int | None = field(default=None, metadata={"help": "Blocks per step."})
    block_size: int | None = field(default=None, metadata={"help": "Tokens per block."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    warmup_steps: int | None = field(
        default=None, metadata={"help": "Linear warmup before the cosine decay."}
    )
    num_proc: int | None = field(
        default=None, metadata={"help": "Worker processes for the per-document maps."}
    )


PRESETS = {
    "smoke": dict(
        model="smoke",
        train_docs=1500,
        throughput_docs=2000,
        shingle=5,
        num_perm=128,
        threshold=0.85,
        quiz_items=40,
        leak_copies=4,
        anneal_fraction=0.25,
        max_steps=150,
        batch_size=8,
        block_size=64,
        learning_rate=3e-3,
        warmup_steps=15,
        num_proc=1,
    ),
    "lesson": dict(
        model="lesson",
        train_docs=6000,
        throughput_docs=50000,
        shingle=5,
        num_perm=128,
        threshold=0.85,
        quiz_items=100,
        leak_copies=4,
        anneal_fraction=0.25,
        max_steps=200,
        batch_size=16,
        block_size=128,
        learning_rate=2e-3,
        warmup_steps=20,
        num_proc=2,
    ),
    "gpu": dict(
        model="gpt2",
        dataset="Salesforce/wikitext:wikitext-103-raw-v1",
        train_docs=200000,
        throughput_docs=0,
        shingle=5,
        num_perm=128,
        threshold=0.85,
        quiz_items=100,
        leak_copies=2,
        anneal_fraction=0.25,
        max_steps=300,
        batch_size=8,
        block_size=512,
        learning_rate=5e-5,
        warmup_steps=30,
        num_proc=4,
    ),
}
# --8<-- [end:args]

# --8<-- [start:weights]
MIX = {"fact": 0.35, "person": 0.2, "arithmetic": 0.15, "email": 0.15, "story": 0.15}  # (1)!
ANNEAL = {"fact": 0.8, "person": 0.05, "arithmetic": 0.05, "email": 0.05, "story": 0.05}  # (2)!
# --8<-- [end:weights]


def effect_on_model(args, raw, curated, val_texts, leaked, fresh, labelled) -> dict:
    """Same model, same token budget: the raw corpus, the curated mixture, the annealed mixture."""
    n_blocks = args.max_steps * args.batch_size
    offline = args.model in ("smoke", "lesson")
    tokenizer = load_tokenizer(args.seed) if offline else load(args.model)[1]
    val_fact = []
    if labelled:
        val = web_corpus("val", n_docs=600, seed=args.seed)
        val_texts = [d.text for d in val[:300]]
        val_fact = [d.text for d in val if d.kind == "fact"]

    def fresh_model():  # the same initial weights for every corpus
        return build_model(args.model, tokenizer, args.seed) if offline else load(args.model)[0]

    # --8<-- [start:budget]
    raw_data = budget_blocks(tokenizer, raw["text"], args.block_size, n_blocks, args.seed)
    if labelled:
        # documents in mixture order, by source weight
        stream = mixture(curated, MIX, args.seed)["text"]
        tail_stream = mixture(curated, ANNEAL, args.seed + 1)["text"]
    else:
        stream = tail_stream = curated["text"]
    cur_data = budget_blocks(tokenizer, stream, args.block_size, n_blocks, args.seed)
    n_tail = int(args.anneal_fraction * n_blocks)
    tail = budget_blocks(tokenizer, tail_stream, args.block_size, n_tail, args.seed + 1)
    # the same start, the best source last
    annealed = torch.cat([cur_data[: n_blocks - n_tail], tail])
    # --8<-- [end:budget]

    out, models = {}, {}
    for name, data in (("raw", raw_data), ("curated", cur_data), ("annealed", annealed)):
        if name == "annealed" and not labelled:
            continue
        model = fresh_model()
        train(
            model,
            data,
            args.output_dir / "trainer",
            args.batch_size,
            args.learning_rate,
            args.warmup_steps,
            args.seed,
        )
        out[f"val_perplexity_{name}"] = perplexity(model, tokenizer, val_texts, args.block_size)
        if val_fact:
            out[f"val_fact_perplexity_{name}"] = perplexity(
                model, tokenizer, val_fact, args.block_size
            )
        models[name] = model
    # --8<-- [start:contamination_effect]
    if labelled:  # the raw corpus holds the leaked items; curation removed them
        wrong = decoys(args.seed)
        out["eval_score_leaked_on_leaked_items"] = choice_accuracy(
            models["raw"], tokenizer, leaked, wrong, seed=args.seed
        )
        out["eval_score_leaked_on_fresh_items"] = choice_accuracy(
            models["raw"], tokenizer, fresh, wrong, seed=args.seed
        )
        out["eval_score_clean_on_leaked_items"] = choice_accuracy(
            models["curated"], tokenizer, leaked, wrong, seed=args.seed
        )
        out["eval_score_clean_on_fresh_items"] = choice_accuracy(
            models["curated"], tokenizer, fresh, wrong, seed=args.seed
        )
    # --8<-- [end:contamination_effect]
    out["train_tokens"] = n_blocks * args.block_size
    out["corpus_tokens_raw"] = sum(map(len, tokenizer(list(raw["text"]))["input_ids"]))
    out["corpus_tokens_curated"] = sum(map(len, tokenizer(list(curated["text"]))["input_ids"]))
    return out


def plot_funnel(counts, logs, path) -> None:
    labels = ["raw", *[f"after {log['stage']}" for log in logs]]
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.2))
    ax.barh(labels[::-1], counts[::-1], color="C0")
    for y, (n, _label) in enumerate(zip(counts[::-1], labels[::-1])):
        ax.text(n, y, f" {n:,}", va="center")
    ax.set_xlim(0, counts[0] * 1.18)
    ax.set_xlabel("documents")
    ax.set_title("The curation funnel")
    ax.grid(axis="y", visible=False)
    plots.save(fig, path)


def plot_effect(m, path, chance) -> None:
    fig, (a, b) = plots.plt.subplots(1, 2, figsize=(8, 3.4))
    names = [n for n in ("raw", "curated", "annealed") if f"val_perplexity_{n}" in m]
    a.bar(names, [m[f"val_perplexity_{n}"] for n in names], color=["C3", "C0", "C2"][: len(names)])
    a.set_ylabel("perplexity on clean held-out text")
    a.set_title("Same token budget")
    if "eval_score_leaked_on_leaked_items" in m:
        x = torch.arange(2).numpy()
        leaked = [m["eval_score_leaked_on_leaked_items"], m["eval_score_leaked_on_fresh_items"]]
        clean = [m["eval_score_clean_on_leaked_items"], m["eval_score_clean_on_fresh_items"]]
        b.bar(x - 0.2, leaked, 0.4, label="trained on raw (leaked)", color="C3")
        b.bar(x + 0.2, clean, 0.4, label="trained on curated (clean)", color="C0")
        b.axhline(chance, color="k", ls=":", label="chance")
        b.set_xticks(x, ["leaked quiz items", "fresh quiz items"])
        b.set_ylabel("quiz accuracy")
        b.set_ylim(0, 1)
        b.set_title("Contamination inflates a score")
        b.legend(fontsize=8)
    plots.save(fig, path)


def write_report(
    args, m: dict, counts: list[int], logs: list[dict], examples: list[dict], rules: list[dict]
) -> None:
    """`results.md`, `rules.md`, `removed.md`, and the funnel and effect plots."""
    plot_funnel(counts, logs, args.output_dir / "funnel.png")
    if "val_perplexity_raw" in m:
        plot_effect(m, args.output_dir / "effect.png", 1 / 4)
    (args.output_dir / "removed.md").write_text(
        report.records(
            examples,
            [
                ("stage", "stage", ""),
                ("reason", "reason", ""),
                ("kind", "planted as", ""),
                ("text", "removed document (start)", ""),
            ],
        )
    )
    if rules:
        (args.output_dir / "rules.md").write_text(
            report.records(
                rules,
                [
                    ("rule", "rule", ""),
                    ("used", "used to drop", ""),
                    ("hits", "documents hit", ","),
                    ("junk_hits", "spam or boilerplate", ","),
                    ("precision", "precision", ".2f"),
                    ("clean_hits", "clean documents hit", ""),
                ],
            )
        )
    rows = [
        ("documents, raw", counts[0], ","),
        ("after exact dedup", counts[1], ","),
        ("after near dedup (MinHash LSH)", counts[2], ","),
        ("after quality filters", counts[3], ","),
        ("after decontamination (final)", counts[4], ","),
    ]
    if "near_dup_precision" in m:
        rows += [
            (
                "near-duplicate precision / recall vs planted",
                f"{m['near_dup_precision']:.3f} / {m['near_dup_recall']:.3f}",
                "",
            ),
            (
                "quality-filter precision (removed that was spam or boilerplate)",
                m["spam_filter_precision"],
                ".3f",
            ),
            (
                "contaminated documents found / planted leaks reaching the check",
                f"{m['contaminated_docs_found']} / {m['leak_docs_reaching_decontamination']}",
                "",
            ),
        ]
    rows.append(("pipeline throughput (documents/s, wall clock)", m["docs_per_second"], ",.0f"))
    if "pipeline_cpu_seconds" in m:
        rows.append(
            (
                "pipeline throughput (documents per CPU second)",
                m["throughput_docs"] / m["pipeline_cpu_seconds"],
                ",.0f",
            )
        )
    if "val_perplexity_raw" in m:
        rows += [
            (
                "corpus tokens, raw / curated",
                f"{m['corpus_tokens_raw']:,} / {m['corpus_tokens_curated']:,}",
                "",
            ),
            ("training tokens per model (same for each)", m["train_tokens"], ","),
            ("validation perplexity, trained on raw", m["val_perplexity_raw"], ".2f"),
            ("validation perplexity, trained on curated", m["val_perplexity_curated"], ".2f"),
        ]
    if "val_perplexity_annealed" in m:
        rows += [
            (
                "validation perplexity, curated + annealed on facts",
                m["val_perplexity_annealed"],
                ".2f",
            ),
            (
                "fact-text perplexity, curated / annealed",
                f"{m['val_fact_perplexity_curated']:.2f} / "
                f"{m['val_fact_perplexity_annealed']:.2f}",
                "",
            ),
            (
                "quiz accuracy, raw-trained model, leaked items",
                m["eval_score_leaked_on_leaked_items"],
                ".2f",
            ),
            (
                "quiz accuracy, raw-trained model, fresh items",
                m["eval_score_leaked_on_fresh_items"],
                ".2f",
            ),
            (
                "quiz accuracy, curated-trained model, leaked items",
                m["eval_score_clean_on_leaked_items"],
                ".2f",
            ),
            (
                "quiz accuracy, curated-trained model, fresh items",
                m["eval_score_clean_on_fresh_items"],
                ".2f",
            ),
        ]
    rows.append(("measured on", measured_on(), ""))
    (args.output_dir / "results.md").write_text(report.table(rows))


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    if not 0 < args.threshold <= 1 or not 0 <= args.anneal_fraction < 1:
        raise LabError("--threshold must be in (0, 1] and --anneal_fraction in [0, 1)")
    disable_progress_bars()
    set_seed(args.seed)
    torch.set_num_threads(1)
    start = time.perf_counter()
    cfg = Config(
        shingle=args.shingle,
        num_perm=args.num_perm,
        threshold=args.threshold,
        num_proc=args.num_proc,
    )
    use = None if args.stop_word_rule else tuple(r for r in rules(cfg) if r != "stop_words")
    leaked, fresh = (
        quiz("leaked", args.quiz_items, args.seed),
        quiz("fresh", args.quiz_items, args.seed),
    )
    eval_texts = [q.text() for q in leaked + fresh]
    metrics, val_texts = {}, []

    # --8<-- [start:corpus]
    if args.corpus:
        texts, skipped = read_jsonl(args.corpus, args.text_column)
        kinds = ["unknown"] * len(texts)
        metrics |= skipped
    elif args.dataset:
        texts, val_texts = hub_corpus(args.dataset, args.text_column, args.train_docs)
        kinds = ["unknown"] * len(texts)
        # training rows that overlap the held-out split are contamination too
        eval_texts = eval_texts + val_texts
    else:
        leaks = [q.text() for q in leaked] * args.leak_copies  # web_corpus plants each one 3 times
        docs = web_corpus("train", n_docs=args.train_docs, seed=args.seed, raw=True, leaks=leaks)
        texts, kinds = [d.text for d in docs], [d.kind for d in docs]
    raw = Dataset.from_dict({"text": texts, "kind": kinds})
    # --8<-- [end:corpus]

    # --8<-- [start:curate]
    curated, logs = curate(raw, eval_texts, cfg, use)
    counts = [len(raw)] + [log["kept"] for log in logs]
    # --8<-- [end:curate]
    labelled = not (args.corpus or args.dataset)
    rule_rows = []
    if labelled:  # the kinds each stage saw, to score its removals against the truth
        kinds_in = stage_inputs(raw, logs)
        metrics |= score_stages(logs, kinds_in)
        rule_rows = rule_report(logs[2], kinds_in[2])
    metrics |= {
        "docs_raw": counts[0],
        "docs_after_exact_dedup": counts[1],
        "docs_after_near_dedup": counts[2],
        "docs_after_filters": counts[3],
        "docs_final": counts[4],
        "contaminated_docs_found": logs[3]["removed"],
        "leaked_items_found": sum(j < len(leaked) for j in logs[3]["items_found"]),
        "fresh_items_found": sum(
            len(leaked) <= j < len(leaked) + len(fresh) for j in logs[3]["items_found"]
        ),
        "stage_seconds": [{"stage": log["stage"], "seconds": log["seconds"]} for log in logs],
    }
    examples = write_removed(raw, logs, args.output_dir / "removed.jsonl")

    # --8<-- [start:throughput]
    if args.throughput_docs and labelled:  # the pipeline alone, on a bigger raw corpus
        big = web_corpus("train", n_docs=args.throughput_docs, seed=args.seed + 1, raw=True)
        big = Dataset.from_dict({"text": [d.text for d in big]})
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        curate(big, eval_texts, cfg, use)
        metrics["docs_per_second"] = len(big) / (time.perf_counter() - t0)
        metrics["pipeline_cpu_seconds"] = cpu_seconds() - cpu0  # the same work, free of other load
        metrics["throughput_docs"] = len(big)
    else:
        metrics["docs_per_second"] = len(raw) / sum(log["seconds"] for log in logs)
    # --8<-- [end:throughput]

    if args.corpus:  # your own file: write what survived, nothing to train
        with open(args.output_dir / "curated.jsonl", "w") as f:
            for t in curated["text"]:
                f.write(json.dumps({args.text_column: t}) + "\n")
    else:
        metrics |= effect_on_model(args, raw, curated, val_texts, leaked, fresh, labelled)
    metrics["wall_seconds"] = time.perf_counter() - start
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, counts, logs, examples, rule_rows)
    return metrics


if __name__ == "__main__":
    run(main)
