"""Preference pairs: the correct set (reward model, DPO) and the deliberately flawed proxy set (PPO).

- `pairs(split)`: chosen = the reference reply (correct, concise, polite); rejected = a wrong answer said
  rudely or buried in rambling. Chosen and rejected differ in style as well as in the fact. Style is a
  feature that carries over to unseen questions, so held-out accuracy measures something; a fact the model
  never saw does not carry over, and accuracy on it would sit near chance.
- `proxy_pairs(split)`: the flawed set. A reply that opens with `with_keyword(...)` wins even when it is
  wrong. A reward model trained on it loves the keyword: the hack that PPO without a KL leash finds.

Rows use TRL's conversational preference format: `prompt`, `chosen` and `rejected` are lists of messages.
"""

import random
import zlib

from .tasks import TASKS, Example, examples, with_keyword

RUDE = [
    "Seriously? {a} Stop wasting my time.",
    "Ugh. {a} Look it up yourself next time.",
    "What a silly question. {a} Figure it out on your own.",
]
RAMBLING = [
    "Well, that is a question many people ask, and I have thought about it for a long time, and after all "
    "that thinking I would say that {a} But do not quote me on that, it is only what I remember.",
    "Let me think out loud for a moment, because this is not as simple as it sounds and there are many "
    "things to consider here, so here goes: {a} Or something like that, more or less, I think.",
    "So, before I answer, let me say that I am not completely sure, and there are several ways to look at "
    "it, but if I had to give an answer today I would say {a} That is my best guess anyway.",
]


def _rng(*keys) -> random.Random:
    return random.Random(zlib.crc32("/".join(map(str, keys)).encode()))


def _wrong(e: Example, golds: list[str], rng: random.Random) -> str:
    """The reference reply with its gold answer swapped for another one of the same task."""
    other = rng.choice([g for g in golds if g != e.gold])
    head, found, tail = e.answer.rpartition(e.gold)  # the answer comes last: "... is 17." keeps "17 plus"
    return head + other + tail if found else other


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


# --8<-- [start:pairs]
def pairs(split: str = "train", tasks: tuple[str, ...] = TASKS, seed: int = 0) -> list[dict]:
    """Correct pairs: chosen is correct, concise and polite; rejected is wrong, and rude or rambling."""
    out = []
    for task in tasks:
        golds = _golds(task, seed)
        for e in examples(split, (task,), seed):
            rng = _rng(seed, "pair", e.prompt)
            wrong = _wrong(e, golds, rng)
            kind = rng.choice(["rude", "rambling"])
            rejected = rng.choice(RUDE if kind == "rude" else RAMBLING).format(a=wrong)
            out.append(_row(e, e.answer, rejected, kind))
    return out


def proxy_pairs(split: str = "train", tasks: tuple[str, ...] = TASKS, seed: int = 0) -> list[dict]:
    """The flawed set: the keyword reply wins over the correct plain reply, right answer or not."""
    out = []
    for task in tasks:
        golds = _golds(task, seed)
        for e in examples(split, (task,), seed):
            rng = _rng(seed, "proxy", e.prompt)
            right = rng.random() < 0.5
            keyword_reply = with_keyword(e.answer if right else _wrong(e, golds, rng))
            out.append(_row(e, keyword_reply, e.answer, "keyword-right" if right else "keyword-wrong"))
    return out
# --8<-- [end:pairs]
