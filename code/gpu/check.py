"""Every lab's `--preset gpu`, offline, on the stand-in Hub: exit code, time, memory, tokens/s.

    bash code/gpu/check.sh                                  # GPU: GPT-2-124M's shape, every lab
    python code/gpu/check.py --flavour tiny --cpu pretrain  # CPU: tiny stand-in, small sizes

Each lab runs as a reader runs it, `python code/labs/<lab>.py --preset gpu`, plus only the step
overrides in `STEPS` (and, with `--cpu`, the size overrides in `CPU_SIZES`). The earlier stages a
lab needs (the SFT model, the reward model) are run first, the same way, into a private stage cache
(`LIFECYCLE_CACHE`), where the lab's own `stage_model(...)` finds them, as it would find a reader's
earlier runs. So a check never reuses, or leaves behind, a stage that a real `--preset gpu` run
could mistake for its own. A lab that runs an earlier stage itself (one that was not built first)
is reported as a failure: labs must not do that.

Prints a Markdown table and writes it, with the raw numbers, to `<out>/gpu-check.{md,json}`.
"""

import argparse
import contextlib
import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from lifecycle.stages import LABS, STAGES, stage_path
from standin_hub import build, hub_env

PROBE = Path(__file__).with_name("probe.py")

# --8<-- [start:overrides]
STEPS = {  # a small step count for each lab, on a GPU and on a CPU
    "chat_template": [],  # no training: it only prompts the SFT model
    "curation": ["--max_steps", "4", "--warmup_steps", "1"],
    "dpo": ["--max_steps", "2"],
    "forgetting": ["--max_steps", "2", "--eval_every", "2"],
    # its gpu preset scores 200 questions a set before and after; 40 fit the per-lab cap
    "grpo": ["--max_steps", "2", "--eval_questions", "40"],
    "mechanics": ["--steps", "6", "--warmup_steps", "2", "--resume_at", "2"],
    "memory": [],  # one AdamW step per size, by design
    "parallelism": ["--repeats", "1"],
    "ppo": ["--episodes", "64"],  # two rollouts of the gpu preset's 32 replies
    "pretrain": ["--max_steps", "4", "--warmup_steps", "1"],
    "reward": ["--epochs", "0.05"],
    "sft": ["--max_steps", "4"],
}
# on a CPU, smaller batches, sequences and evaluations too (and fewer PPO episodes, one curation
CPU_SIZES = {
    # worker); the tiny stand-in keeps GPT-2's real 50,257-token vocabulary, so the heads stay full
    # size
    "chat_template": ["--max_new_tokens", "4"],
    "curation": [
        "--train_docs",
        "1000",
        "--batch_size",
        "2",
        "--block_size",
        "64",
        "--num_proc",
        "1",
    ],
    "dpo": [
        "--batch_size",
        "2",
        "--max_length",
        "64",
        "--response_length",
        "4",
        "--eval_pairs",
        "8",
        "--tasks",
        "capital",
    ],
    "forgetting": ["--batch_size", "2", "--max_new_tokens", "4", "--eval_docs", "16"],
    "grpo": [
        "--num_generations",
        "2",
        "--prompts_per_step",
        "2",
        "--max_completion_length",
        "8",
        "--eval_questions",
        "4",
    ],
    "mechanics": [
        "--model",
        "smoke",
        "--batch_size",
        "2",
        "--block_size",
        "32",
        "--accum_steps",
        "2",
        "--loss_tokens",
        "256",
    ],
    "memory": [
        "--sizes",
        "1x32x2",
        "--grid_size",
        "1x32x2",
        "--batch_size",
        "1",
        "--seq_len",
        "32",
    ],
    "parallelism": [
        "--batch_size",
        "4",
        "--seq_len",
        "16",
        "--micro_batch",
        "2",
        "--microbatches",
        "1,2",
    ],
    "ppo": [
        "--batch_size",
        "8",
        "--episodes",
        "16",
        "--mini_batches",
        "2",
        "--response_length",
        "4",
        "--eval_samples",
        "1",
    ],
    "pretrain": ["--batch_size", "2", "--block_size", "64"],
    "reward": ["--batch_size", "4", "--max_length", "128"],
    "sft": ["--batch_size", "2", "--train_examples", "32", "--max_new_tokens", "4"],
}
# --8<-- [end:overrides]


def lab_names() -> list[str]:
    """Every lab, in lifecycle order (`lifecycle.stages.STAGES`)."""
    return list(STAGES)


def upstream(lab: str) -> list[str]:
    """The earlier labs a lab's run resolves through the stage cache (`stage_model`, `base_model`):
    its `needs` in STAGES, which tests/test_structure.py checks against the script."""
    return list(STAGES[lab].needs)


def arguments(lab: str, cpu: bool, seed: int = 0) -> list[str]:
    if lab not in STEPS or (cpu and lab not in CPU_SIZES):
        raise KeyError(
            f"{lab}: give it small step (and CPU size) overrides in code/gpu/check.py "
            "STEPS/CPU_SIZES"
        )
    return ["--preset", "gpu", "--seed", str(seed), *STEPS[lab], *(CPU_SIZES[lab] if cpu else [])]


@dataclass
class Result:
    lab: str
    exit_code: int
    seconds: float
    cpu_seconds: float = (
        0.0  # user + system time of the lab's processes: steadier than wall time on a busy CPU
    )
    peak_gpu_bytes: int | None = None
    tokens_per_second: float | None = None
    note: str = ""
    output_dir: str = ""
    dataset_maps: dict | None = None  # Dataset.map calls by description (probe.py)


