"""ServiceState: series in acquisition order, maps by snake position, Reset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swmr_roi_ioc.app import PathRefusedError, ServiceState, resolve_under
from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.publish import Status
from swmr_roi_ioc.stats import compute_stats

CONFIG = """\
ioc_name: test-ioc
prefix: "T:"
data_root: /data
scan: {shape: [2, 3], snake: true}
publish: {time_series_length: 4}
rois:
  - {name: A, x: 0, y: 0, width: 2, height: 2}
  - {name: B, x: 5, y: 5, width: 10, height: 10}
"""


def _feed(state: ServiceState, frames: np.ndarray, start: int) -> None:
    rois = [r for r in state.rois_for_next_batch() if r is not None]
    per_roi, whole = compute_stats(frames, rois)
    state.add_batch(start, list(per_roi), whole, unique_id=start + len(frames))


def _frames(n: int, offset: int = 0) -> np.ndarray:
    return (np.arange(n * 8 * 8, dtype=np.uint16).reshape(n, 8, 8) + offset) % 97


def test_series_scroll_and_map_follows_snake() -> None:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    frames = _frames(6)
    _feed(state, frames[:4], 0)
    _feed(state, frames[4:], 4)
    snap = state.snapshot()
    totals = frames[:, :2, :2].astype(np.int64).sum(axis=(1, 2))
    # 6 frames, 4 points: the latest 4, oldest first
    np.testing.assert_array_equal(snap.rois[0].series["total"], totals[2:])
    grid = snap.rois[0].map.reshape(2, 3)
    np.testing.assert_array_equal(grid[0], totals[:3])
    np.testing.assert_array_equal(grid[1], totals[3:][::-1])  # snake: row 1 backwards
    assert snap.array_counter == 6 and snap.unique_id == 6
    # ROI B is clamped to the 8x8 frame: readbacks show it
    rb = snap.rois[1].readback
    assert rb is not None and (rb.x, rb.y, rb.width, rb.height) == (5, 5, 3, 3)
    assert snap.frame is not None
    assert snap.frame.stats.total == float(frames[-1].astype(np.int64).sum())


def test_reset_clears_and_series_restart() -> None:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    frames = _frames(3)
    _feed(state, frames, 0)
    generation = state.snapshot().arrays_generation
    state.reset()
    snap = state.snapshot()
    assert snap.arrays_generation > generation
    assert np.isnan(snap.rois[0].map).all() and np.isnan(snap.rois[0].series["total"]).all()
    assert snap.rois[0].stats.total == 0 and snap.array_counter == 3
    more = _frames(1, offset=5)
    _feed(state, more, 3)
    snap = state.snapshot()
    assert snap.rois[0].series["total"][0] == more[0, :2, :2].astype(np.int64).sum()
    assert np.isnan(snap.rois[0].series["total"][1:]).all()
    assert not np.isnan(snap.rois[0].map.reshape(2, 3)[1, 2])  # frame 3: row 1, col 2


def test_roi_change_applies_to_next_batch_and_error_marks_stale() -> None:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    state.set_roi(0, x=4, use=True)
    assert state.rois_for_next_batch()[0] is not None
    state.set_roi(1, use=False)
    assert state.rois_for_next_batch()[1] is None
    state.set_status(Status.ERROR, "broken")
    snap = state.snapshot()
    assert snap.rois[0].stale and snap.severity.name == "MAJOR"
    state.start_acquisition("/data/y.h5", (8, 8))
    assert not state.snapshot().rois[0].stale


def test_paths_outside_data_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.h5").touch()
    (root / "escape.h5").symlink_to(tmp_path / "secret.h5")
    assert resolve_under(root, "ok.h5") == (root / "ok.h5").resolve()
    for bad in ["../secret.h5", "escape.h5", str(tmp_path / "secret.h5"), "/etc/passwd"]:
        with pytest.raises(PathRefusedError):
            resolve_under(root, bad)
