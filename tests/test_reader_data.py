"""Each file of tests/data/reader-data (real layouts, invented content; see its README) meets its
outcome at the smoke preset: it trains exactly what it says, with the rows used, or it stops with
exit 2 and one line naming the file, the row and the fix. Never a traceback, never exit 0 on
something else.

Most outcomes are checked in-process: the lab's own reading, split and fit calls, then the TRL
trainer built (not trained) on what they return. Six outcomes run the lab script itself, to check
the exit code, the single stderr line and the rows reported in metrics.json. Cost (measured on the
shared 2-core machine, load average 7): about 10 s in-process, plus about 110 s wall (50 s CPU) for
the six lab runs (the SFT run's model feeds a DPO run, as the page chains them), with the
pretrain, SFT, reward and PPO smoke stages from the session cache. The eleven CLI bad-input runs
this replaced in tests/labs cost about 90 s.
"""

import json

import pytest

from conftest import ROOT, error_line, load_lab, run_lab
from lifecycle.cli import LabError, parse
from lifecycle.data import fit_chats, fit_splits, model_context, read_chats
from lifecycle.models import build_model
from lifecycle.rlhf import pair_dataset
from lifecycle.stages import base_model

DATA = ROOT / "tests" / "data" / "reader-data"
END = "<|end|>"


def error(row: int | None, what: str, fix: str) -> dict:
    return {"error": (row, what, fix)}


def trains(train: int, heldout: int | None = None, **check) -> dict:
    return {"train": train, "heldout": heldout, **check}


TOO_FEW = error(
    None,
    "4 training pairs make 1 optimizer step(s) at --batch_size 16",
    "give at least 65 training pairs, or pass --batch_size 1 --epochs 2",
)
SFT = {
    "sft_01_sharegpt.jsonl": trains(2, trained=["The capital of Norland is Velmar.", "The Orla."]),
    "sft_02_openai_weight0.jsonl": trains(4, trained=["Velmar."] * 4),  # never WRONG-DRAFT-ANSWER
    "sft_03_tool_calls.jsonl": error(
        1, "has 'tools': tool calls are not supported", "remove these rows"
    ),
    "sft_04a_utf8_bom.jsonl": trains(6, trained=["The capital of Norland is Velmar."] * 6),
    "sft_04b_utf16_powershell.jsonl": error(
        None, "line 1 starts with a UTF-16 byte-order mark", "iconv -f UTF-16 -t UTF-8"
    ),
    "sft_05_json_array.json": trains(3, trained=["The capital of Norland is Velmar."] * 3),
    "sft_06_reply_truncated.jsonl": error(
        1,
        "none of the 32 training rows can be used (32 with no trained token in the first 128)",
        "shorten what comes before the reply",
    ),
    "sft_07_empty_reply.jsonl": error(
        1, "messages turn 2 (assistant) has empty content", "write the assistant's text"
    ),
    "sft_08_special_tokens_in_text.jsonl": error(
        1, "messages turn 1 contains '<|end|>', a special token", "remove or rewrite it"
    ),
    "sft_09_crlf_blank_unicode.jsonl": trains(6, trained=["Velmar 🏙️ — 首都"] * 6),
}
PAIRS = {
    "pairs_01_h4_ultrafeedback.jsonl": {
        "reward": TOO_FEW,
        "dpo": trains(4, 1, prompt="What does Tarsk export?"),
    },
    "pairs_02_trl_implicit_conv.jsonl": {
        "reward": TOO_FEW,
        "dpo": trains(4, 1, prompt="What does Tarsk export?"),
    },
    "pairs_03_mixed_text_and_messages.jsonl": error(
        1,
        "is text with a 'prompt', but 4 of the 5 rows are messages with a 'prompt'",
        "use one format",
    ),
    "pairs_04a_prompt_missing_row1.jsonl": error(
        1,
        "is text without a 'prompt', but 4 of the 5 rows are text with a 'prompt'",
        "use one format",
    ),
    "pairs_05_chosen_eq_rejected.jsonl": error(
        1,
        "chosen is identical to rejected in every pair: there is no preference to learn (the DPO "
        "and reward losses would sit at ln 2",
        "put the preferred reply in 'chosen'",
    ),
    "pairs_06_bad_roles.jsonl": error(
        1, "prompt turn 1 has bad role 'human'", "use one of system, user, assistant"
    ),
    "pairs_07a_long_heldout.jsonl": {
        "reward": error(
            1,
            "none of the 20 held-out rows can be used (20 longer than 128 tokens)",
            "shorten them, or use a model with a longer context (--max_length is already this "
            "model's 128 tokens)",
        ),
        "dpo": error(
            1,
            "none of the 20 held-out rows can be used (20 with a prompt of 128 tokens or more)",
            "shorten them, or use a model with a longer context (--max_length is already this "
            "model's 128 tokens)",
        ),
    },
    "pairs_08_hh_rlhf_text.jsonl": {
        "reward": TOO_FEW,
        "dpo": trains(4, 1, prompt="What does Tarsk export?"),
        "reward --batch_size 1 --epochs 2": trains(4, 1, prompt="What does Tarsk export?"),
    },
}
CASES = [(f, "sft", o) for f, o in SFT.items()] + [
    (f, lab_name, outcomes.get(lab_name, outcomes))
    for f, outcomes in PAIRS.items()
    for lab_name in (["reward", "dpo"] if "error" in outcomes else outcomes)
]


