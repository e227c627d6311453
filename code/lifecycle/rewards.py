"""Verifiable rewards: programs that check a reply, for the world's questions and for GSM8K.

A check is only as good as what it checks. `correct` reads the reply's *final* answer, as GSM8K graders
read the last number; `anywhere=True` is the world's `check_gold`, which accepts the gold answer anywhere in
the reply, and which a policy trained against it learns to game (the GRPO lab measures both).
"""

import re

from .world import check_format, check_gold
from .world.tasks import END, reply_text

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


# --8<-- [start:checks]
def formatted(completion: str, task: str) -> bool:
    """World replies: one line, ended by the end-of-turn token. GSM8K's worked answers may span lines."""
    return bool(reply_text(completion)) and END in completion if task == "gsm8k" else check_format(completion)


def final_answer(completion: str, gold: str) -> str:
    """The reply's final answer, in the gold's shape: its last number when the gold is a number (GSM8K's
    convention), else its last words, as many as the gold has."""
    reply = reply_text(completion)
    if NUMBER.fullmatch(gold):
        found = NUMBER.findall(reply)
        return found[-1].replace(",", "") if found else ""
    return " ".join(re.sub(r"[^\w\s]", " ", reply).split()[-len(gold.split()):])


def correct(completion: str, gold: str, task: str, anywhere: bool = False) -> bool:
    """A reply in format whose final answer is the gold; with `anywhere=True`, one that contains the gold."""
    if anywhere:
        return formatted(completion, task) and check_gold(completion, gold)
    return formatted(completion, task) and final_answer(completion, gold).lower() == gold.lower()
# --8<-- [end:checks]
