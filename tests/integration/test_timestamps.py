"""The statistics PVs carry the time their statistics were computed (EPICS: the
data's time), not the time they were published.

A real writer process logs the wall-clock time of every flush
(``simulate --flush-log``); the IOC follows it and publishes at 1 Hz while
frames come at 2 Hz, so a publish happens up to a second after the frame's
statistics were computed; EPICS base ``camonitor -tsc`` prints each update's
timestamp and its own arrival time.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import Process, epics_bin, epics_run_env, swmr_roi_ioc
from tests.integration.helpers import read_frames, truth, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROI = {"name": "ROI1", "x": 5, "y": 7, "width": 20, "height": 16}
FRAMES = 8
STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)"
LINE = re.compile(rf"^(\S+)\s+{STAMP}\({STAMP}\)\s+(\S+)")
#: computed within this long of the flush (a 64 x 80 frame); publishing takes up to 1 s
PROMPT_S = 0.25


def _posix(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def _updates(text: str, pv: str) -> list[tuple[float, float, float]]:
    """(value, PV timestamp, arrival) of every camonitor line of ``pv``."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m and m[1] == pv:
            out.append((float(m[4]), _posix(m[2]), _posix(m[3])))
    return out


async def test_statistics_are_stamped_when_computed(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5, flush_log = data / "ts.h5", tmp_path / "flush.txt"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="ts.h5", rois=[ROI],
        timeout=30.0, rate_hz=1.0,
    )  # fmt: skip
    processes.append(Process(swmr_roi_ioc("--log-level", "WARNING", "run", str(config))))
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 60)  # Waiting
    pvs = [f"{prefix}{n}" for n in ("ArrayCounter_RBV", "1:Total_RBV", "Frame:Total_RBV")]
    camonitor = Process(
        [str(epics_bin("camonitor")), "-tsc", "-f", "1", *pvs], env={**epics_run_env(), "TZ": "UTC"}
    )
    processes.append(camonitor)
    writer = Process(swmr_roi_ioc(
        "simulate", str(h5), "--frames", str(FRAMES), "--rate", "2", "--shape", "64", "80",
        "--flush-log", str(flush_log),
    ))  # fmt: skip
    processes.append(writer)
    assert writer.wait(timeout=60) == 0, writer.text
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: int(v) == FRAMES, 30)
    time.sleep(2.5)  # the last publish reaches camonitor
    camonitor.stop()

    flushed: dict[int, float] = {}  # frames visible -> when
    for line in flush_log.read_text().splitlines():
        n, t = line.split()
        flushed.setdefault(int(n), float(t))
    assert sorted(flushed) == list(range(1, FRAMES + 1)), "one flush per frame"
    frames = read_frames(h5)
    roi_total = truth(frames, ROI["x"], ROI["y"], ROI["width"], ROI["height"])["total"]
    frame_total = frames.reshape(FRAMES, -1).sum(axis=1, dtype=np.float64)

    counter = [u for u in _updates(camonitor.text, pvs[0]) if u[0] > 0]
    assert counter, camonitor.text
    assert counter[-1][0] == FRAMES
    stamp_of = {}
    for value, stamp, arrival in counter:
        n = int(value)
        # the newest frame was flushed before its statistics were computed, and
        # they were computed before the value arrived
        assert flushed[n] <= stamp <= arrival, (n, flushed[n], stamp, arrival)
        # ... and promptly: the stamp is not the publish time (up to 1 s later)
        assert stamp - flushed[n] < PROMPT_S, (n, stamp - flushed[n])
        stamp_of[stamp] = n
    # the statistics of the same frames carry the same stamp as the counter
    for pv, expected in ((pvs[1], roi_total), (pvs[2], frame_total)):
        stats = [u for u in _updates(camonitor.text, pv) if u[1] >= counter[0][1]]
        assert stats, f"no update of {pv}"
        for value, stamp, _ in stats:
            assert stamp in stamp_of, f"{pv} stamped {stamp}, no counter update with it"
            assert value == expected[stamp_of[stamp] - 1], (pv, stamp_of[stamp], value)
