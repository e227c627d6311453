"""Where built artifacts live: `$LIFECYCLE_CACHE`, or `.cache/` at the repo root.

Each artifact's folder name carries a fingerprint of the code that made it, so editing the world or
the model code never reuses a stale tokenizer or base model.
"""

import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent.parent


def cache_dir() -> Path:
    path = Path(os.environ.get("LIFECYCLE_CACHE", ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(*files: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for f in sorted(files):
        h.update(f.read_bytes())
    return h.hexdigest()[:10]