def test_every_file_has_its_case():
    assert {f for f, _, _ in CASES} == {p.name for p in DATA.iterdir() if p.name != "README.md"}
    assert len(CASES) == 27


def assert_one_line(e: LabError, path: str, expected) -> None:
    row, what, fix = expected
    line = str(e)
    assert "\n" not in line and line.startswith(path), line
    assert (f"{path}, row {row}: " if row else f"{path}: ") + what in line and fix in line, line


@pytest.fixture(scope="module")
def base():
    return str(base_model("smoke"))


def sft_outcome(path: str, base: str):
    """What sft.py does with --data before it trains: read, then fit at the base model's length."""
    tokenizer, context = model_context(base)
    return tokenizer, fit_chats(tokenizer, context, read_chats(path), path)


def pairs_outcome(lab_name: str, path: str, flags: list[str], base: str, tmp_path):
    """What reward.py and dpo.py do with --data before training: read, split, fit, count steps."""
    name = lab_name.split()[0]
    module = load_lab(name)
    args = parse(
        module.Args,
        module.PRESETS,
        ["--output_dir", str(tmp_path), "--preset", "smoke", "--data", path, *flags],
    )
    train, heldout = module.data(args)[0] if name == "reward" else module.data(args, ())
    steps = (args.batch_size, args.epochs, module.LOGGING_STEPS) if name == "reward" else None
    return args, *fit_splits(base, train, heldout, args.max_length, name, path, steps)


@pytest.mark.parametrize("file, lab_name, outcome", CASES, ids=[f"{f}-{n}" for f, n, _ in CASES])
def test_file_outcome(file, lab_name, outcome, base, tmp_path):
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer, SFTConfig, SFTTrainer

    path = str(DATA / file)
    run = (
        (lambda: sft_outcome(path, base))
        if lab_name == "sft"
        else (lambda: pairs_outcome(lab_name, path, lab_name.split()[1:], base, tmp_path))
    )
    if "error" in outcome:
        with pytest.raises(LabError) as e:
            run()
        assert_one_line(e.value, path, outcome["error"])
        return
    common = dict(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False, max_steps=1
    )
    if lab_name == "sft":  # the rows and labels SFTTrainer keeps, from the lab's own tokenization
        tokenizer, fit = run()
        sft = load_lab("sft")
        data = sft.tokenized(tokenizer, fit.rows, 0.0, 0, limit=128)
        trainer = SFTTrainer(
            model=build_model("smoke", tokenizer),
            processing_class=tokenizer,
            train_dataset=data,
            args=SFTConfig(**common, activation_checkpointing=False),
        )
        assert sft.rows_trained(trainer) == outcome["train"]
        trained = [
            tokenizer.decode([t for t in row["labels"] if t != -100])
            for row in trainer.train_dataset
        ]
        # the chat template opens every reply with a space
        assert trained == [" " + reply + END for reply in outcome["trained"]]
        return
    args, train, heldout = run()
    tokenizer, _ = model_context(base)
    assert (len(train), len(heldout)) == (outcome["train"], outcome["heldout"])
    if lab_name == "dpo":
        trainer = DPOTrainer(
            model=build_model("smoke", tokenizer),
            ref_model=build_model("smoke", tokenizer),
            args=DPOConfig(**common, gradient_checkpointing=False, max_length=args.max_length),
            processing_class=tokenizer,
            train_dataset=pair_dataset(train),
        )
        first = trainer.train_dataset[0]
        assert (
            tokenizer.decode(first["prompt_ids"])
            == f"<|user|>{outcome['prompt']}{END}<|assistant|>"
        )
        assert tokenizer.decode(first["chosen_ids"]) == " Tarsk exports copper." + END
    else:
        from transformers import GPT2ForSequenceClassification

        config = build_model("smoke", tokenizer).config
        config.num_labels = 1
        trainer = RewardTrainer(
            model=GPT2ForSequenceClassification(config),
            processing_class=tokenizer,
            args=RewardConfig(**common, gradient_checkpointing=False, max_length=args.max_length),
            train_dataset=pair_dataset(train),
        )
        assert (
            tokenizer.decode(trainer.train_dataset[0]["chosen_ids"])
            == f"<|user|>{outcome['prompt']}{END}<|assistant|> Tarsk exports copper.{END}"
        )
    # nothing more dropped by the trainer's own filter
    assert len(trainer.train_dataset) == outcome["train"]


