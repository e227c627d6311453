"""The facts of the world: invented countries, their capitals and exports, and their people.

Names are built from syllables so they exist nowhere else: whatever a model knows about them, it
learned from our corpus.
"""

import random
from dataclasses import dataclass, field
from functools import lru_cache

ONSETS = "b d f g k l m n p r s t v z br dr gr kr pl st tr th sh".split()
VOWELS = "a e i o u ai ea ou".split()
CODAS = ["", "", "n", "r", "s", "l", "m", "th", "nd", "rk"]

EXPORTS = (
    "tea copper wool salt glass rice silk amber cheese paper timber honey iron olives cotton"
).split()
CLIMATES = "cold warm rainy dry windy mild foggy sunny".split()
JOBS = (
    "baker teacher farmer doctor sailor painter miller weaver builder singer tailor potter".split()
)
FIRST = (
    "Ana Bo Cal Dara Eli Fen Gus Hana Ivo Jun Kit Lena Milo Nia Oto Pia Rafe Sol Tamsin Uma Vik "
    "Wren"
).split()


@dataclass(frozen=True)
class Country:
    name: str
    capital: str
    export: str
    climate: str


@dataclass(frozen=True)
class Person:
    name: str
    job: str
    city: str


@dataclass(frozen=True)
class World:
    seed: int
    countries: tuple[Country, ...]
    people: tuple[Person, ...]
    cities: tuple[str, ...] = field(default=())


def _names(rng: random.Random, n: int, taken: set[str], syllables: tuple[int, int]) -> list[str]:
    out = []
    while len(out) < n:
        k = rng.randint(*syllables)
        name = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(k)) + rng.choice(
            CODAS
        )
        name = name.capitalize()
        if name not in taken and 4 <= len(name) <= 10:
            taken.add(name)
            out.append(name)
    return out


@lru_cache(maxsize=8)
def make_world(seed: int = 0, n_countries: int = 64, n_people: int = 80) -> World:
    """The same seed always gives the same world."""
    rng = random.Random(seed)
    taken: set[str] = set()
    names = _names(rng, n_countries, taken, (2, 3))
    capitals = _names(rng, n_countries, taken, (1, 2))
    countries = tuple(
        Country(n, c, rng.choice(EXPORTS), rng.choice(CLIMATES)) for n, c in zip(names, capitals)
    )
    surnames = _names(rng, n_people, taken, (1, 2))
    people = tuple(
        Person(f"{rng.choice(FIRST)} {s}", rng.choice(JOBS), rng.choice(capitals))
        for s in surnames
    )
    return World(seed, countries, people, tuple(capitals))


TOPICS = [
    "budget review",
    "team lunch",
    "server upgrade",
    "quarterly report",
    "office move",
    "safety training",
    "product launch",
    "client visit",
    "holiday schedule",
    "printer repair",
    "hiring plan",
    "design review",
]
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday".split()
TIMES = "9 10 11 noon 2 3 4".split()


@dataclass(frozen=True)
class Email:
    subject: str
    body: str

    def text(self) -> str:
        return f"Subject: {self.subject}\n\n{self.body}"


def make_email(rng: random.Random, world: World) -> Email:
    """A short work email whose one-line summary is its subject."""
    topic, day, time = rng.choice(TOPICS), rng.choice(DAYS), rng.choice(TIMES)
    to, sender = rng.choice(world.people), rng.choice(world.people)
    at = "at noon" if time == "noon" else f"at {time}"
    opener = rng.choice(
        [
            f"The {topic} is on {day} {at}.",
            f"We moved the {topic} to {day} {at}.",
            f"Please note that the {topic} will be on {day} {at}.",
        ]
    )
    extra = rng.choice(
        [
            "Please bring your notes.",
            "Let me know if you cannot come.",
            "The room is on the second floor.",
            f"We will meet in {sender.city}.",
            "Coffee will be ready.",
            "Reply to this email with questions.",
        ]
    )
    body = f"Hi {to.name.split()[0]},\n{opener} {extra}\nThanks,\n{sender.name.split()[0]}"
    return Email(f"{topic.capitalize()} on {day}", body)
