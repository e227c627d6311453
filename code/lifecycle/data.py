"""Your own data: one reader for the chats (SFT) and preference pairs (reward model, DPO) given
with `--data` (and for the chats of a Hub dataset, `hub_chats`).

Every file either trains exactly what it says, with the rows used reported, or stops with one line
that names the file, the row and the fix (`LabError`, exit code 2).

Files: JSON Lines (one object per line) or a JSON array of objects, either of them gzipped, read
with `datasets`' `json` builder; UTF-8 with or without a byte-order mark.

Formats: TRL's dataset formats (https://huggingface.co/docs/trl/dataset_formats), standard (text)
and conversational (messages), plus three that map onto them without ambiguity:

| for | format | a row |
| --- | --- | --- |
| sft | language modeling | `{"messages": [{"role", "content"}, ...]}`, or `{"text"}` |
| sft | prompt-completion | `{"prompt", "completion"}`: both messages, or both text |
| sft | ShareGPT | `{"conversations": [{"from": "human" / "gpt" / "system", "value"}, ...]}` |
| sft | OpenAI chat | messages; an assistant turn with `"weight": 0` is not trained |
| pairs | preference | `{"prompt", "chosen", "rejected"}`: all messages, or all text |
| pairs | implicit prompt | `{"chosen", "rejected"}`: the shared start is the prompt |
| pairs | H4 (UltraFeedback) | a text `prompt`, and `chosen`/`rejected` as whole conversations |
| pairs | Anthropic HH | `"\\n\\nHuman: ...\\n\\nAssistant: ..."` text, as user and assistant |

Refused by name: tool calls (`tools`, `tool_calls`, `tool` turns: our chat template has no tool
format), prompt-only and unpaired (`label`) rows, pairs given to SFT and chats given to the pair
labs, rows that mix formats, roles other than system/user/assistant, null or empty text, other
encodings, table files (Parquet, Arrow, CSV, TSV: the line gives the `datasets` command that
converts them), and text that holds a special-token string such as `<|end|>`: the chat template is
rendered into one string and tokenized whole (by TRL too), so that text would become the control
token and could forge a turn.

Rows a trainer would leave out (longer than `max_length`, nothing left to train on) are counted by
`fit_chats`/`fit_pairs` with that trainer's own rule; more than half of them left out is an error.
"""

import codecs
import gzip
import json
import math
import re
import sys
import tempfile
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets
from trl.data_utils import extract_prompt

from .cli import LabError
from .tokenizer import SPECIAL, ready_tokenizer
from .training import chat_row

ROLES = ("system", "user", "assistant")
SHAREGPT = {
    "human": "user",
    "gpt": "assistant",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
}
TOOL_KEYS = {"tools", "tool_calls", "tool_call_id", "function_call", "functions"}
HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant): ?")
HH_START = re.compile(r"\s*Human:")
BOMS = [
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),  # before UTF-16: same first bytes
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
]
NO_TOOLS = "tool calls are not supported (our chat template has no tool format); remove these rows"


def bad(source: str, row: int | str | None, what: str) -> LabError:
    """The one-line error: `<file>, row N: <what is wrong; the fix>`."""
    return LabError(f"{source}, row {row}: {what}" if row else f"{source}: {what}")


