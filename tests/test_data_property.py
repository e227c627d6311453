"""Property test: random mutations of valid files never give a traceback in the labs' readers.

Each mutated file either reads, and then the lab's fit (SFTTrainer's, RewardTrainer's or
DPOTrainer's rule) runs on it, or it raises the one-line LabError that names the file. Mutations:
dropped keys, swapped types, special-token strings, rows from another format, huge rows, truncated
lines, other encodings, random bytes, JSON arrays, blank lines and gzip. Hypothesis is
derandomized, so CI sees the same files every run. Cost: 3 × 120 = 360 files in about 10 s
(measured on the 2-core machine under a load average of 7). READER_EXAMPLES=1500 explores more
(4,500 files, derandomized or not, passed before this was committed).
"""

import gzip
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.cli import LabError
from lifecycle.data import fit_chats, fit_pairs, read_chats, read_pairs
from lifecycle.tokenizer import load_tokenizer

U, A = (
    {"role": "user", "content": "Capital of Norland?"},
    {"role": "assistant", "content": "Velmar."},
)
B = {"role": "assistant", "content": "Orla, obviously."}
CHATS = [
    [{"messages": [U, A]}, {"messages": [{"role": "system", "content": "Be brief."}, U, A]}],
    [
        {
            "messages": [
                U,
                {**B, "weight": 0},
                {"role": "user", "content": "Again."},
                {**A, "weight": 1},
            ]
        }
    ]
    * 2,
    [
        {
            "conversations": [
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello."},
            ],
            "id": "a",
        }
    ]
    * 2,
    [{"prompt": [U], "completion": [A]}, {"prompt": [U, B, U], "completion": [A]}],
    [{"prompt": "The capital of Norland is", "completion": " Velmar."}] * 2,
    [{"text": "Velmar lies on the Orla."}, {"text": "Réponds 🙂 首都"}],
]
PAIRS = [
    [{"prompt": [U], "chosen": [A], "rejected": [B]}] * 3,
    [{"chosen": [U, A], "rejected": [U, B]}] * 3,
    [{"prompt": "Capital of Norland?", "chosen": [U, A], "rejected": [U, B], "score_chosen": 8.0}]
    * 3,
    [{"prompt": "The capital is", "chosen": " Velmar.", "rejected": " Orla."}] * 3,
    [{"chosen": "The capital is Velmar.", "rejected": "The capital is Orla."}] * 3,
    [
        {
            "chosen": "\n\nHuman: Capital?\n\nAssistant: Velmar.",
            "rejected": "\n\nHuman: Capital?\n\nAssistant: No.",
        }
    ]
    * 3,
]
ODD_VALUES = [
    None,
    0,
    1,
    2.5,
    True,
    "",
    " ",
    "x",
    [],
    {},
    [1],
    ["a"],
    {"role": "user"},
    [{"x": 1}],
    "<|end|>",
]
ENCODINGS = ["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-8-sig"]


def paths(value, path=()):
    """Every place in a JSON value: (path, value) pairs, depth first."""
    yield path, value
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        yield from paths(child, (*path, key))


def put(value, path, new):
    if not path:
        return new
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return value


@st.composite
def mutated_files(draw, seeds):
    """(name, bytes): a valid file, mutated one to three times, structurally and then as bytes."""
    rows = json.loads(json.dumps(draw(st.sampled_from(seeds))))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "swap", "token", "other", "huge", "none"]))
        places = list(paths(rows))
        path, value = draw(st.sampled_from(places))
        if op == "drop":
            dicts = [(p, v) for p, v in places if isinstance(v, dict) and v]
            if dicts:
                p, d = draw(st.sampled_from(dicts))
                del d[draw(st.sampled_from(sorted(d)))]
        elif op == "swap":
            rows = put(rows, path, json.loads(json.dumps(draw(st.sampled_from(ODD_VALUES)))))
        elif op == "token" and isinstance(value, str):
            rows = put(
                rows,
                path,
                value + draw(st.sampled_from(["<|end|>", "<|assistant|>", "<|endoftext|>"])),
            )
        elif op == "other" and isinstance(rows, list):
            other = draw(st.sampled_from([r for seed in CHATS + PAIRS for r in seed]))
            rows.insert(draw(st.integers(0, len(rows))), json.loads(json.dumps(other)))
        elif op == "huge" and isinstance(value, str):
            rows = put(rows, path, value * draw(st.integers(2_000, 20_000)))
    as_array = draw(st.booleans()) and draw(st.booleans())
    name = draw(st.sampled_from(["data.jsonl", "data.json", "data.jsonl.gz"]))
    if isinstance(rows, list) and not as_array:
        text = "".join(
            json.dumps(r, ensure_ascii=False) + draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
            for r in rows
        )
    else:
        text = json.dumps(rows, ensure_ascii=False, indent=draw(st.sampled_from([None, 2])))
    raw = text.encode()
    op = draw(st.sampled_from(["none", "none", "truncate", "encode", "bytes", "garbage"]))
    if op == "truncate" and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif op == "encode":
        raw = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    elif op == "bytes":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    elif op == "garbage":
        raw = draw(st.binary(max_size=200))
    return name, gzip.compress(raw) if name.endswith(".gz") else raw


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def read_and_fit(lab: str, path: str, tokenizer):
    if lab == "sft":
        return fit_chats(tokenizer, 128, read_chats(path), path)
    return fit_pairs(tokenizer, read_pairs(path), 128, lab, path, "training")


def check(lab: str, file: tuple[str, bytes], tokenizer) -> str:
    name, raw = file
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / name)
        Path(path).write_bytes(raw)
        try:
            fit = read_and_fit(lab, path, tokenizer)
        except LabError as e:
            line = str(e)
            assert "\n" not in line and line.startswith(path), line
            return "error"
    assert fit.rows and all(isinstance(r["row"], int) for r in fit.rows)
    return "read"


OUTCOMES: dict[str, set] = {"sft": set(), "reward": set(), "dpo": set()}
EXAMPLES = settings(
    max_examples=int(os.environ.get("READER_EXAMPLES", 120)),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@EXAMPLES
@given(file=mutated_files(CHATS))
def test_sft_reader_never_tracebacks(file, tok):
    OUTCOMES["sft"].add(check("sft", file, tok))


@EXAMPLES
@given(file=mutated_files(PAIRS))
def test_reward_reader_never_tracebacks(file, tok):
    OUTCOMES["reward"].add(check("reward", file, tok))


@EXAMPLES
@given(file=mutated_files(PAIRS))
def test_dpo_reader_never_tracebacks(file, tok):
    OUTCOMES["dpo"].add(check("dpo", file, tok))


def test_mutations_reach_both_outcomes():
    """The mutated files are not all rejected (nor all accepted): the property covers both."""
    for lab, seen in OUTCOMES.items():
        assert seen in ({"read", "error"}, set()), (lab, seen)  # empty when run alone
