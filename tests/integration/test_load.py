"""Issue 'robustness', item 2: the CA server under load.

200 cycles of 20 clients that connect, monitor every PV of the IOC, stop
reading and drop at once with a TCP reset, while a writer process writes
frames at 500 Hz and the IOC follows it. Afterwards the IOC still serves
(caget answers, a new monitor gets updates) and its numbers equal numpy's
from the file. (The same load silenced caproto's server, which the IOC used
before EPICS base's RSRV: "deque mutated during iteration".) The clients are
built from caproto's protocol classes, which can misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aioca import caget, camonitor

from tests.conftest import EPICS_ENV, Process, swmr_roi_ioc
from tests.integration.helpers import caget_program, read_frames, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROI = {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30}
CYCLES, CLIENTS, HOLD_S = 200, 20, 0.1
FRAMES = 2000  # per acquisition: 4 s at 500 Hz, all of it in the 2048-point series
FINISHED = 3


def _start(tmp_path: Path, prefix: str) -> tuple[Process, Path, list[str]]:
    """The IOC following data/scan.h5; (process, file, every PV name)."""
    data = tmp_path / "data"
    data.mkdir()
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=[ROI],
        timeout=1.0,
    )  # fmt: skip
    check = subprocess.run(
        swmr_roi_ioc("check", str(config)), capture_output=True, text=True, check=True
    )
    pvs = [line.strip() for line in check.stdout.splitlines()[1:] if line.strip()]
    assert len(pvs) > 50 and all(pv.startswith(prefix) for pv in pvs)
    ioc = Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config)))
    return ioc, data / "scan.h5", pvs


def _writer(h5: Path, frames: int) -> Process:
    return Process(
        swmr_roi_ioc("simulate", str(h5), "--rate", "500", "--frames", str(frames),
                     "--shape", "64", "80")
    )  # fmt: skip


def _storm(pvs: list[str], cycles: int, tmp_path: Path) -> Process:
    pvfile = tmp_path / "pvs.txt"
    pvfile.write_text("\n".join(pvs) + "\n")
    port = EPICS_ENV["EPICS_CA_SERVER_PORT"]
    args = [port, str(cycles), str(CLIENTS), "1", str(HOLD_S), str(pvfile)]
    return Process([sys.executable, "-m", "tests.integration.helpers_load", *args])


async def _monitor_updates(pv: str, seconds: float) -> list[float]:
    """What a new libca monitor of pv receives in that time."""
    got: list[float] = []

    def update(value: Any) -> None:
        if getattr(value, "ok", True):  # not aioca's ca_nothing
            got.append(float(value))

    sub = camonitor(pv, update)
    try:
        await asyncio.sleep(seconds)
    finally:
        sub.close()
    return got


async def _acquisition_is_right(prefix: str, h5: Path, writer: Process) -> None:
    """ArrayCounter == frames written; Total and the time series equal numpy."""
    assert writer.wait(120) == 0, writer.text
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == FRAMES, 60)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == FINISHED, 30)
    frames = read_frames(h5)
    assert len(frames) == FRAMES
    totals = frames[:, 20:50, 10:50].astype(np.float64).sum(axis=(1, 2))
    assert await caget(f"{prefix}1:Total_RBV", timeout=10) == totals[-1]
    series = np.asarray(await caget(f"{prefix}1:TSTotal", timeout=10))
    np.testing.assert_array_equal(series[:FRAMES], totals)
    frame_series = np.asarray(await caget(f"{prefix}Frame:TSTotal", timeout=10))
    whole = frames.astype(np.float64).sum(axis=(1, 2))
    np.testing.assert_array_equal(frame_series[:FRAMES], whole)


async def _acquisitions_until(
    prefix: str, h5: Path, processes: list[Process], storm: Process
) -> int:
    """Back-to-back acquisitions at 500 Hz while the storm runs, each checked."""
    count = 0
    while True:
        h5.unlink(missing_ok=True)
        writer = _writer(h5, FRAMES)
        processes.append(writer)
        await _acquisition_is_right(prefix, h5, writer)
        count += 1
        if storm.proc.poll() is not None:
            return count


@pytest.mark.timeout(600)  # about 3 minutes on a loaded 2-core machine
async def test_ioc_serves_and_is_right_after_200_cycles_of_20_dropping_clients(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    ioc, h5, pvs = _start(tmp_path, prefix)
    processes.append(ioc)
    await wait_for(f"{prefix}Status_RBV", lambda v: True, 60)
    started = time.monotonic()
    storm = _storm(pvs, CYCLES, tmp_path)
    processes.append(storm)
    acquisitions = await _acquisitions_until(prefix, h5, processes, storm)
    took = time.monotonic() - started
    assert storm.wait(10) == 0, storm.text
    assert len(re.findall(r"^cycle \d+ ", storm.text, re.MULTILINE)) == CYCLES
    assert "done" in storm.text
    print(f"{CYCLES} cycles of {CLIENTS} clients in {took:.1f} s, {acquisitions} acquisitions")

    for failure in ("Traceback", "ERROR"):
        assert failure not in ioc.text, ioc.text[-3000:]
    assert ioc.proc.poll() is None

    # still serving: the EPICS caget program answers, with the right number
    assert caget_program(f"{prefix}ArrayCounter_RBV").split()[-1] == str(FRAMES)
    # ... and a new monitor follows a new acquisition to its end
    h5.unlink()
    writer = _writer(h5, FRAMES)
    processes.append(writer)
    updates = await _monitor_updates(f"{prefix}ArrayCounter_RBV", 10.0)
    assert len(updates) >= 3 and updates[-1] == FRAMES, updates
    await _acquisition_is_right(prefix, h5, writer)
