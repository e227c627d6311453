"""pytest plugin (`-p cputime` in pyproject.toml): CPU seconds per test, not wall seconds.

On a shared 2-core machine a test's wall time mostly measures its neighbours; its CPU time (this
process plus the subprocesses it waited for, such as a lab run) is what it costs.
`--cpu-durations=N` prints the N costliest tests (setup, call and teardown summed: a session
fixture counts where it is first built), the total, and each xdist worker's total: the busier
worker's total is about the suite's wall time on an idle 2-core machine. `--cpu-report=PATH` also
writes every test's figures as JSON.
"""

import json
import os
import resource
from collections import defaultdict

import pytest


def _cpu_seconds() -> float:
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def pytest_addoption(parser):
    group = parser.getgroup("cputime")
    group.addoption(
        "--cpu-durations",
        type=int,
        default=0,
        metavar="N",
        help="show the N tests that cost the most CPU seconds (0: off)",
    )
    group.addoption(
        "--cpu-report", default=None, metavar="PATH", help="write every test's CPU seconds as JSON"
    )


def _measure(item, phase):
    start = _cpu_seconds()
    yield
    item.user_properties.append(
        (
            "cpu_seconds",
            (phase, _cpu_seconds() - start, os.environ.get("PYTEST_XDIST_WORKER", "main")),
        )
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _measure(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _measure(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _measure(item, "teardown")


_costs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_workers: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        # each phase's report carries the earlier ones
        if name == "cpu_seconds" and value[0] == report.when:
            phase, seconds, worker = value
            _costs[report.nodeid][phase] += seconds
            _workers[worker] += seconds


def pytest_terminal_summary(terminalreporter, config):
    n, path = config.getoption("cpu_durations"), config.getoption("cpu_report")
    if path:
        with open(path, "w") as f:
            json.dump({"tests": _costs, "workers": _workers}, f, indent=1)
    if not n or not _costs:
        return
    total = {test: sum(phases.values()) for test, phases in _costs.items()}
    terminalreporter.section(
        f"costliest {n} tests in CPU seconds (this process + waited-for subprocesses)"
    )
    for test in sorted(total, key=total.get, reverse=True)[:n]:
        phases = ", ".join(f"{p} {s:.1f}" for p, s in _costs[test].items() if s >= 0.05)
        terminalreporter.write_line(f"{total[test]:7.1f} s  {test}  ({phases})")
    workers = ", ".join(f"{w} {s:.0f} s" for w, s in sorted(_workers.items()))
    terminalreporter.write_line(
        f"all {len(total)} tests: {sum(total.values()):.0f} CPU s; by worker: {workers}"
    )
