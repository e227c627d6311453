"""Data curation over a `datasets.Dataset`: exact and near dedup, filters, contamination, mixing.

Each stage takes a dataset with a `text` column and returns the kept rows plus a log of what it
removed and why. The rows keep whatever other columns they have (the labs carry the generator's
`kind` label along, so every stage can be scored against the truth).

    ds = Dataset.from_dict({"text": texts})
    ds, log = exact_dedup(ds)
    ds, log = near_dedup(ds, Config())
    ds, log = quality_filter(ds, Config())
    ds, log = decontaminate(ds, eval_texts, Config())
"""

import hashlib
import json
import re
import resource
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash
from datasets import Dataset, Features, List, Value, interleave_datasets, load_dataset
from datasketch import LeanMinHash, MinHash, MinHashLSH

from .cli import LabError

WORD = re.compile(r"[a-z0-9]+")


# --8<-- [start:config]
@dataclass
class Config:
    shingle: int = 5  # (1)!
    num_perm: int = 128  # (2)!
    threshold: float = 0.85  # (3)!
    min_words: int = 10  # Gopher keeps 50..100,000 words; our documents are short
    max_words: int = 100_000
    max_symbol_ratio: float = (
        0.1  # Gopher: '#' and '...' per word; we count any non-word symbol run
    )
    max_dup_line_frac: float = 0.3  # Gopher: share of lines that repeat an earlier line
    max_top_2gram_frac: float = (
        0.5  # Gopher uses 0.2 on 50+ word pages; our short ones repeat names
    )
    min_stop_words: int = 2  # Gopher: at least two of "the, be, to, of, and, that, have, with"
    contamination_n: int = 13  # GPT-3's overlap length
    num_proc: int = 1  # worker processes for the per-document maps
    batch_size: int = 1000


# --8<-- [end:config]


def words(text: str) -> list[str]:
    """Lowercased words without punctuation: the form every stage compares."""
    return WORD.findall(text.lower())


def _log(stage: str, ds: Dataset, removed: list[int], reasons: list[str]) -> dict:
    return {
        "stage": stage,
        "kept": len(ds) - len(removed),
        "removed": len(removed),
        "removed_rows": removed,
        "reasons": reasons,
    }


# --8<-- [start:exact]
def _hash(batch):
    return {"hash": [hashlib.sha1(" ".join(words(t)).encode()).hexdigest() for t in batch["text"]]}


def exact_dedup(ds: Dataset, cfg: Config | None = None) -> tuple[Dataset, dict]:
    """Keep the first document of each normalized text (case, punctuation and spacing ignored)."""
    cfg = cfg or Config()
    ds = ds.map(
        _hash,
        batched=True,
        batch_size=cfg.batch_size,
        keep_in_memory=True,
        num_proc=_procs(cfg, ds),
    )
    first: dict[str, int] = {}
    keep, removed = [], []
    for i, h in enumerate(ds["hash"]):
        (removed if h in first else keep).append(i)
        first.setdefault(h, i)
    log = _log(
        "exact dedup", ds, removed, ["same normalized text as an earlier document"] * len(removed)
    )
    return ds.select(keep).remove_columns("hash"), log


# --8<-- [end:exact]


# --8<-- [start:near]
def shingles(text: str, k: int) -> set[bytes]:
    """The set of word k-grams of a document (the whole document if it is shorter than k words)."""
    w = words(text)
    return {" ".join(w[i : i + k]).encode() for i in range(max(1, len(w) - k + 1))}


def _signatures(batch, k: int, num_perm: int):
    sets = [shingles(t, k) for t in batch["text"]]
    # xxhash is about twice as fast as datasketch's default sha1, and just as stable across runs.
    signatures = MinHash.bulk(sets, num_perm=num_perm, hashfunc=xxhash.xxh32_intdigest)
    return {"minhash": [m.hashvalues.astype(np.uint64).tobytes() for m in signatures]}


