"""The writer's flush times (``on_flush``, ``simulate --flush-log``): what the
latency benchmark measures from."""

import time
from pathlib import Path

import h5py
import numpy as np

from swmr_roi_ioc.__main__ import main
from swmr_roi_ioc.sim import ATTRIBUTES_GROUP, EPICS_EPOCH_OFFSET, SimOptions, write_file


def test_on_flush_reports_frames_visible_and_when(tmp_path: Path) -> None:
    calls: list[tuple[int, float]] = []
    options = SimOptions(frames=10, rate_hz=0, shape=(8, 8), num_frames_flush=4)
    t_before = time.time()
    write_file(tmp_path / "n.h5", options, on_flush=lambda n, t: calls.append((n, t)))
    t_after = time.time()
    # flushed every 4 frames, the remainder by close()
    assert [n for n, _ in calls] == [4, 8, 10]
    times = [t for _, t in calls]
    assert times == sorted(times)
    assert t_before <= times[0] and times[-1] <= t_after


def test_flush_log_follows_each_frame(tmp_path: Path) -> None:
    out, log = tmp_path / "f.h5", tmp_path / "flush.txt"
    code = main(["--log-level", "WARNING", "simulate", str(out), "--frames", "6", "--rate", "50",
                 "--shape", "8", "8", "--flush-log", str(log)])  # fmt: skip
    assert code == 0
    rows = [line.split() for line in log.read_text().splitlines()]
    assert [int(n) for n, _ in rows] == [1, 2, 3, 4, 5, 6]
    flushed = np.array([float(t) for _, t in rows])
    # one flush per frame, paced at 50 Hz: the writer keeps a schedule, so a
    # frame delayed by a busy machine is followed by one sooner; the pace is
    # the span of the whole run, never shorter than 5 periods
    assert np.all(np.diff(flushed) > 0)
    assert flushed[-1] - flushed[0] >= 5 * 0.02 * 0.95
    with h5py.File(out, "r") as f:
        stamps = f[f"{ATTRIBUTES_GROUP}/NDArrayTimeStamp"][()].ravel() + EPICS_EPOCH_OFFSET
    # each frame was stamped (acquired) before it was flushed, and flushed soon after
    assert np.all(stamps <= flushed)
    assert np.all(flushed - stamps < 0.5)


def test_burst_then_rate(tmp_path: Path) -> None:
    """``--burst N``: the first N frames flat out, the rest at --rate."""
    out, log = tmp_path / "b.h5", tmp_path / "flush.txt"
    code = main(["--log-level", "WARNING", "simulate", str(out), "--frames", "25", "--rate", "20",
                 "--burst", "20", "--shape", "8", "8", "--flush-log", str(log)])  # fmt: skip
    assert code == 0
    flushed = np.array([float(t) for _, t in (line.split() for line in log.read_text().split("\n")
                                              if line)])  # fmt: skip
    assert len(flushed) == 25
    assert flushed[19] - flushed[0] < 4 * 0.05  # 20 frames in less than 4 periods
    assert flushed[24] - flushed[20] >= 4 * 0.05 * 0.95  # then paced
