"""A seeded, made-up world that every stage of the lifecycle trains and is measured on.

- `entities`: countries, capitals, exports and people (the facts).
- `web`: the "web" pretraining corpus, with planted duplicates, spam, boilerplate and leaked eval
  items.
- `tasks`: instruction tasks with checkable gold answers, and the assistant-format checker.
- `prefs`: preference pairs (correct, and the flawed proxy set that PPO games).
"""

from .entities import World, make_world
from .prefs import pairs, proxy_pairs
from .tasks import TASKS, Example, check_format, check_gold, examples
from .web import Doc, web_corpus

__all__ = [
    "World",
    "make_world",
    "Doc",
    "web_corpus",
    "TASKS",
    "Example",
    "examples",
    "check_format",
    "check_gold",
]
__all__ += ["pairs", "proxy_pairs"]