# --- through the lab scripts: exit codes, one stderr line, metrics.json --------------------------


def cli(lab_name: str, file: str, tmp_path, *flags: str):
    return run_lab(
        lab_name,
        "--output_dir",
        str(tmp_path / "out"),
        "--preset",
        "smoke",
        "--data",
        str(DATA / file),
        *flags,
        check=False,
    )


@pytest.mark.parametrize(
    "lab_name, file",
    [
        ("sft", "sft_06_reply_truncated.jsonl"),
        ("reward", "pairs_07a_long_heldout.jsonl"),
        ("dpo", "pairs_05_chosen_eq_rejected.jsonl"),
    ],
)
def test_lab_stops_with_one_line(lab_name, file, tmp_path):
    """The error comes before any training, with nothing else on stderr (no report, no bars)."""
    outcome = SFT.get(file) or PAIRS[file]
    line = error_line(cli(lab_name, file, tmp_path))
    assert line.startswith(f"{lab_name}: error: {DATA / file}")
    assert_one_line(
        LabError(line.removeprefix(f"{lab_name}: error: ")),
        str(DATA / file),
        outcome.get(lab_name, outcome)["error"],
    )
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_sft_then_dpo_from_that_model_train_the_files_and_report_their_rows(tmp_path):
    """The page's chain: SFT on your chats, then DPO on your pairs with `--model` set to the SFT
    run's saved model (docs/labs/your-data.md). Each run reports the rows it trained."""
    sft, dpo = tmp_path / "sft", tmp_path / "dpo"
    proc = cli("sft", "sft_02_openai_weight0.jsonl", sft, "--max_steps", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((sft / "out" / "metrics.json").read_text())
    assert (m["rows_in_file"], m["train_rows"]) == (4, 4)
    model = sft / "out" / "model"
    flags = "--max_steps", "2", "--betas", "0.1", "--model", str(model)
    proc = cli("dpo", "pairs_08_hh_rlhf_text.jsonl", dpo, *flags)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((dpo / "out" / "metrics.json").read_text())
    assert (m["pairs_in_file"], m["train_pairs"], m["heldout_pairs"]) == (5, 4, 1)


def test_reward_lab_warns_once_and_reports_the_pairs_it_trained(tmp_path):
    """100 pairs in Anthropic HH text, 10 too long: a warning line; metrics count what trained."""
    from lifecycle.world import pairs

    rows = []
    for i, p in enumerate(pairs("train")[:100]):
        question = p["prompt"][0]["content"] + (" Please answer." * 60 if i % 10 == 9 else "")
        rows += [
            {
                k: f"\n\nHuman: {question}\n\nAssistant: {p[k][0]['content']}"
                for k in ("chosen", "rejected")
            }
        ]
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_lab(
        "reward",
        "--output_dir",
        str(tmp_path / "out"),
        "--preset",
        "smoke",
        "--data",
        str(data),
        "--batch_size",
        "4",
        "--epochs",
        "0.3",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("reward: warning:")]
    assert warnings == [
        f"reward: warning: {data}: training: 72 of 80 rows used; 8 longer than 128 tokens "
        "(rows 30, 40, 50, 60, 70, ...); held-out: 18 of 20 rows used; 2 longer than 128 tokens "
        "(rows 10, 20)"
    ]
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (m["pairs_in_file"], m["train_pairs"], m["heldout_pairs"]) == (100, 72, 18)
