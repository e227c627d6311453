"""`make results` runs two labs at a time (`python -m lifecycle.publish --jobs 2`): a lab starts
only after the labs it needs (`STAGES[lab].needs`) and the ones whose results it reads (`READS`)
are published, and the two-process parallelism lab runs alone at the end. Costs well under a
second: a stub that records when each lab starts and ends stands in for the labs."""

import threading
import time

from lifecycle import publish
from lifecycle.stages import STAGES


def test_jobs_respect_the_stage_graph(monkeypatch):
    events, lock = [], threading.Lock()

    def fake(lab: str) -> None:
        with lock:
            events.append(("start", lab))
        time.sleep(0.01)
        with lock:
            events.append(("end", lab))

    monkeypatch.setattr(publish, "publish", fake)
    publish.main(["--jobs", "2"])
    order = {e: i for i, e in enumerate(events)}
    assert {lab for _, lab in events} == set(STAGES)
    for lab in STAGES:
        for up in (*STAGES[lab].needs, *publish.READS.get(lab, ())):
            assert order[("end", up)] < order[("start", lab)], (up, lab)
    for lab in publish.SOLO:  # alone: every other lab has ended before it starts
        assert all(
            order[("end", other)] < order[("start", lab)] for other in STAGES if other != lab
        )
    # two at a time, some of the time
    running, most = 0, 0
    for kind, _ in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most == 2
