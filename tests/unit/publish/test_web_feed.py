"""The live page's data and its stand-in put path, on a real ServiceState."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swmr_roi_ioc.app import ServiceState
from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.publish import PutRefusedError
from swmr_roi_ioc.publish.web import ControllerPutPath, page_data
from swmr_roi_ioc.stats import compute_stats

CONFIG = """\
ioc_name: test-ioc
prefix: "T:"
data_root: /data
scan: {shape: [2, 3], snake: true}
rois:
  - {name: A, x: 0, y: 0, width: 2, height: 2}
  - {name: B, x: 1, y: 1, width: 3, height: 3}
access: {write_hosts: [ALLOWED-host]}
"""


def _state(frames: int) -> tuple[ServiceState, np.ndarray]:
    state = ServiceState(parse_config(CONFIG))
    state.start_acquisition("/data/x.h5", (8, 8))
    data = (np.arange(frames * 64, dtype=np.uint16).reshape(frames, 8, 8) * 7) % 101
    rois = [r for r in state.rois_for_next_batch() if r is not None]
    per_roi, whole = compute_stats(data, rois)
    state.add_batch(0, list(per_roi), whole, unique_id=frames)
    return state, data


def test_maps_are_snake_placed_with_nan_and_their_range() -> None:
    state, data = _state(4)
    page = page_data(state.snapshot(), None)
    assert [m.name for m in page.maps] == ["A", "B", "Frame"]
    totals = data[:, 0:2, 0:2].astype(np.int64).sum(axis=(1, 2)).astype(float)
    want = np.array([[totals[0], totals[1], totals[2]], [np.nan, np.nan, totals[3]]])
    np.testing.assert_array_equal(page.maps[0].grid, want)
    assert (page.maps[0].low, page.maps[0].high) == (totals.min(), totals.max())
    assert page.frame_shape == (8, 8) and page.array_counter == 4
    assert [(b.name, b.x, b.y, b.width, b.height) for b in page.boxes] == [
        ("A", 0, 0, 2, 2), ("B", 1, 1, 3, 3),
    ]  # fmt: skip


def test_an_empty_map_has_no_range() -> None:
    state = ServiceState(parse_config(CONFIG))
    page = page_data(state.snapshot(), None)
    assert np.isnan(page.maps[0].grid).all()
    assert math.isnan(page.maps[0].low) and math.isnan(page.maps[0].high)


def test_put_path_applies_geometry_and_asks_for_the_recompute() -> None:
    state, _ = _state(4)
    puts = ControllerPutPath(state.config, state)
    puts.put("2:MinX", 3, host="allowed-host", user="")
    puts.put("2:SizeY", 2.0, host="allowed-host.example.org", user="")
    rb = state.snapshot().rois[1].readback
    assert rb is not None and (rb.x, rb.height) == (3, 2)
    assert state.snapshot().recompute_progress == 0.0
    assert state.take_recompute() is not None


@pytest.mark.parametrize(
    ("suffix", "value", "host", "why"),
    [
        ("1:MinX", 5, "elsewhere", "write access denied to ?@elsewhere"),
        ("1:MinX", 2.5, "allowed-host", "T:1:MinX: 2.5 is not a whole number"),
        ("1:SizeX", 0, "allowed-host", "T:1:SizeX: 0 is outside 1..65536"),
        ("1:MinY", -1, "allowed-host", "T:1:MinY: -1 is outside 0..65536"),
        ("3:MinX", 1, "allowed-host", "T:3:MinX: no such writable PV"),
        ("1:Total_RBV", 1, "allowed-host", "T:1:Total_RBV is read-only"),
        ("Reset", "x", "allowed-host", "T:Reset: write 1"),
    ],
)
def test_put_path_refuses_with_the_reason(suffix: str, value: object, host: str, why: str) -> None:
    state, _ = _state(2)
    before = state.snapshot().rois[0].readback
    with pytest.raises(PutRefusedError, match=why.replace(".", r"\.").replace("?", r"\?")):
        ControllerPutPath(state.config, state).put(suffix, value, host=host, user="")
    assert state.snapshot().rois[0].readback == before