# --8<-- [start:load]
def load_rows(path: str) -> list[dict]:
    """The rows of a JSON Lines or JSON file (gzipped or not) as dicts, read by `datasets`' json.

    Raises LabError for an unreadable or empty file, an encoding other than UTF-8, a JSON array in
    a `.jsonl` file, or a line that is not a JSON object (naming its row)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise bad(
            path, None, f"cannot read the file ({getattr(e, 'strerror', None) or e})"
        ) from None
    not_json(raw, p)
    text = decode(raw, path)
    if not text.strip():
        raise bad(path, None, "the file is empty: no rows to train on")
    if re.search(r"\.jsonl(\.gz)?$", p.name) and text.lstrip().startswith("["):
        raise bad(
            path,
            1,
            "the .jsonl file holds one JSON array, not one JSON object per line; "
            "rename it to .json, or write one object per line",
        )
    # first, in Python: pyarrow crashes on some files (one holding `null`)
    n = count_rows(text, path)
    try:
        rows = json_builder(p)
    except Exception:  # datasets and pyarrow raise many types
        rows = []
    if len(rows) != n:
        raise bad(
            path,
            None,
            "the rows do not form one table (a column changes its type between rows?); "
            "give each column one type in every row",
        )
    return rows


# --8<-- [end:load]


# Table formats readers download (the Hub serves Parquet) or export (spreadsheets): by magic bytes,
# else by suffix. Each gets the `datasets` one-liner that turns it into JSON Lines.
TABLES = [
    ("Parquet", lambda raw, name: raw[:4] == b"PAR1", "parquet"),
    ("Arrow", lambda raw, name: raw[:6] == b"ARROW1" or name.endswith(".arrow"), "arrow"),
    ("CSV", lambda raw, name: name.endswith((".csv", ".csv.gz")), "csv"),
    ("TSV", lambda raw, name: name.endswith((".tsv", ".tsv.gz")), "csv"),
]


def not_json(raw: bytes, p: Path) -> None:
    """A Parquet, Arrow, CSV or TSV file is one line that says how to convert it to JSON Lines."""
    for kind, match, builder in TABLES:
        if match(raw, p.name.lower()):
            extra = ", delimiter='\\t'" if kind == "TSV" else ""
            out = p.with_name(p.name.split(".")[0] + ".jsonl")
            raise bad(
                str(p),
                None,
                f"a {kind} file: the labs read JSON Lines or JSON; convert it with `python -c "
                f"\"import datasets; datasets.load_dataset('{builder}', data_files='{p}'{extra}, "
                f"split='train').to_json('{out}')\"`",
            )


def decode(raw: bytes, path: str) -> str:
    """UTF-8 text, with or without a byte-order mark; any other encoding is one line naming it."""
    raw = raw.removeprefix(codecs.BOM_UTF8)
    for bom, name in BOMS:
        if raw.startswith(bom):
            raise bad(
                path,
                None,
                f"line 1 starts with a {name} byte-order mark: the file is {name} (Windows "
                "PowerShell's `>` writes UTF-16), not UTF-8; convert it with `iconv -f "
                f"{name} -t UTF-8 in.jsonl > out.jsonl` or, in PowerShell, "
                "`Get-Content in.jsonl | Set-Content -Encoding utf8 out.jsonl`",
            )
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise bad(
            path,
            None,
            f"line {line} holds NUL bytes: the file is UTF-16 or UTF-32 without a byte-order "
            "mark, or binary; save it as UTF-8 text",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise bad(
            path,
            None,
            f"line {line}: byte 0x{raw[e.start]:02x} is not UTF-8 (Latin-1 or "
            "Windows-1252?); convert it with "
            "`iconv -f WINDOWS-1252 -t UTF-8 in.jsonl > out.jsonl`",
        ) from None


def json_builder(path: Path) -> list[dict]:
    """`load_dataset("json")` into a throwaway cache, with no progress bars or logs on stderr."""
    bars_off, level = datasets.utils.are_progress_bars_disabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        with tempfile.TemporaryDirectory() as cache, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return datasets.load_dataset(
                "json", data_files=str(path), split="train", cache_dir=cache
            ).to_list()
    finally:
        datasets.logging.set_verbosity(level)
        if not bars_off:
            datasets.enable_progress_bars()


def count_rows(text: str, path: str) -> int:
    """The number of rows, once each is known to be one JSON object (with no key twice): the first
    one that is not is an error naming its row, and its line."""

    def loads(value: str):
        return json.loads(value, object_pairs_hook=unique_keys)

    if text.lstrip().startswith("["):
        try:
            values = loads(text)
        except (ValueError, RecursionError) as e:
            raise bad(
                path, None, f"line {getattr(e, 'lineno', 1)}: {reason(e)}; fix the JSON array"
            ) from None
        for i, value in enumerate(values, 1):
            if not isinstance(value, dict):
                raise bad(
                    path,
                    i,
                    f"a JSON {type(value).__name__}, not an object; write one object per row",
                )
        return len(values)
    row = 0
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip(" \t\r"):  # JSON's own whitespace
            row += 1
            where = f"{row} (line {n})" if n != row else row
            try:
                value = loads(line)
            except (ValueError, RecursionError) as e:
                raise bad(
                    path, where, f"{reason(e)}; write one JSON object per line, or a JSON array"
                ) from None
            if not isinstance(value, dict):
                raise bad(
                    path,
                    where,
                    f"a JSON {type(value).__name__}, not an object; write one per line",
                )
    return row


def unique_keys(pairs: list[tuple]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
    return dict(pairs)


def reason(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e.msg})"
    return "nested too deeply" if isinstance(e, RecursionError) else str(e)


def columns(row: dict, source: str, i: int) -> set[str]:
    """The row's columns that hold a value; a tools column is refused."""
    keys = present(row)
    if keys & TOOL_KEYS:
        raise bad(source, i, f"has {min(keys & TOOL_KEYS)!r}: {NO_TOOLS}")
    return keys