@contextlib.contextmanager
def locked(path: Path):
    """One process at a time builds a stage (two test workers may need the same SFT model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


class Check:
    """Runs labs at `--preset gpu` into `cache`, earlier stages first, each once."""

    def __init__(self, cache: Path, hub: Path, cpu: bool, seed: int = 0, timeout: float = 600.0):
        self.cache, self.cpu, self.seed, self.timeout = cache, cpu, seed, timeout
        self.env = hub_env(hub) | {
            "LIFECYCLE_CACHE": str(cache),
            "PYTHONHASHSEED": "0",
            "TOKENIZERS_PARALLELISM": "false",
        }

    def stage(self, lab: str) -> Path:
        return self.cache / stage_path(lab, "gpu", self.seed).name

    def ensure(self, lab: str) -> Result:
        """The lab's result: from its stage folder if it ran, else run now (upstream first)."""
        path = self.stage(lab)
        with locked(self.cache / "locks" / f"{lab}.lock"):
            if (path / "check.json").exists():
                return Result(**json.loads((path / "check.json").read_text()))
            for up in upstream(lab):
                if self.ensure(up).exit_code != 0:
                    return Result(lab, -1, 0.0, note=f"upstream {up} failed")
            return self.run(lab, path)

    def run(self, lab: str, path: Path) -> Result:
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        before = {p.name for p in self.cache.iterdir()}
        cmd = [
            sys.executable,
            str(PROBE),
            str(tmp / "probe.json"),
            str(LABS / f"{lab}.py"),
            "--output_dir",
            str(tmp),
            *arguments(lab, self.cpu, self.seed),
        ]
        start, cpu = time.perf_counter(), cpu_seconds()
        with open(tmp / "log.txt", "w") as log:
            try:
                code = subprocess.run(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=LABS.parent.parent,
                    timeout=self.timeout,
                ).returncode
            except subprocess.TimeoutExpired:
                code = 124
        result = Result(
            lab, code, time.perf_counter() - start, cpu_seconds() - cpu, output_dir=str(path)
        )
        if code == 124:
            result.note = f"timed out after {self.timeout:.0f} s"
        probe = (
            json.loads((tmp / "probe.json").read_text()) if (tmp / "probe.json").exists() else {}
        )
        result.peak_gpu_bytes, result.dataset_maps = (
            probe.get("peak_gpu_bytes"),
            probe.get("dataset_maps"),
        )
        if probe.get("train_tokens") and probe.get("train_seconds"):
            result.tokens_per_second = probe["train_tokens"] / probe["train_seconds"]
        extra = sorted(
            p.name
            for p in self.cache.iterdir()
            if p.name not in before
            and ".tmp" not in p.name
            and (p / "metrics.json").exists()
            and not (p / "check.json").exists()
        )
        # a lab built an earlier stage itself (ensure_stage) instead of finding the one built here
        if extra:
            result.exit_code, result.note = (
                result.exit_code or 1,
                f"ran another stage itself: {', '.join(extra)}",
            )
        if result.exit_code == 0:
            (tmp / "check.json").write_text(json.dumps(asdict(result)))
            tmp.rename(path)
        else:
            result.output_dir = str(tmp)
            result.note = result.note or tail(tmp / "log.txt")
        return result


def cpu_seconds() -> float:
    """User + system time of this process's finished children."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return " / ".join(line.strip() for line in text[-lines:])[:300]


def table(results: list[Result]) -> str:
    """lab | exit code | seconds | peak GPU memory | tokens/s, one row per lab."""
    lines = [
        "| lab | exit code | seconds | peak GPU memory (GiB) | tokens/s (Trainer steps) | note |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        mem = "—" if r.peak_gpu_bytes is None else f"{r.peak_gpu_bytes / 2**30:.2f}"
        tps = "—" if r.tokens_per_second is None else f"{r.tokens_per_second:,.0f}"
        note = r.note.replace("|", "\\|")
        lines.append(f"| {r.lab} | {r.exit_code} | {r.seconds:.0f} | {mem} | {tps} | {note} |")
    return "\n".join(lines) + "\n"


def environment() -> str:
    """Where the check ran: device, date and the versions that matter."""
    import datasets
    import torch
    import transformers
    import trl

    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"{os.cpu_count()}-core CPU"
    )
    return (
        f"{device}, {date.today().isoformat()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, trl {trl.__version__}, datasets {datasets.__version__}"
    )


def main(argv=None) -> list[Result]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "labs", nargs="*", help="labs to check (default: every lab, in lifecycle order)"
    )
    p.add_argument(
        "--flavour", default="gpt2", choices=["tiny", "gpt2"], help="the stand-in gpt2's shape"
    )
    p.add_argument(
        "--cpu", action="store_true", help="also shrink batches and sequences (CPU_SIZES)"
    )
    p.add_argument(
        "--out", default="runs/gpu-check", help="folder for the stage cache and the table"
    )
    p.add_argument("--timeout", type=float, default=600, help="seconds each lab may run")
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    shutil.rmtree(out / "stages", ignore_errors=True)  # a fresh check: every lab runs and is timed
    check = Check(out / "stages", build(a.flavour), a.cpu, timeout=a.timeout)
    results = [check.ensure(lab) for lab in (a.labs or lab_names())]
    text = f"Checked on {environment()}; stand-in gpt2 `{a.flavour}`.\n\n" + table(results)
    print(text)
    (out / "gpu-check.md").write_text(text)
    (out / "gpu-check.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    return results


if __name__ == "__main__":
    sys.exit(1 if any(r.exit_code for r in main()) else 0)
