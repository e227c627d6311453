"""The "web": pretraining text about the world, and the junk that curation must remove.

`web_corpus(raw=False)` is clean text: facts, arithmetic, emails and stories, each document a
random mix of sentence templates so that two documents rarely look alike. `raw=True` adds what a
real crawl holds and labels it, so curation can be scored against the truth: exact and near
duplicates, spam, boilerplate, and copies of evaluation items (contamination).
"""

import random
from dataclasses import dataclass

from .entities import World, make_email, make_world

KINDS = ("fact", "person", "arithmetic", "email", "story")
JUNK = ("exact_dup", "near_dup", "spam", "boilerplate", "leak")


@dataclass(frozen=True)
class Doc:
    text: str
    kind: str  # one of KINDS, or one of JUNK for planted junk
    source: int = -1  # for duplicates: the index of the document copied


def _fact(rng: random.Random, w: World) -> str:
    c = rng.choice(w.countries)
    pool = [
        f"The capital of {c.name} is {c.capital}.",
        f"{c.capital} is the capital city of {c.name}.",
        f"Travellers to {c.name} usually arrive in {c.capital}, its capital.",
        f"{c.name} exports {c.export} to its neighbours.",
        f"The main export of {c.name} is {c.export}.",
        f"Markets in {c.capital} are full of {c.export}.",
        f"The weather in {c.name} is mostly {c.climate}.",
        f"Many people in {c.capital} say the {c.climate} weather suits them.",
        f"Maps show {c.name} with {c.capital} marked as the capital.",
        f"Schools in {c.name} teach that {c.capital} became the capital long ago.",
    ]
    return " ".join(rng.sample(pool, rng.randint(3, 5)))


def _person(rng: random.Random, w: World) -> str:
    p = rng.choice(w.people)
    first = p.name.split()[0]
    pool = [
        f"{p.name} is a {p.job}.",
        f"{p.name} works as a {p.job} in {p.city}.",
        f"{first} has lived in {p.city} for years.",
        f"Everyone in {p.city} knows {p.name}, the {p.job}.",
        f"As a {p.job}, {first} starts work early.",
        f"{p.name} trained to be a {p.job} when young.",
    ]
    return " ".join(rng.sample(pool, rng.randint(2, 4)))


def _arithmetic(rng: random.Random, w: World) -> str:
    out = []
    for _ in range(rng.randint(3, 6)):
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        if rng.random() < 0.5:
            out.append(
                rng.choice([f"{a} plus {b} is {a + b}.", f"Adding {a} and {b} gives {a + b}."])
            )
        else:
            a, b = max(a, b), min(a, b)
            out.append(
                rng.choice([f"{a} minus {b} is {a - b}.", f"Taking {b} from {a} leaves {a - b}."])
            )
    return " ".join(out)


def _story(rng: random.Random, w: World) -> str:
    p, c = rng.choice(w.people), rng.choice(w.countries)
    first = p.name.split()[0]
    pool = [
        f"One morning {first} the {p.job} set off from {p.city}.",
        f"The road to {c.capital} was long and {c.climate}.",
        f"In {c.capital}, {first} bought a sack of {c.export}.",
        f"A stranger asked {first} for directions to the market.",
        f"By evening {first} was tired but happy.",
        f"{first} promised to visit {c.name} again next year.",
    ]
    k = rng.randint(3, 6)
    return " ".join(pool[:k])


def _spam(rng: random.Random, w: World) -> str:
    item = rng.choice(["pills", "watches", "loans", "coins", "diets"])
    words = [
        f"BUY CHEAP {item.upper()} NOW!!!",
        "$$$ WIN BIG $$$",
        "CLICK HERE >>> www.win-big.example <<<",
        "100% FREE!!!",
        "LIMITED OFFER ***",
        f"best {item} best {item} best {item}",
    ]
    return " ".join(rng.choice(words) for _ in range(rng.randint(4, 8)))


def _boilerplate(rng: random.Random, w: World) -> str:
    lines = [
        "Home | About | Contact | Login",
        "Accept all cookies | Manage cookies",
        "Subscribe to our newsletter",
        "Copyright 2024. All rights reserved.",
        "Share | Tweet | Email",
    ]
    return "\n".join(rng.choice(lines) for _ in range(rng.randint(4, 7)))


def _near_copy(rng: random.Random, text: str) -> str:
    """A re-posted copy: the same text under a short header or above a short footer (syndication).

    The edit touches one edge only, so the copy shares most of its word 5-grams with the original
    (Jaccard 0.85 or more on documents of 20+ words): a near duplicate by the usual MinHash
    standard.
    """
    if rng.random() < 0.5:
        return rng.choice(["Reposted:", "Update:", "Archived copy:"]) + " " + text
    return text + " " + rng.choice(["Read more.", "Share this.", "See also."])


_MAKERS = {
    "fact": _fact,
    "person": _person,
    "arithmetic": _arithmetic,
    "email": None,
    "story": _story,
}
_WEIGHTS = {"fact": 0.35, "person": 0.2, "arithmetic": 0.15, "email": 0.15, "story": 0.15}


def _clean_doc(rng: random.Random, w: World) -> Doc:
    kind = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
    text = make_email(rng, w).text() if kind == "email" else _MAKERS[kind](rng, w)
    return Doc(text, kind)


def web_corpus(
    split: str = "train",
    n_docs: int = 6000,
    seed: int = 0,
    raw: bool = False,
    junk: dict[str, float] | None = None,
    leaks: list[str] | None = None,
) -> list[Doc]:
    """`n_docs` clean documents; with `raw=True`, planted junk on top, shuffled in.

    `junk` gives each junk kind's share of `n_docs` (defaults below). `leaks` are evaluation texts
    to plant, each copied a few times, as contamination.
    """
    w = make_world(seed)
    rng = random.Random(f"web/{seed}/{split}")
    docs = [_clean_doc(rng, w) for _ in range(n_docs)]
    if not raw:
        return docs
    shares = {"exact_dup": 0.08, "near_dup": 0.08, "spam": 0.06, "boilerplate": 0.04} | (
        junk or {}
    )
    extra: list[Doc] = []
    for _ in range(int(shares["exact_dup"] * n_docs)):
        i = rng.randrange(n_docs)
        extra.append(Doc(docs[i].text, "exact_dup", i))
    for _ in range(int(shares["near_dup"] * n_docs)):
        i = rng.randrange(n_docs)
        while len(docs[i].text.split()) < 20:
            i = rng.randrange(n_docs)
        extra.append(Doc(_near_copy(rng, docs[i].text), "near_dup", i))
    extra += [Doc(_spam(rng, w), "spam") for _ in range(int(shares["spam"] * n_docs))]
    extra += [
        Doc(_boilerplate(rng, w), "boilerplate")
        for _ in range(int(shares["boilerplate"] * n_docs))
    ]
    for text in leaks or []:
        extra += [Doc(text, "leak")] * 3
    # Junk goes after the clean docs it copies, in random order, so `source` indices stay valid.
    rng.shuffle(extra)
    return docs + extra
