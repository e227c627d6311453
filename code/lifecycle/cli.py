"""The lab contract: dataclass arguments, presets, flag checks, one-line errors, `metrics.json` and
`memory.json`.

Every lab runs as `python code/labs/<lab>.py --output_dir DIR [--preset smoke|lesson|gpu] ...`.
Bad input never shows a traceback: it prints `<lab>: error: <what is wrong>` and exits with code 2.
"""

import json
import math
import os
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

PRESETS = ("smoke", "lesson", "gpu")
TIMING_SUFFIXES = ("_seconds", "_per_second")  # the only keys allowed to differ between two runs


class LabError(Exception):
    """Bad input: reported as one line, exit code 2."""


@dataclass
class LabArgs:
    output_dir: str = field(
        metadata={"help": "Folder for metrics.json, plots and the saved model."}
    )
    preset: str = field(
        default="lesson",
        metadata={
            "choices": list(PRESETS),
            "help": "smoke: seconds; lesson: CPU minutes; gpu: real gpt2.",
        },
    )
    seed: int = field(
        default=0, metadata={"help": "Seeds the world, the model init and the data order."}
    )


class _Parser(HfArgumentParser):
    def error(self, message):  # argparse prints usage and exits; we want one line
        raise LabError(message)


def one_cpu_thread() -> None:
    """On a CPU, run torch on one thread. A float sum split over two threads adds in another order
    than on one, so the same seed gave results that differ in the sixth digit between machines and
    settings (`OMP_NUM_THREADS`), and PPO amplifies such a difference into another run. With one
    thread a rerun reproduces every number, whatever the thread setting (another CPU type can still
    differ: its math kernels may add in another order). On a GPU nothing changes."""
    import torch  # transformers has loaded it already

    if not torch.cuda.is_available():
        torch.set_num_threads(1)


def parse(cls, presets: dict[str, dict], argv: list[str] | None = None):
    """Parse `argv` into `cls`, then fill every field left as None from the chosen preset. Fixes
    the CPU thread count (`one_cpu_thread`), so a lab's numbers do not depend on the machine it
    runs on."""
    one_cpu_thread()
    (args,) = _Parser(cls).parse_args_into_dataclasses(args=argv)
    for name, value in presets[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in getattr(cls, "positive", ()):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise LabError(f"--{name} must be a positive number, got {value}")
    args.output_dir = writable_dir(args.output_dir)
    return args


def comma_list(flag: str, text: str, kind: type = str, choices=None) -> list:
    """A comma-separated flag value (`--kl_coefs 0,0.05,0.2`) as a list of `kind`, each one of
    `choices` when given. Bad input is one line naming the flag:
    `--kl_coefs must be comma-separated numbers, ...`."""
    what = {int: "integers", float: "numbers"}.get(kind, "names")
    try:
        values = [kind(x.strip()) for x in text.split(",")]
    except ValueError:
        raise LabError(f"--{flag} must be comma-separated {what}, got {text!r}") from None
    unknown = [str(v) for v in values if choices is not None and v not in choices]
    if unknown:
        raise LabError(
            f"--{flag}: unknown {', '.join(unknown)}; choose from {', '.join(map(str, choices))}"
        )
    return values


def writable_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise LabError(f"cannot write to output dir {path!r}: {e.strerror or e}") from None
    return out


def write_metrics(out: Path, metrics: dict) -> Path:
    """Flat keys, numbers or lists of flat dicts; floats rounded so reruns compare equal."""

    def clean(v):
        if isinstance(v, float):
            return round(v, 6) if math.isfinite(v) else str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    path = out / "metrics.json"
    path.write_text(json.dumps(clean(metrics), indent=2, sort_keys=True) + "\n")
    return path


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (MiB): `VmHWM` from /proc/self/status on Linux.

    Not getrusage's `ru_maxrss` there: Linux keeps it across fork and exec, so a lab started by a
    large process (a test worker, a notebook kernel) would report its parent's peak. Elsewhere
    (macOS), it is `ru_maxrss` (bytes on macOS, KiB on other systems)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:  # no /proc: not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def write_peak_rss(out: Path) -> Path:
    """`memory.json`: the run's peak RSS. It varies from run to run, so not in `metrics.json`."""
    path = out / "memory.json"
    path.write_text(json.dumps({"peak_rss_mib": peak_rss_mib()}))
    return path


def run(main: Callable[[list[str] | None], object]) -> None:
    """Run a lab's `main`, turning bad input into one line on stderr and exit code 2."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    prog = Path(sys.argv[0]).stem
    try:
        main(sys.argv[1:])
    except LabError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
