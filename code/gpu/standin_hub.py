"""A stand-in Hugging Face Hub, offline: `gpt2` and each dataset a `gpu` preset names, made here.

    python code/gpu/standin_hub.py --flavour tiny  # a 2-layer gpt2, seconds: the CPU tests'
    python code/gpu/standin_hub.py --flavour gpt2  # the real GPT-2-124M shape, for a GPU check
    export HF_HOME=<the folder it prints> HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

With those variables, `from_pretrained("gpt2")` and `load_dataset("org/name")` resolve here, with
no network, so every lab's `--preset gpu` runs as a reader's GPU session would run it, against:

- `gpt2`, in the hub cache layout (`hub/models--gpt2/refs/main` names a revision,
  `snapshots/<revision>/` holds it): a GPT-2-style tokenizer (a byte-level BPE trained here on
  generated text to 50,257 tokens, `<|endoftext|>` as its only special token and bos/eos/unk, no
  pad token, no chat template, `model_max_length` 1,024) and random GPT-2 weights saved with
  `save_pretrained` (safetensors);
- the datasets, in the prepared `datasets` cache layout that `load_dataset` reads offline
  (`datasets/<org>___<snake_name>/<config>/0.0.0/<revision>/`), with the columns, types and splits
  the real ones have: `Salesforce/wikitext` (wikitext-2-raw-v1, wikitext-103-raw-v1; `text`),
  `trl-lib/Capybara` (`source`, `messages`, `num_turns`), `trl-lib/ultrafeedback_binarized`
  (`chosen`, `rejected` as conversations, `score_chosen`, `score_rejected`) and `openai/gsm8k`
  (config `main`: `question`, `answer` ending in `#### <number>`).

Every row is generated from `code/lifecycle/world`; nothing is copied from the real datasets, which
are far larger. The build is cached under `$LIFECYCLE_CACHE`, keyed by a fingerprint of this file
and the world.
"""

import argparse
import fcntl
import hashlib
import json
import os
import random
import shutil
from pathlib import Path

from lifecycle.cache import PACKAGE, cache_dir, fingerprint

VOCAB = 50257  # GPT-2's vocabulary: 50,256 BPE tokens, then <|endoftext|> (id 50256)
EOT = "<|endoftext|>"
# {}: GPT2Config() is GPT-2-124M
SHAPES = {"tiny": dict(n_layer=2, n_head=2, n_embd=64), "gpt2": {}}
# training articles; validation, test: 12 each
WIKI = {"wikitext-2-raw-v1": 400, "wikitext-103-raw-v1": 1200}


def words(rng: random.Random, n: int) -> list[str]:
    """`n` distinct made-up words from the world's syllables: enough rare pairs for BPE to learn
    50,256 tokens (the world's own text has too few distinct words to need that many merges)."""
    from lifecycle.world.entities import CODAS, ONSETS, VOWELS

    out: set[str] = set()
    while len(out) < n:
        out.add(
            "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.randint(2, 4)))
            + rng.choice(CODAS)
        )
    return sorted(out)


def tokenizer(seed: int = 0):
    """GPT-2's kind of tokenizer, trained on the world's text plus made-up words (about 2 s)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast

    from lifecycle.world import examples, web_corpus

    rng = random.Random(seed)
    texts = [d.text for d in web_corpus("train", n_docs=3000, seed=seed)]
    texts += [e.prompt + " " + e.answer for e in examples("train", seed=seed)]
    made_up = words(rng, 40000)
    texts += [" ".join(made_up[i : i + 50]) for i in range(0, len(made_up), 50)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=VOCAB - 1,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"]) | {EOT: VOCAB - 1}
    if len(vocab) != VOCAB:
        raise RuntimeError(
            f"BPE learned {len(vocab) - 1} tokens, need {VOCAB - 1}: add made-up words"
        )
    tok = GPT2TokenizerFast(
        vocab=vocab, merges=[tuple(m) for m in model["merges"]], model_max_length=1024
    )
    assert len(tok) == VOCAB and tok.pad_token is None and tok.chat_template is None
    return tok


# --8<-- [start:layout]
def save_gpt2(home: Path, flavour: str, revision: str, seed: int = 0) -> None:
    """Tokenizer and random weights under the id `gpt2`, in the hub cache layout."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    repo = home / "hub" / "models--gpt2"
    snapshot = repo / "snapshots" / revision
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB, bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1, **SHAPES[flavour]
    )
    GPT2LMHeadModel(config).save_pretrained(snapshot)  # safetensors
    tokenizer(seed).save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)


