"""The notebooks' first cell, "GPU session", run against the stand-in Hub: all but its pip install.

code/site/hooks.py makes each lab's notebook from the script: the GPU-session cell (install the
pinned packages, find the repository, select `--preset gpu`), then the script cell by cell. This
test runs one lab's notebook as Jupyter's "Run all" would, in one namespace, with the install line
removed and only step and size overrides added; every lab's GPU cell is the same text apart from
the lab's name, so one run covers them. Cost: one pretrain run at the gpu preset, about 9 CPU
seconds.
"""

import json
import re
import subprocess
import sys

import nbformat

import hooks
from conftest import LABS, ROOT
from gpu.conftest import check

PIP = re.compile(
    r"subprocess\.check_call\(\[sys\.executable, \"-m\", \"pip\", \"install\".*?\]\)\n", re.S
)


def test_gpu_cell_is_one_template():
    cells = {
        lab: hooks.gpu_cell(lab)
        .replace(f'"{lab}.py"', '"LAB.py"')
        .replace(f"runs/{lab}-gpu", "runs/LAB-gpu")
        for lab in check.lab_names()
    }
    assert len(set(cells.values())) == 1
    assert len(PIP.findall(next(iter(cells.values())))) == 1  # the one line this test leaves out


def test_notebook_runs_at_gpu_preset_against_the_standin(hub_env, tmp_path):
    lab = "pretrain"
    nb = nbformat.reads(hooks.notebook(LABS / f"{lab}.py", lab), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert '--preset", "gpu"' in code[0]
    first = PIP.sub("", code[0])
    out = tmp_path / "out"
    # after --preset gpu --seed 0
    overrides = [*check.arguments(lab, cpu=True)[4:], "--output_dir", str(out)]
    program = "\n\n".join([first, f"sys.argv += {overrides!r}", *code[1:]])
    proc = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT / "docs",
        env=hub_env | {"PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    # the stand-in gpt2's tokenizer, found through the Hub cache
    assert metrics["vocab_size"] == 50257
