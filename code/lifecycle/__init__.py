"""The package behind every lab: a synthetic world, a tokenizer, tiny GPT-2s and their checks."""

__version__ = "0.1.0"
