"""The shared package behind every lab: a synthetic world, a tokenizer, tiny GPT-2 models and their checks."""

__version__ = "0.1.0"