def save_dataset(
    home: Path, repo: str, config: str, splits: dict[str, list[dict]], features, revision: str
) -> None:
    """One config of a dataset in the prepared cache layout: `<snake_name>-<split>.arrow` and
    `dataset_info.json`, which `load_dataset(repo, config)` reads offline."""
    from datasets import Dataset, DatasetInfo, SplitDict, SplitInfo
    from datasets.arrow_writer import ArrowWriter
    from datasets.naming import camelcase_to_snakecase

    org, name = repo.split("/")
    snake = camelcase_to_snakecase(name)
    folder = home / "datasets" / f"{org}___{snake}" / config / "0.0.0" / revision
    folder.mkdir(parents=True)
    info = SplitDict(dataset_name=snake)
    for split, rows in splits.items():
        with ArrowWriter(features=features, path=str(folder / f"{snake}-{split}.arrow")) as writer:
            writer.write_table(Dataset.from_list(rows, features=features).data.table)
            n, size = writer.finalize()
        info.add(SplitInfo(name=split, num_bytes=size, num_examples=n, dataset_name=snake))
    DatasetInfo(
        features=features, dataset_name=snake, config_name=config, splits=info, version="0.0.0"
    ).write_to_directory(str(folder))


# --8<-- [end:layout]


# --- the datasets' rows, from the world ----------------------------------------------------------


def wikitext(split: str, articles: int, seed: int) -> list[dict]:
    """WikiText's shape: a row per line, ` = Title = ` headings, paragraphs, empty rows between."""
    from lifecycle.world import make_world, web_corpus

    w = make_world(seed)
    docs = web_corpus(
        {"train": "train", "validation": "val", "test": "test"}[split],
        n_docs=4 * articles,
        seed=seed,
    )
    rng = random.Random(f"wikitext/{split}/{seed}")
    rows = []
    for i in range(articles):
        title = rng.choice([c.name for c in w.countries] + [p.name for p in w.people])
        rows += [{"text": ""}, {"text": f" = {title} = \n"}, {"text": ""}]
        for j, doc in enumerate(docs[4 * i : 4 * i + 4]):
            if j == 2:
                rows += [{"text": f" = = {doc.kind.capitalize()} = = \n"}, {"text": ""}]
            rows.append({"text": " " + " ".join(doc.text.split()) + " \n"})
    return rows


def capybara(split: str, seed: int) -> list[dict]:
    """Multi-turn chats: one to three of the world's questions in a row, each with its reply."""
    from lifecycle.world import examples

    exs = examples("train" if split == "train" else "test", seed=seed)
    rng = random.Random(f"capybara/{split}/{seed}")
    rows = []
    for _ in range(0, len(exs), 2):
        picked = rng.sample(exs, rng.randint(1, 3))
        messages = [m for e in picked for m in e.messages()]
        rows.append(
            {"source": f"world-{picked[0].task}", "messages": messages, "num_turns": len(messages)}
        )
    return rows


def ultrafeedback(split: str, seed: int) -> list[dict]:
    """Preference pairs with an implicit prompt: chosen and rejected are whole conversations, with
    the 1-10 scores a judge gave them (chosen higher)."""
    from lifecycle.world import pairs

    rng = random.Random(f"ultrafeedback/{split}/{seed}")
    rows = []
    for p in pairs("train" if split == "train" else "test", seed=seed):
        chosen = rng.randint(6, 10)
        rejected = rng.randint(1, chosen - 1)
        rows.append(
            {
                "chosen": p["prompt"] + p["chosen"],
                "rejected": p["prompt"] + p["rejected"],
                "score_chosen": float(chosen),
                "score_rejected": float(rejected),
            }
        )
    return rows


