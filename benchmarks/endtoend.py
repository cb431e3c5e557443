"""Catch-up measured end to end: the IOC process (and its workers) reading a
finished file, timed by what a client sees over Channel Access.

The IOC is started on a path that does not exist yet and waits (Waiting); the
finished file is then hard-linked to that path. EPICS base ``camonitor -tsc``
records ``ArrayCounter_RBV``, whose server timestamp is the time the
statistics of its newest frame were computed. The rate is taken between the
first update with frames and the one with every frame:
``(last count - first count) / (last stamp - first stamp)``, so the IOC
noticing and opening the file is not part of it (it is reported apart, as
the time from the link to the first update).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.epics_env import epics_bin, loopback_env
from benchmarks.live import PREFIX, _camonitor_events, _config, _processes, _start_ioc
from swmr_roi_ioc.stats import Roi

#: the IOC's publish cap here: more updates, a finer timing (the stamps are exact anyway)
RATE_HZ = 50.0


@dataclass(frozen=True)
class EndToEnd:
    fps: float | None
    #: seconds from the file appearing to the first update with frames
    first_s: float | None
    #: every frame counted
    complete: bool
    note: str = ""


def ioc_catchup(path: Path, frames: int, rois: list[Roi], timeout: float = 600.0) -> EndToEnd:
    """The IOC catching up on the finished file ``path`` (ROIs ``rois`` + Frame)."""
    data = path.parent / f"e2e-{path.stem}"
    data.mkdir(exist_ok=True)
    target = data / "e2e.h5"
    config, doc = _config(data, "e2e.h5")
    doc["rois"] = [
        {"name": f"ROI{i + 1}", "x": r.x, "y": r.y, "width": r.width, "height": r.height,
         "background_width": r.background_width}
        for i, r in enumerate(rois)
    ]  # fmt: skip
    doc["publish"]["rate_hz"] = RATE_HZ
    doc["pva"] = False
    doc["scan"]["shape"] = None
    config.write_text(json.dumps(doc, indent=2) + "\n")
    env = loopback_env()
    log = data / "ioc.log"
    events_file = data / "camonitor.txt"
    # our own caRepeater: else libca starts one that outlives us (and holds
    # the pipes of the caget that started it)
    repeater = subprocess.Popen([epics_bin("caRepeater")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        with _processes(env) as procs:
            _start_ioc(procs, config, log)
            with events_file.open("w") as out:
                monitor = procs.start(
                    [epics_bin("camonitor"), "-tsc", f"{PREFIX}ArrayCounter_RBV"], stdout=out
                )
                time.sleep(1.0)  # connected, the initial 0 received
                linked = time.time()
                os.link(path, target)
                deadline = time.monotonic() + timeout
                done = False
                while time.monotonic() < deadline and not done:
                    time.sleep(0.2)
                    events = _camonitor_events(events_file)
                    done = any(_count(e.value) >= frames for e in events)
                procs.stop(monitor)
        events = [e for e in _camonitor_events(events_file) if _count(e.value) > 0]
        if not events:
            return EndToEnd(None, None, False, "no frame counted")
        last = next((e for e in events if _count(e.value) >= frames), events[-1])
        first = events[0]
        span = last.stamp - first.stamp
        counted = _count(last.value) - _count(first.value)
        fps = counted / span if span > 0 and counted > 0 else None
        note = "" if fps is not None else "too few updates to time"
        return EndToEnd(fps, first.arrival - linked, _count(last.value) >= frames, note)
    finally:
        repeater.terminate()
        repeater.wait(timeout=10)
        target.unlink(missing_ok=True)
        for leftover in data.iterdir():
            if leftover.suffix in (".nxs", ".tmp"):
                leftover.unlink(missing_ok=True)


def _count(value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        return 0


def has_epics() -> bool:
    try:
        return subprocess.run([epics_bin("caget"), "-h"], capture_output=True).returncode == 0
    except OSError:
        return False
