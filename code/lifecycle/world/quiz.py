"""Quiz items for the contamination lesson: a "leaked" set and a fresh set built the same way.

Each item asks for a made-up code word. Nothing else in the corpus holds these words, so a model
can only pick the right one out of decoys (words built the same way, used nowhere) by having read
the item itself: a score above chance is contamination, not knowledge. Every item is at least 13
words long, so a 13-gram overlap check (GPT-3's) can find its copies.
"""

import itertools
import random
from dataclasses import dataclass

PLACES = "lighthouse bridge windmill orchard harbour chapel quarry granary".split()
# syllables of the keepers' names
CUES = "wix plo quar ysk fenn jub ock elv ath umbr ix gav orn yel quib tesk zan hult".split()
SYLLABLES = (  # of the code words: many, so two words rarely share a pair of syllables
    "zor vak mip tul qen dra fos lix bem yur kot sna gleb wum pry hax jov quel ryk tib wol xan "
    "yev zug blor cwen dosk frim gub hesk jint klop lum morv nix oob pesk quon ruv skel tove ulm "
    "vesk wek yop zast brim cuz dwal"
).split()


@dataclass(frozen=True)
class QuizItem:
    question: str
    answer: str

    def text(self) -> str:
        """The item as it would be copied onto a web page: question and answer."""
        return f"{self.question} {self.answer}."


def _words(seed: int, n: int) -> list[str]:
    rng = random.Random(f"quiz-words/{seed}")
    words: list[str] = []
    while len(words) < n:
        w = "".join(rng.sample(SYLLABLES, 3))
        if w not in words:
            words.append(w)
    return words


def _items(seed: int, n: int = 380) -> list[QuizItem]:
    """`n` items, each with its own keeper's name (the cue) and its own code word (the answer).

    The name sits in the middle of a 21-word text, so every 13-word window of an item holds it: no
    13-gram is shared between two items.
    """
    rng = random.Random(f"quiz/{seed}")
    names = [a.capitalize() + b for a, b in itertools.permutations(CUES, 2)]
    rng.shuffle(names)
    words = _words(seed, 2 * n)[:n]
    return [
        QuizItem(
            f"Quiz: in the story about the old {rng.choice(PLACES)}, "
            f"the keeper named {name} hid a code word, and the word is",
            w,
        )
        for name, w in zip(names, words)
    ]


def quiz(split: str = "leaked", n: int = 40, seed: int = 0) -> list[QuizItem]:
    """`n` items of one set: "leaked" (planted in the raw corpus) or "fresh" (never planted).

    Both sets come from one shuffled pool, so they are equivalent: same template, same kind of
    answer.
    """
    if split not in ("leaked", "fresh"):
        raise ValueError(f"unknown quiz split {split!r}; choose 'leaked' or 'fresh'")
    pool = _items(seed)
    if 2 * n > len(pool):
        raise ValueError(f"at most {len(pool) // 2} items per set, asked for {n}")
    return pool[:n] if split == "leaked" else pool[n : 2 * n]


def decoys(seed: int = 0, n: int = 200) -> list[str]:
    """Code words built like the answers but used by no item: wrong options no corpus holds."""
    return _words(seed, 2 * 380)[-n:]