def gsm8k(split: str, n: int, seed: int) -> list[dict]:
    """Grade-school word problems about the world's people, with worked answers that end
    `#### <number>` and mark each calculation `<<a*b=c>>`, as GSM8K's do."""
    from lifecycle.world import make_world

    w = make_world(seed)
    rng = random.Random(f"gsm8k/{split}/{seed}")
    rows = []
    for _ in range(n):
        p, c = rng.choice(w.people), rng.choice(w.countries)
        first = p.name.split()[0]
        a, days, gone = rng.randint(2, 15), rng.randint(2, 7), rng.randint(1, 20)
        total = a * days
        gone = min(gone, total)
        question = (
            f"{p.name} is a {p.job} in {p.city}. Every day {first} buys {a} bags of {c.export} "
            f"from {c.name}. After {days} days, {first} gives {gone} bags to a neighbour. "
            f"How many bags of {c.export} does {first} have left?"
        )
        answer = (
            f"In {days} days {first} buys {a} * {days} = <<{a}*{days}={total}>>{total} bags.\n"
            f"After giving {gone} away, {first} has {total} - {gone} = "
            f"<<{total}-{gone}={total - gone}>>{total - gone} bags left.\n#### {total - gone}"
        )
        rows.append({"question": question, "answer": answer})
    return rows


def save_datasets(home: Path, revision: str, seed: int = 0) -> None:
    from datasets import Features, Value

    text = Value("string")
    messages = [{"content": text, "role": text}]
    for config, articles in WIKI.items():
        save_dataset(
            home,
            "Salesforce/wikitext",
            config,
            {
                s: wikitext(s, articles if s == "train" else 12, seed)
                for s in ("test", "train", "validation")
            },
            Features({"text": text}),
            revision,
        )
    save_dataset(
        home,
        "trl-lib/Capybara",
        "default",
        {s: capybara(s, seed) for s in ("train", "test")},
        Features({"source": text, "messages": messages, "num_turns": Value("int64")}),
        revision,
    )
    save_dataset(
        home,
        "trl-lib/ultrafeedback_binarized",
        "default",
        {s: ultrafeedback(s, seed) for s in ("train", "test")},
        Features(
            {
                "chosen": messages,
                "rejected": messages,
                "score_chosen": Value("float64"),
                "score_rejected": Value("float64"),
            }
        ),
        revision,
    )
    save_dataset(
        home,
        "openai/gsm8k",
        "main",
        {"train": gsm8k("train", 800, seed), "test": gsm8k("test", 200, seed)},
        Features({"question": text, "answer": text}),
        revision,
    )


# --- build, cached -------------------------------------------------------------------------------


def build(flavour: str = "tiny", seed: int = 0) -> Path:
    """The stand-in `HF_HOME` for a flavour (`tiny` or `gpt2`), built once per code fingerprint."""
    if flavour not in SHAPES:
        raise ValueError(f"unknown flavour {flavour!r}; choose from {', '.join(SHAPES)}")
    key = fingerprint(Path(__file__), *(PACKAGE / "world").glob("*.py"), extra=f"{flavour}/{seed}")
    home = cache_dir() / f"standin-hub-{flavour}-s{seed}-{key}"
    with open(home.with_name(f"{home.name}.lock"), "w") as lock:
        # two test workers: one builds, the other waits and reuses it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "done").exists():
            tmp = home.with_name(f"{home.name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            revision = hashlib.sha1(home.name.encode()).hexdigest()  # 40 hex digits, like a commit
            save_gpt2(tmp, flavour, revision, seed)
            save_datasets(tmp, revision, seed)
            (tmp / "done").write_text(revision)
            tmp.rename(home)
    return home


def hub_env(home: Path, base: dict | None = None) -> dict:
    """Environment variables that point the Hub libraries at `home`, offline. Variables that would
    override HF_HOME (an explicit hub or datasets cache) are removed."""
    env = dict(os.environ if base is None else base)
    for name in (
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_DATASETS_CACHE",
        "TRANSFORMERS_CACHE",
    ):
        env.pop(name, None)
    return env | {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--flavour", choices=list(SHAPES), default="tiny", help="tiny: CPU tests; gpt2: 124M"
    )
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(build(a.flavour, a.seed))


if __name__ == "__main__":
    main()