def near_dedup(ds: Dataset, cfg: Config | None = None) -> tuple[Dataset, dict]:
    """Drop each document whose estimated Jaccard similarity to an earlier one reaches `threshold`.

    MinHash turns each shingle set into `num_perm` numbers whose agreement rate estimates Jaccard;
    LSH bands them so that only likely pairs are ever compared. Every document goes into the index,
    removed or not, so a chain of copies is caught even when its first member was dropped.
    """
    cfg = cfg or Config()
    ds = ds.map(
        _signatures,
        batched=True,
        batch_size=cfg.batch_size,
        keep_in_memory=True,
        num_proc=_procs(cfg, ds),
        fn_kwargs={"k": cfg.shingle, "num_perm": cfg.num_perm},
    )
    # Weigh a missed pair 9x a wasted comparison: the bands then propose more candidates, and the
    # estimated Jaccard below rejects the false ones.
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, weights=(0.1, 0.9))
    seen: list[LeanMinHash] = []
    keep, removed, pairs = [], [], []
    signatures = np.frombuffer(b"".join(ds["minhash"]), dtype=np.uint64).reshape(
        len(ds), cfg.num_perm
    )
    for i, values in enumerate(signatures):
        m = LeanMinHash(seed=1, hashvalues=values, scheme="affine32")
        best = max(((m.jaccard(seen[j]), j) for j in lsh.query(m)), default=(0.0, -1))
        seen.append(m)
        lsh.insert(i, m)
        if best[0] >= cfg.threshold:  # LSH proposes candidates; the signatures confirm them
            removed.append(i)
            pairs.append((i, best[1]))
        else:
            keep.append(i)
    reason = f"estimated Jaccard >= {cfg.threshold} with an earlier document"
    log = _log("near dedup", ds, removed, [reason] * len(removed)) | {"pairs": pairs}
    return ds.select(keep).remove_columns("minhash"), log


# --8<-- [end:near]


# --8<-- [start:rules]
STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}  # Gopher's list
SYMBOL = re.compile(r"[#$%*|<>@~^]+|\.\.\.|!{2,}")
BAD_PHRASES = ("lorem ipsum", "javascript", "cookie", "{")  # C4 drops pages or lines holding these


def _top_2gram_frac(w: list[str]) -> float:
    grams = Counter(zip(w, w[1:]))
    if not grams:
        return 0.0
    (a, b), n = grams.most_common(1)[0]
    return n * (len(a) + len(b)) / max(1, sum(map(len, w))) if n > 1 else 0.0


def _dup_line_frac(text: str) -> float:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return 1 - len(set(lines)) / len(lines) if lines else 0.0


def rules(cfg: Config) -> dict[str, callable]:
    """Each rule returns True when a document fails it (Gopher/C4/FineWeb-style heuristics)."""
    return {
        "length": lambda t, w: not cfg.min_words <= len(w) <= cfg.max_words,
        "symbol_ratio": lambda t, w: (
            len(SYMBOL.findall(t)) / max(1, len(w)) > cfg.max_symbol_ratio
        ),
        "repeated_lines": lambda t, w: _dup_line_frac(t) > cfg.max_dup_line_frac,
        "repeated_2gram": lambda t, w: _top_2gram_frac(w) > cfg.max_top_2gram_frac,
        "bad_phrase": lambda t, w: any(p in t.lower() for p in BAD_PHRASES),
        "stop_words": lambda t, w: len(STOP_WORDS.intersection(w)) < cfg.min_stop_words,
    }


# --8<-- [end:rules]


def _flags(batch, cfg: Config):
    checks = rules(cfg)
    out = {f"rule_{name}": [] for name in checks}
    for t in batch["text"]:
        w = words(t)
        for name, fails in checks.items():
            out[f"rule_{name}"].append(fails(t, w))
    return out


# --8<-- [start:filter]
def quality_filter(
    ds: Dataset, cfg: Config | None = None, use: tuple[str, ...] | None = None
) -> tuple[Dataset, dict]:
    """Flag every rule on every document, then drop the documents that fail any rule in `use`.

    Rules outside `use` are still counted, so their hit counts can be judged before turning them
    on.
    """
    cfg = cfg or Config()
    use = tuple(rules(cfg)) if use is None else use
    ds = ds.map(
        _flags,
        batched=True,
        batch_size=cfg.batch_size,
        keep_in_memory=True,
        num_proc=_procs(cfg, ds),
        fn_kwargs={"cfg": cfg},
    )
    cols = [f"rule_{name}" for name in rules(cfg)]
    flags = {c.removeprefix("rule_"): np.asarray(ds[c]) for c in cols}
    drop = np.zeros(len(ds), dtype=bool)
    for name in use:
        drop |= flags[name]
    removed = np.flatnonzero(drop).tolist()
    reasons = [next(n for n in use if flags[n][i]) for i in removed]  # the first rule it failed
    log = _log("quality filters", ds, removed, reasons) | {"flags": flags, "used": use}
    return ds.select(np.flatnonzero(~drop)).remove_columns(cols), log


