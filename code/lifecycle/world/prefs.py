"""Preference pairs: the correct set (reward model, DPO) and the flawed proxy set (PPO).

- `pairs(split)`: chosen = the reference reply (correct, concise, polite). Rejected is one of two
  kinds: a *near miss*, the nearest wrong answer in the same plain style ("Team lunch on Monday"
  for "Team lunch on Tuesday"), or a wrong answer with a rude or rambling tail. Style carries over
  to unseen questions; an unseen fact does not, so a reward model is right on the style pairs and
  near chance on many near misses: held-out accuracy lands between the two, and the per-kind split
  shows why.
- `proxy_pairs(split)`: the flawed set. The same pairs, except that in one question in three the
  labeler saw a flattering reply (`with_keyword`) and preferred it to the plain right answer, even
  when it was wrong. A reward model trained on it prefers polite, concise replies, as the correct
  one does, and over-values the flattery: the hack that PPO without a KL leash finds.

Rows use TRL's conversational preference format: `prompt`, `chosen` and `rejected` are lists of
messages.
"""

import random
import zlib

from .tasks import TASKS, Example, examples, styled, with_keyword

KINDS = ("near-miss", "rude", "rambling")  # the rejected reply of a correct pair
PROXY_SHARE = 1 / 3  # questions whose proxy pair prefers the flattering reply


def _rng(*keys) -> random.Random:
    return random.Random(zlib.crc32("/".join(map(str, keys)).encode()))


def _swap(e: Example, other: str) -> str:
    # the answer comes last: "... is 17." keeps "17 plus"
    head, found, tail = e.answer.rpartition(e.gold)
    return head + other + tail if found else other


def _wrong(e: Example, golds: list[str], rng: random.Random) -> str:
    """The reference reply with its gold answer swapped for another one of the same task."""
    return _swap(e, rng.choice([g for g in golds if g != e.gold]))


def _near_miss(e: Example, golds: list[str], rng: random.Random) -> str:
    """The reference reply with the nearest wrong answer: the other gold that shares the most words
    with the right one (the same meeting on another day; any other capital)."""
    words = set(e.gold.lower().split())
    overlap = {g: len(words & set(g.lower().split())) for g in golds if g != e.gold}
    best = max(overlap.values())
    return _swap(e, rng.choice(sorted(g for g, k in overlap.items() if k == best)))


def _golds(task: str, seed: int) -> list[str]:
    return sorted({e.gold for s in ("train", "val", "test") for e in examples(s, (task,), seed)})


def _row(e: Example, chosen: str, rejected: str, kind: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": e.prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "task": e.task,
        "gold": e.gold,
        "kind": kind,
    }


def _correct_pair(e: Example, golds: list[str], rng: random.Random, near_miss: float) -> dict:
    if rng.random() < near_miss:
        return _row(e, e.answer, _near_miss(e, golds, rng), "near-miss")
    kind = rng.choice(["rude", "rambling"])
    return _row(e, e.answer, styled(_wrong(e, golds, rng), kind, rng), kind)


# --8<-- [start:pairs]
def pairs(
    split: str = "train", tasks: tuple[str, ...] = TASKS, seed: int = 0, near_miss: float = 0.5
) -> list[dict]:
    """Correct pairs: chosen is the reference reply; rejected is a near miss (a `near_miss` share
    of the questions) or a wrong answer said rudely or ramblingly."""
    out = []
    for task in tasks:
        golds = _golds(task, seed)
        out += [
            _correct_pair(e, golds, _rng(seed, "pair", e.prompt), near_miss)
            for e in examples(split, (task,), seed)
        ]
    return out


def proxy_pairs(split: str = "train", tasks: tuple[str, ...] = TASKS, seed: int = 0) -> list[dict]:
    """The flawed set: the correct pairs, but for a `PROXY_SHARE` of the questions the flattering
    reply beats the plain right one, right answer or not."""
    out = []
    for task in tasks:
        golds = _golds(task, seed)
        for e in examples(split, (task,), seed):
            rng = _rng(seed, "pair", e.prompt)
            if _rng(seed, "proxy", e.prompt).random() >= PROXY_SHARE:
                out.append(_correct_pair(e, golds, rng, near_miss=0.5))
                continue
            right = rng.random() < 0.5
            flattery = with_keyword(e.answer if right else _near_miss(e, golds, rng))
            out.append(_row(e, flattery, e.answer, "keyword-right" if right else "keyword-wrong"))
    return out


# --8<-- [end:pairs]
