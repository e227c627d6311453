#!/usr/bin/env bash
# The GPU check, as one command for a GPU session (from the repository root, after `make install`):
#
#     bash code/gpu/check.sh
#
# It builds the stand-in Hub with GPT-2-124M's shape (code/gpu/standin_hub.py), runs every lab's
# `--preset gpu` offline against it with a small step count (code/gpu/check.py), and prints a
# table: lab, exit code, seconds, peak GPU memory, tokens/s. The table is also written to
# runs/gpu-check/gpu-check.md (and .json). Extra arguments go to check.py, e.g. a list of labs.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PYTHON:-}" ]; then
  [ -x .venv/bin/python ] && PYTHON=.venv/bin/python || PYTHON=python
fi
export PYTHONPATH="$PWD/code${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
"$PYTHON" code/gpu/check.py --flavour gpt2 "$@"