# --8<-- [end:filter]


# --8<-- [start:contamination]
def ngrams(text: str, n: int) -> set[str]:
    w = words(text)
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def decontaminate(
    ds: Dataset, eval_texts: list[str], cfg: Config | None = None
) -> tuple[Dataset, dict]:
    """Drop each document sharing a `contamination_n`-gram with an evaluation text (GPT-3's)."""
    cfg = cfg or Config()
    index = {g: j for j, t in enumerate(eval_texts) for g in ngrams(t, cfg.contamination_n)}

    def hits(batch):
        return {
            "eval_hits": [
                sorted({index[g] for g in ngrams(t, cfg.contamination_n) if g in index})
                for t in batch["text"]
            ]
        }

    # typed: most lists are empty
    features = Features({**ds.features, "eval_hits": List(Value("int64"))})
    ds = ds.map(
        hits, batched=True, batch_size=cfg.batch_size, keep_in_memory=True, features=features
    )
    found = [(i, h) for i, h in enumerate(ds["eval_hits"]) if h]
    removed = [i for i, _ in found]
    log = _log(
        "decontamination",
        ds,
        removed,
        [f"{cfg.contamination_n}-gram overlap with an eval item"] * len(removed),
    )
    log["items_found"] = sorted({j for _, h in found for j in h})
    keep = sorted(set(range(len(ds))) - set(removed))
    return ds.select(keep).remove_columns("eval_hits"), log


# --8<-- [end:contamination]


# --8<-- [start:mix]
def mixture(
    ds: Dataset, weights: dict[str, float], seed: int = 0, column: str = "kind"
) -> Dataset:
    """Interleave each source's documents with explicit probabilities; stop when one runs out."""
    parts = [ds.filter(lambda k, s=s: k == s, input_columns=column) for s in weights]
    total = sum(weights.values())
    return interleave_datasets(
        parts,
        probabilities=[w / total for w in weights.values()],
        seed=seed,
        stopping_strategy="first_exhausted",
    )


# --8<-- [end:mix]


# --8<-- [start:pipeline]
def curate(
    ds: Dataset,
    eval_texts: list[str],
    cfg: Config | None = None,
    use: tuple[str, ...] | None = None,
):
    """The four removal stages in order: the curated dataset, and each stage's log and time."""
    cfg = cfg or Config()
    logs = []
    for stage in (
        exact_dedup,
        near_dedup,
        lambda d, c: quality_filter(d, c, use),
        lambda d, c: decontaminate(d, eval_texts, c),
    ):
        start = time.perf_counter()
        ds, log = stage(ds, cfg)
        logs.append(log | {"seconds": time.perf_counter() - start})
    return ds, logs


# --8<-- [end:pipeline]


def read_jsonl(path: str, column: str = "text") -> tuple[list[str], dict[str, int]]:
    """The `column` of each JSON line. Empty and non-UTF-8 lines are skipped and counted; a line
    that is not JSON, or lacks the column, stops the run with one line naming the file and line
    number."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise LabError(f"cannot read --corpus {path!r}: {e.strerror or e}") from None
    lines = raw.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()  # the newline that ends the file
    texts, skipped = [], {"skipped_empty_lines": 0, "skipped_non_utf8_lines": 0}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            skipped["skipped_empty_lines"] += 1
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            skipped["skipped_non_utf8_lines"] += 1
            continue
        except json.JSONDecodeError as e:
            raise LabError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict) or column not in row:
            fields = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise LabError(
                f"{path}:{n}: no {column!r} field (found: {fields}); pick one with --text_column"
            )
        if not isinstance(row[column], str):
            raise LabError(
                f"{path}:{n}: {column!r} is a {type(row[column]).__name__}, not a string"
            )
        texts.append(row[column])
    if not texts:
        raise LabError(
            f"{path}: no usable lines (empty: {skipped['skipped_empty_lines']}, "
            f"non-UTF-8: {skipped['skipped_non_utf8_lines']})"
        )
    return texts, skipped


def hub_corpus(dataset: str, column: str, n: int) -> tuple[list[str], list[str]]:
    """Train and validation texts of a Hub dataset (`NAME` or `NAME:CONFIG`): the first `n`
    training rows, and up to 2,000 non-empty validation (or test) rows; without either split, the
    last 5% of the rows."""
    name, _, config = dataset.partition(":")
    try:
        ds = load_dataset(name, config or None)
    except Exception as e:  # datasets raises several types when offline
        raise LabError(
            f"cannot load dataset {dataset!r} from the Hub (offline?): {type(e).__name__}"
        ) from None
    if column not in ds["train"].column_names:
        raise LabError(
            f"dataset {dataset!r} has no {column!r} column; pick one with --text_column"
        )
    val = next((s for s in ("validation", "test") if s in ds), None)
    train = list(ds["train"].select(range(min(n, len(ds["train"]))))[column])
    if val is None:
        return train[: len(train) * 19 // 20], train[len(train) * 19 // 20 :]
    return train, [t for t in ds[val][column][:2000] if t.strip()]


def cpu_seconds() -> float:
    """CPU time of this process and its finished workers (`num_proc`): wall time varies."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


