"""Browser and built-site tests (a package, so its conftest never shadows tests/conftest.py)."""
