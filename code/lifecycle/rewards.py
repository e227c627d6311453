"""Verifiable rewards: programs that check a reply, for the world's questions and for GSM8K, and
the scores the GRPO lab reads with them.

A check is only as good as what it checks. `correct` reads the reply's *final* answer, as GSM8K
graders read the last number; `anywhere=True` is the world's `check_gold`, which accepts the gold
answer anywhere in the reply, and which a policy trained against it learns to game (the GRPO lab
measures both).
"""

import re

from datasets import load_dataset

from .cli import LabError
from .evaluation import chat_prompts, complete, sample
from .world import Example, check_format, check_gold
from .world.tasks import END, reply_text

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


# --8<-- [start:checks]
def formatted(completion: str, task: str) -> bool:
    """World replies: one line, ended by the end-of-turn token. GSM8K's worked answers may span
    lines."""
    if task == "gsm8k":
        return bool(reply_text(completion)) and END in completion
    return check_format(completion)


def final_answer(completion: str, gold: str) -> str:
    """The reply's final answer, in the gold's shape: its last number when the gold is a number
    (GSM8K's convention), else its last words, as many as the gold has."""
    reply = reply_text(completion)
    if NUMBER.fullmatch(gold):
        found = NUMBER.findall(reply)
        return found[-1].replace(",", "") if found else ""
    return " ".join(re.sub(r"[^\w\s]", " ", reply).split()[-len(gold.split()) :])


def correct(completion: str, gold: str, task: str, anywhere: bool = False) -> bool:
    """A reply in format whose final answer is the gold; with `anywhere=True`, one that contains
    the gold."""
    if anywhere:
        return formatted(completion, task) and check_gold(completion, gold)
    return formatted(completion, task) and final_answer(completion, gold).lower() == gold.lower()


# --8<-- [end:checks]


def gsm8k(name: str, split: str) -> list[Example]:
    """A split of a GSM8K-style Hub dataset (config `main`: `question`, `answer`) as examples whose
    gold is the number after `####` at the end of the worked answer. Offline: one-line LabError."""
    try:
        rows = load_dataset(name, "main", split=split)
    except Exception as e:  # datasets raises several types when offline
        raise LabError(f"cannot load {name} from the Hub (offline?): {type(e).__name__}") from None
    gold = [r["answer"].rsplit("####", 1)[-1].strip().replace(",", "") for r in rows]
    return [Example("gsm8k", r["question"], r["answer"], g, split) for r, g in zip(rows, gold)]


# --8<-- [start:scores]
def greedy_scores(model, tokenizer, exs: list[Example], max_new_tokens: int) -> tuple[dict, list]:
    """Greedy replies: the share in format, the share whose final answer is right (the gold score),
    overall and per task when there are several, and the share the lenient check would pass; and
    the replies."""
    replies = complete(model, tokenizer, chat_prompts(tokenizer, exs), max_new_tokens)
    n, right = len(exs), [correct(r, e.gold, e.task) for r, e in zip(replies, exs)]
    scores = {
        "gold": sum(right) / n,
        "anywhere": sum(correct(r, e.gold, e.task, True) for r, e in zip(replies, exs)) / n,
        "format": sum(formatted(r, e.task) for r, e in zip(replies, exs)) / n,
    }
    tasks = dict.fromkeys(e.task for e in exs)
    if len(tasks) > 1:  # and the gold score of each task ("gold_arithmetic"), in order
        for t in tasks:
            mine = [ok for ok, e in zip(right, exs) if e.task == t]
            scores[f"gold_{t}"] = sum(mine) / len(mine)
    return scores, replies


def sampled_gold(
    model,
    tokenizer,
    exs: list[Example],
    k: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
) -> float:
    """pass@1 as RL papers report it: the share of right replies among `k` sampled per question
    (at the training temperature), averaged over questions. The sampling has its own seed and
    leaves the global random state as it was."""
    texts = sample(
        model,
        tokenizer,
        chat_prompts(tokenizer, exs),
        n=k,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        batch_size=batch_size,
    )
    golds = [e for e in exs for _ in range(k)]  # k replies per question, question-major
    return sum(correct(t, e.gold, e.task) for t, e in zip(texts, golds)) / (k * len(exs))


def set_scores(
    model,
    tokenizer,
    sets: dict[str, list[Example]],
    k: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
    sampled: tuple[str, ...] | None = None,
) -> tuple[dict, list[str]]:
    """`greedy_scores` on each named set and `sampled_gold` on those named in `sampled` (default:
    all), flattened ({"gold_heldout": ..., "sampled_heldout": ...}); and the greedy replies to the
    first set."""
    out, first = {}, None
    for name, exs in sets.items():
        scores, replies = greedy_scores(model, tokenizer, exs, max_new_tokens)
        if sampled is None or name in sampled:
            scores["sampled"] = sampled_gold(
                model, tokenizer, exs, k, max_new_tokens, temperature, seed
            )
        out |= {f"{key}_{name}": v for key, v in scores.items()}
        first = replies if first is None else first
    return out, first


# --8<-- [end:scores]