def short(value) -> str:
    """A value as it appears in an error line, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def present(row: dict) -> set[str]:
    """The keys that hold a value: the json builder fills a key that a row lacks with None."""
    return {k for k, v in row.items() if v is not None}


def same_layout(layouts: list[str], source: str) -> None:
    """One format for the whole file: TRL reads the first row's columns and applies them to all."""
    common, n = Counter(layouts).most_common(1)[0]
    for i, layout in enumerate(layouts, 1):
        if layout != common:
            raise bad(
                source,
                i,
                f"is {layout}, but {n} of the {len(layouts)} rows are {common}; "
                "use one format for the whole file",
            )


def no_control_tokens(text: str, source: str, row: int, where: str, special=SPECIAL) -> None:
    """Refuse text holding a special-token string: in a template, it would become that token."""
    for token in special:
        if token in text:
            raise bad(
                source,
                row,
                f"{where} contains {token!r}, a special token: inside the chat template it "
                "would be read as a control token and could forge a turn; remove or rewrite "
                f"it (for example as {token.replace('<|', '< |').replace('|>', '| >')!r})",
            )


def checked_text(value, source: str, row: int, name: str, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise bad(
            source,
            row,
            f"{name!r} must be text, not {type(value).__name__}; use one format per file",
        )
    if not (empty or value.strip()):
        raise bad(source, row, f"{name!r} is empty; write its text or remove the row")
    no_control_tokens(value, source, row, repr(name))
    return value


def turns(value, source: str, row: int, column: str, weights: bool = False) -> list[dict]:
    """Checked role/content turns (ShareGPT's from/value mapped); `weight` kept if `weights`."""
    if not isinstance(value, list) or not value:
        raise bad(source, row, f"{column!r} must be a non-empty list of turns")
    out = []
    for t, turn in enumerate(value, 1):
        where = f"{column} turn {t}"
        if not isinstance(turn, dict):
            raise bad(source, row, f"{where} is not an object with 'role' and 'content'")
        keys = present(turn)
        if keys & TOOL_KEYS or "tool" in (turn.get("role"), turn.get("from")):
            raise bad(source, row, f"{where} is a tool call or a tool result: {NO_TOOLS}")
        if keys & {"from", "value"}:
            known, said, given = {"from", "value", "weight"}, turn.get("value"), turn.get("from")
            role = SHAREGPT.get(given) if isinstance(given, str) else None
            fix = f"from {short(given)}; ShareGPT turns come from 'human', 'gpt' or 'system'"
        else:
            known, said, given = (
                {"role", "content", "weight"},
                turn.get("content"),
                turn.get("role"),
            )
            role = given if isinstance(given, str) and given in ROLES else None
            sharegpt = isinstance(given, str) and given in SHAREGPT
            fix = f"role {short(given)}; use one of {', '.join(ROLES)}" + (
                " (ShareGPT's roles go in 'from'/'value' turns)" if sharegpt else ""
            )
        if role is None:
            raise bad(source, row, f"{where} has bad {fix}")
        if keys - known:
            raise bad(
                source,
                row,
                f"{where} has {short(min(keys - known))}, which these labs do not train; "
                "remove it",
            )
        if not isinstance(said, str):
            what = (
                "no content (null)"
                if said is None
                else "content that is not text (no images or parts)"
            )
            raise bad(source, row, f"{where} ({role}) has {what}; give every turn its text")
        if not said.strip():
            raise bad(
                source,
                row,
                f"{where} ({role}) has empty content; write the {role}'s text or remove the row",
            )
        no_control_tokens(said, source, row, where)
        out.append({"role": role, "content": said})
        if "weight" in keys:
            if not weights or role != "assistant" or turn["weight"] not in (0, 1):
                raise bad(
                    source,
                    row,
                    f"{where} has weight {short(turn['weight'])}; only assistant turns of SFT "
                    "chats take a weight, 0 (not trained) or 1: remove it",
                )
            out[-1]["weight"] = int(turn["weight"])
    return out


# -------------------------------------------------------------------------------------------------
# Chats (SFT)


# --8<-- [start:chats]
def read_chats(path: str) -> list[dict]:
    """SFT rows from a file, checked and normalized by `check_chats`."""
    return check_chats(load_rows(path), path)


def check_chats(rows: list[dict], source: str) -> list[dict]:
    """SFT rows, all in one format, normalized to `{"messages": [...]}` (an assistant turn may keep
    `"weight": 0`), `{"text"}` or `{"prompt", "completion"}` (text), each with `"row"`: its number
    in the file.

    ShareGPT turns become role/content turns. Conversational prompt-completion becomes messages
    whose prompt turns have weight 0: TRL trains only the completion. Raises LabError."""
    if not rows:
        raise bad(source, None, "the file is empty: no rows to train on")
    layouts = [chat_layout(row, source, i) for i, row in enumerate(rows, 1)]
    same_layout(layouts, source)
    out = []
    for i, (row, layout) in enumerate(zip(rows, layouts), 1):
        if layout == "text":
            out.append({"text": checked_text(row["text"], source, i, "text"), "row": i})
        elif layout == "prompt-completion text":
            out.append(
                {
                    "prompt": checked_text(row["prompt"], source, i, "prompt", empty=True),
                    "completion": checked_text(row["completion"], source, i, "completion"),
                    "row": i,
                }
            )
        elif layout == "prompt-completion messages":
            prompt = turns(row["prompt"], source, i, "prompt")
            completion = turns(row["completion"], source, i, "completion", weights=True)
            if any(t["role"] != "assistant" for t in completion):
                raise bad(
                    source,
                    i,
                    "'completion' must hold only assistant turns; move the others into 'prompt'",
                )
            untrained = [t | {"weight": 0} if t["role"] == "assistant" else t for t in prompt]
            out.append({"messages": learnable(untrained + completion, source, i), "row": i})
        else:
            column = layout.split()[-1]
            out.append(
                {
                    "messages": learnable(turns(row[column], source, i, column, True), source, i),
                    "row": i,
                }
            )
    return out


def learnable(chat: list[dict], source: str, i: int) -> list[dict]:
    """A chat with at least one assistant turn to train on."""
    if not any(t["role"] == "assistant" and t.get("weight", 1) for t in chat):
        replies = any(t["role"] == "assistant" for t in chat)
        what = "every assistant turn has weight 0" if replies else "no assistant turn"
        raise bad(source, i, f"{what}: nothing to learn from; add an assistant reply")
    return chat


def chat_layout(row: dict, source: str, i: int) -> str:
    keys = columns(row, source, i)
    if keys & {"chosen", "rejected"}:
        raise bad(
            source,
            i,
            "preference pairs (chosen/rejected) are for reward.py and dpo.py; sft.py trains "
            "chats: messages, conversations, text, or prompt + completion",
        )
    if keys >= {"prompt", "completion", "label"}:
        raise bad(
            source,
            i,
            "unpaired preference (prompt, completion, label) is KTO's format, which these labs "
            "do not train; drop 'label' to train the completions",
        )
    found = [k for k in ("messages", "conversations", "text", "prompt") if k in keys]
    if len(found) > 1:
        raise bad(source, i, f"has both {found[0]!r} and {found[1]!r}; keep one format per row")
    if not found:
        found = ", ".join(map(short, sorted(keys)[:5])) or "none"
        if "instruction" in keys:
            found += "; for Alpaca's instruction/input/output, map them to prompt/completion"
        raise bad(
            source,
            i,
            f"has no column to train on (found {found}); use 'messages', 'conversations', "
            "'text', or 'prompt' + 'completion'",
        )
    if found == ["prompt"]:
        if "completion" not in keys:
            raise bad(
                source,
                i,
                "'prompt' without 'completion' is a prompt-only row (for online methods such as "
                "GRPO); SFT learns the 'completion'",
            )
        kinds = {kind(row[k], source, i, k) for k in ("prompt", "completion")}
        if len(kinds) > 1:
            raise bad(
                source,
                i,
                "'prompt' is text and 'completion' messages, or the other way; make both text or "
                "both messages",
            )
        return f"prompt-completion {kinds.pop()}"
    return {"messages": "messages", "conversations": "ShareGPT conversations", "text": "text"}[
        found[0]
    ]


def kind(value, source: str = "", row: int = 0, name: str = "") -> str:
    """ "messages" (a list of turns) or "text"; with `name`, anything else is refused."""
    if name and not isinstance(value, (list, str)):
        raise bad(
            source, row, f"{name!r} is a JSON {type(value).__name__}; give text or a list of turns"
        )
    return "messages" if isinstance(value, list) else "text"


# --8<-- [end:chats]


def hub_chats(name: str, n: int) -> list[dict]:
    """The first `n` rows of a Hub chat dataset (`trl-lib/Capybara`), checked like a file's."""
    try:
        ds = datasets.load_dataset(name, split="train")
    except Exception as e:  # datasets raises several types when offline
        raise LabError(
            f"cannot load dataset {name!r} from the Hub (offline?): {type(e).__name__}"
        ) from None
    return check_chats(ds.select(range(min(n, len(ds)))).to_list(), name)


# -------------------------------------------------------------------------------------------------
# Preference pairs (reward model, DPO)


# --8<-- [start:pairs]
def read_pairs(path: str) -> list[dict]:
    """Preference pairs from a file, checked and normalized by `check_pairs`."""
    return check_pairs(load_rows(path), path)


def check_pairs(rows: list[dict], source: str) -> list[dict]:
    """Pairs, all in one format, normalized to TRL's explicit-prompt preference rows
    `{"prompt", "chosen", "rejected", "row"}`: all text, or all messages with a prompt that ends in
    a user turn and replies that start with the assistant's. Raises LabError."""
    if not rows:
        raise bad(source, None, "the file is empty: no pairs to train on")
    layouts = [pair_layout(row, source, i) for i, row in enumerate(rows, 1)]
    same_layout(layouts, source)
    out = [pair(row, layout, source, i) for i, (row, layout) in enumerate(zip(rows, layouts), 1)]
    if all(r["chosen"] == r["rejected"] for r in out):
        raise bad(
            source,
            1,
            "chosen is identical to rejected in every pair: there is no preference to learn "
            "(the DPO and reward losses would sit at ln 2 = 0.693 with zero gradient); "
            "put the preferred reply in 'chosen' and the other one in 'rejected'",
        )
    return out


def pair_layout(row: dict, source: str, i: int) -> str:
    keys = columns(row, source, i)
    if "label" in keys and "completion" in keys:
        raise bad(
            source,
            i,
            "unpaired preference (prompt, completion, label) is KTO's format, which these labs "
            "do not train; pair each prompt's good and bad completions as chosen and rejected",
        )
    if keys & {"messages", "conversations", "text", "completion"} and not keys & {
        "chosen",
        "rejected",
    }:
        raise bad(
            source,
            i,
            "chat rows, not preference pairs: train them with sft.py; reward.py and dpo.py "
            "need 'chosen' and 'rejected'",
        )
    for key in ("chosen", "rejected"):
        if key not in keys:
            raise bad(
                source,
                i,
                f"missing {key!r}; every pair needs 'chosen' and 'rejected' (and may have "
                "'prompt')",
            )
    kinds = {kind(row[k], source, i, k) for k in ("chosen", "rejected")}
    if len(kinds) > 1:
        raise bad(
            source,
            i,
            "'chosen' is text and 'rejected' messages, or the other way; make both text or "
            "both messages",
        )
    replies = kinds.pop()
    if "prompt" in keys and kind(row["prompt"], source, i, "prompt") != replies:
        if replies == "text":
            raise bad(
                source,
                i,
                "'prompt' is messages but 'chosen' and 'rejected' are text; make all three "
                "messages",
            )
        return "messages with a text 'prompt' (H4's layout)"
    prompt = row.get("prompt") or ""
    if replies == "text" and isinstance(prompt, str) and HH_START.match(prompt + row["chosen"]):
        return "Anthropic HH text"
    return f"{replies} {'with' if 'prompt' in keys else 'without'} a 'prompt'"


def pair(row: dict, layout: str, source: str, i: int) -> dict:
    """One normalized pair; an implicit prompt is the replies' shared start (`extract_prompt`)."""
    if layout.startswith("messages"):
        explicit = layout == "messages with a 'prompt'"
        p = {
            k: turns(row[k], source, i, k)
            for k in ("prompt", "chosen", "rejected")[0 if explicit else 1 :]
        }
        # implicit; H4's text prompt only repeats the conversations' last user turn
        if "prompt" not in p:
            p = extract_prompt(p)
    else:
        prompt = checked_text(row.get("prompt") or "", source, i, "prompt", empty=True)
        chosen, rejected = (
            prompt + checked_text(row[k], source, i, k) for k in ("chosen", "rejected")
        )
        if layout == "Anthropic HH text":
            p = extract_prompt(
                {"chosen": hh_turns(chosen, source, i), "rejected": hh_turns(rejected, source, i)}
            )
        elif row.get("prompt") is None:
            p = extract_prompt({"chosen": chosen, "rejected": rejected})
            # TRL moves a space back, even before the text's start
            if p["prompt"] + p["chosen"] != chosen:
                p = {"prompt": "", "chosen": chosen, "rejected": rejected}
        else:
            p = {"prompt": prompt, "chosen": row["chosen"], "rejected": row["rejected"]}
    if isinstance(p["chosen"], list):
        if not p["prompt"] or p["prompt"][-1]["role"] != "user":
            raise bad(
                source,
                i,
                "the prompt (the turns before the replies) must end with a user turn; give chosen "
                "and rejected the same conversation before their replies",
            )
        if p["chosen"][0]["role"] != "assistant" or p["rejected"][0]["role"] != "assistant":
            raise bad(source, i, "'chosen' and 'rejected' must start with the assistant's reply")
    return {**p, "row": i}


def hh_turns(text: str, source: str, i: int) -> list[dict]:
    """Anthropic HH text, `\\n\\nHuman: ...\\n\\nAssistant: ...`, as user and assistant turns."""
    parts = HH_TURN.split(text.lstrip("\n "))
    if parts[0].strip():
        raise bad(
            source,
            i,
            "Anthropic HH text must start with 'Human:'; give chosen and rejected the whole "
            "conversation, from its first 'Human:' turn",
        )
    said = [
        {"role": "user" if who == "Human" else "assistant", "content": words.strip()}
        for who, words in zip(parts[1::2], parts[2::2])
    ]
    return turns(said, source, i, "Anthropic HH text")


# --8<-- [end:pairs]


# -------------------------------------------------------------------------------------------------
# What the trainer will really train


@dataclass
class Fit:
    """The rows a trainer keeps, those it leaves out (reason → row numbers) and those it cuts."""

    rows: list[dict] = field(default_factory=list)
    dropped: dict[str, list[int]] = field(default_factory=dict)
    truncated: list[int] = field(default_factory=list)

    def drop(self, reason: str, row: int) -> None:
        self.dropped.setdefault(reason, []).append(row)

    def summary(self, split: str) -> str | None:
        """`split` rows used, left out (why, which) and cut; None when every row is used whole."""
        n = sum(map(len, self.dropped.values()))
        if not n and not self.truncated:
            return None
        parts = [f"{len(rows)} {why} ({numbers(rows)})" for why, rows in self.dropped.items()]
        if self.truncated:
            parts.append(f"{len(self.truncated)} cut at max_length ({numbers(self.truncated)})")
        return f"{split}: {len(self.rows)} of {len(self.rows) + n} rows used; " + ", ".join(parts)


def numbers(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
    return f"row{'s' if len(rows) > 1 else ''} {shown}"


def warn(source: str, **fits: Fit) -> None:
    """One line on stderr, `<lab>: warning: <file>: ...`, per split with rows left out or cut."""
    parts = [s for split, fit in fits.items() if (s := fit.summary(split.replace("_", "-")))]
    if parts:
        print(f"{Path(sys.argv[0]).stem}: warning: {source}: {'; '.join(parts)}", file=sys.stderr)


def enough(fit: Fit, source: str, split: str, fixes: dict[str, str]) -> Fit:
    """Stop unless at least half of the split's rows are used: else it trains on something else."""
    n = sum(map(len, fit.dropped.values()))
    if not fit.rows and not n:
        raise bad(source, None, f"no {split} rows")
    if not fit.rows or 2 * n > n + len(fit.rows):
        why, rows = max(fit.dropped.items(), key=lambda kv: len(kv[1]))
        none = "none" if not fit.rows else f"only {len(fit.rows)}"
        raise bad(
            source,
            rows[0],
            f"{none} of the {n + len(fit.rows)} {split} rows can be used "
            f"({len(rows)} {why}); {fixes[why]}",
        )
    return fit


def special_tokens(rows: list[dict], tokenizer, source: str) -> None:
    """Text is also checked against the tokenizer's special tokens (a Hub model may have more)."""
    added = [t.content for t in tokenizer.added_tokens_decoder.values() if t.special]
    special = sorted({t for t in [*tokenizer.all_special_tokens, *added] if t})
    for row in rows:
        for key in ("messages", "text", "prompt", "completion", "chosen", "rejected"):
            value = row.get(key)
            for text in [value] if isinstance(value, str) else [t["content"] for t in value or []]:
                no_control_tokens(text, source, row["row"], repr(key), special)


# --8<-- [start:fit]
def fit_chats(tokenizer, max_length: int, rows: list[dict], source: str) -> Fit:
    """The chats SFTTrainer trains: cut at `max_length`, dropped if no trained token is left."""
    special_tokens(rows, tokenizer, source)
    fit, why = Fit(), f"with no trained token in the first {max_length}"
    for row in rows:
        mask = chat_row(tokenizer, row)["assistant_masks"]
        if 1 not in mask[:max_length]:
            fit.drop(why, row["row"])
            continue
        fit.rows.append(row)
        if len(mask) > max_length:
            fit.truncated.append(row["row"])
    return enough(
        fit,
        source,
        "training",
        {
            why: "shorten what comes before the reply (the system prompt, "
            "earlier turns), or use a model with a longer context"
        },
    )


def fit_pairs(
    tokenizer,
    rows: list[dict],
    max_length: int,
    trainer: str,
    source: str,
    split: str,
    context: int | None = None,
) -> Fit:
    """The pairs `trainer` ("reward" or "dpo") uses. RewardTrainer drops a pair longer than
    `max_length`; DPOTrainer drops one whose prompt alone fills it and cuts the others. A pair with
    chosen = rejected teaches nothing (its loss has no gradient), so it is left out too. `context`
    (the model's, in tokens) only words the fix: --max_length cannot grow past it."""
    special_tokens(rows, tokenizer, source)
    fit = Fit()
    same, long = (
        "with chosen = rejected",
        (
            f"longer than {max_length} tokens"
            if trainer == "reward"
            else f"with a prompt of {max_length} tokens or more"
        ),
    )
    for row in rows:
        prompt, chosen, rejected = pair_lengths(tokenizer, row)
        if row["chosen"] == row["rejected"]:
            fit.drop(same, row["row"])
        elif (
            (max(chosen, rejected) > max_length) if trainer == "reward" else (prompt >= max_length)
        ):
            fit.drop(long, row["row"])
        else:
            fit.rows.append(row)
            if max(chosen, rejected) > max_length:
                fit.truncated.append(row["row"])
    return enough(
        fit,
        source,
        split,
        {
            same: "put the preferred reply in 'chosen' and the other in 'rejected'",
            long: (
                "shorten them, or use a model with a longer context (--max_length is already "
                f"this model's {context} tokens)"
                if context is not None and max_length >= context
                else "shorten them, or raise --max_length (up to the model's context)"
            ),
        },
    )


# --8<-- [end:fit]


def model_context(model: str):
    """A model's tokenizer, readied as the labs ready it (our chat template and special tokens),
    and its context length in tokens, read without loading the weights (no progress bar, no load
    report)."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        tokenizer, config = AutoTokenizer.from_pretrained(model), AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as e:
        raise LabError(
            f"cannot read the tokenizer of {model!r} (offline?): {str(e).splitlines()[0]}"
        ) from None
    return ready_tokenizer(tokenizer), getattr(
        config, "n_positions", None
    ) or config.max_position_embeddings


def fit_chats_at(model: str, rows: list[dict], source: str) -> list[dict]:
    """The chats SFTTrainer trains at `model`'s context length (`fit_chats`); one warning line for
    the rows it would leave out or cut."""
    fit = fit_chats(*model_context(model), rows, source)
    warn(source, training=fit)
    return fit.rows


def fit_splits(
    model: str,
    train: list[dict],
    heldout: list[dict],
    max_length: int,
    trainer: str,
    source: str,
    steps: tuple[int, float, int] | None = None,
) -> tuple[list[dict], list[dict]]:
    """The training and held-out pairs `trainer` will use (`fit_pairs`), then (with `steps` = batch
    size, epochs, logging steps) enough of them for a logged step; one warning line for the rows
    left out."""
    tokenizer, context = model_context(model)
    if max_length > context:
        raise LabError(
            f"--max_length {max_length} is longer than the model's context ({context} tokens)"
        )
    fits = {
        split: fit_pairs(
            tokenizer, rows, max_length, trainer, source, split.replace("_", "-"), context
        )
        for split, rows in (("training", train), ("held_out", heldout))
    }
    if steps:
        logged_steps(len(fits["training"].rows), *steps, source)
    warn(source, **fits)
    return fits["training"].rows, fits["held_out"].rows


def token_ids(tokenizer, row: dict, key: str | None) -> list[int]:
    """The token ids TRL's preference trainers make of the prompt (key None) or prompt + `key`."""
    if isinstance(row["prompt"], list):
        chat = row["prompt"] + (row[key] if key else [])
        enc = tokenizer.apply_chat_template(
            chat, add_generation_prompt=key is None, return_dict=True
        )
        return enc["input_ids"]
    text = pair_text(tokenizer, row, key) if key else row["prompt"]
    return tokenizer(text)["input_ids"] if text else []


def pair_lengths(tokenizer, row: dict) -> tuple[int, int, int]:
    """Token counts of the prompt, prompt + chosen and prompt + rejected, as TRL tokenizes them."""
    return tuple(len(token_ids(tokenizer, row, key)) for key in (None, "chosen", "rejected"))


def pair_text(tokenizer, row: dict, key: str) -> str:
    """Prompt + `key` reply as the one string the reward model reads: through the chat template, or
    text with EOS added (TRL adds it to standard-format replies)."""
    if isinstance(row[key], list):
        return tokenizer.apply_chat_template(row.get("prompt", []) + row[key], tokenize=False)
    eos = tokenizer.eos_token
    return row.get("prompt", "") + row[key] + ("" if row[key].endswith(eos) else eos)


def logged_steps(
    n_rows: int, batch_size: int, epochs: float, logging_steps: int, source: str
) -> None:
    """Stop unless `n_rows` make a logged step: the Trainer runs ceil(epochs · ceil(n / batch))."""
    steps = math.ceil(epochs * math.ceil(n_rows / batch_size))
    if steps < logging_steps:
        need = (math.floor((logging_steps - 1) / epochs)) * batch_size + 1
        small = f"--batch_size 1 --epochs {math.ceil(logging_steps / n_rows)}"
        raise bad(
            source,
            None,
            f"{n_rows} training pairs make {steps} optimizer step(s) at --batch_size "
            f"{batch_size} and --epochs {epochs:g}, but the first loss is logged at step "
            f"{logging_steps}; give at least {need} training pairs, or pass {small}",
        )