# Scoring against the truth: the world's raw corpus labels every document with the `kind` it was
# planted as.
JUNK = {"spam", "boilerplate"}


def stage_inputs(raw: Dataset, logs: list[dict], column: str = "kind") -> list[list]:
    """The `column` of the rows each stage saw, in order: stage i's input is stage i-1's output."""
    seen, ds = [], raw
    for log in logs:
        seen.append(ds[column])
        ds = ds.select(sorted(set(range(len(ds))) - set(log["removed_rows"])))
    return seen


def score_stages(logs: list[dict], kinds_in: list[list[str]]) -> dict:
    """Each stage against the generator's labels: what it removed, and whether that was junk."""
    exact, near, filt, cont = logs
    found = [kinds_in[1][i] for i in near["removed_rows"]]
    dropped = [kinds_in[2][i] for i in filt["removed_rows"]]
    cont_in = kinds_in[3]
    return {
        "near_dup_precision": found.count("near_dup") / max(1, len(found)),
        "near_dup_recall": found.count("near_dup") / max(1, kinds_in[1].count("near_dup")),
        "spam_filter_precision": sum(k in JUNK for k in dropped) / max(1, len(dropped)),
        "spam_filter_recall": sum(k in JUNK for k in dropped)
        / max(1, sum(k in JUNK for k in kinds_in[2])),
        "leak_docs_reaching_decontamination": cont_in.count("leak"),
        "leak_docs_found": sum(cont_in[i] == "leak" for i in cont["removed_rows"]),
    }


def rule_report(log: dict, kinds: list[str]) -> list[dict]:
    """One row per quality rule: documents it hit, how many were junk, which clean kinds it hit."""
    rows = []
    for name, hits in log["flags"].items():
        hit_kinds = [k for k, h in zip(kinds, hits) if h]
        rows.append(
            {
                "rule": name,
                "used": "yes" if name in log["used"] else "no (counted only)",
                "hits": len(hit_kinds),
                "junk_hits": sum(k in JUNK for k in hit_kinds),
                "precision": sum(k in JUNK for k in hit_kinds) / max(1, len(hit_kinds)),
                "clean_hits": ", ".join(
                    f"{k} {hit_kinds.count(k)}"
                    for k in sorted(set(hit_kinds) - JUNK - {"near_dup"})
                )
                or "none",
            }
        )
    return rows


def write_removed(raw: Dataset, logs: list[dict], path) -> list[dict]:
    """Every removed document with its stage and reason, as JSON lines at `path`; returns the first
    two of each stage, their text shortened, for a table."""
    examples, ds = [], raw
    with open(path, "w") as f:
        for log in logs:
            for n, (i, why) in enumerate(zip(log["removed_rows"], log["reasons"])):
                row = {
                    "stage": log["stage"],
                    "reason": why,
                    "kind": ds[i]["kind"],
                    "text": ds[i]["text"],
                }
                f.write(json.dumps(row) + "\n")
                if n < 2:
                    text = " ".join(row["text"].split())
                    examples.append(row | {"text": text[:80] + ("..." if len(text) > 80 else "")})
            ds = ds.select(sorted(set(range(len(ds))) - set(log["removed_rows"])))
    return examples


def _procs(cfg: Config, ds: Dataset) -> int | None:
    return cfg.num_proc if cfg.num_proc > 1 and len(ds) >= 4 * cfg.batch_size else None
