"""A scan's own map from its scanspec Spec or grid metadata, against the
positions scanspec itself gives every frame (``frames().midpoints``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scanspec.specs import Line, Spec

from swmr_roi_ioc.stats import ScanGeometry, ScanSpecError, grid_geometry, spec_geometry


def _cells_from_positions(spec: Spec[str], rows: int, cols: int) -> list[int]:
    """Naive: each frame's (y, x) position -> the cell whose Line point it is."""
    mid = spec.frames().midpoints
    ys = np.linspace(0, 1, rows) if rows > 1 else np.zeros(1)
    xs = np.linspace(0, 1, cols) if cols > 1 else np.zeros(1)
    out = []
    for y, x in zip(mid["y"], mid["x"], strict=True):
        row = int(np.argmin(np.abs(ys - y)))
        col = int(np.argmin(np.abs(xs - x)))
        out.append(row * cols + col)
    return out


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), snake=st.booleans())
def test_spec_order_is_scanspecs_own_path(rows: int, cols: int, snake: bool) -> None:
    inner = Line("x", 0, 1, cols)
    spec = Line("y", 0, 1, rows) * (~inner if snake else inner)
    geometry = spec_geometry(spec.serialize())
    assert (geometry.rows, geometry.cols) == (rows, cols)
    assert geometry.cells(np.arange(rows * cols)).tolist() == _cells_from_positions(
        spec, rows, cols
    )
    # the same as the classic snake / raster geometry
    classic = ScanGeometry((rows, cols), snake)
    np.testing.assert_array_equal(
        geometry.cells(np.arange(-2, rows * cols + 2)),
        classic.cells(np.arange(-2, rows * cols + 2)),
    )


def test_repeated_positions_still_place_every_frame_once() -> None:
    spec = Line("y", 0, 0, 3) * ~Line("x", 5, 5, 4)  # every point the same
    geometry = spec_geometry(spec.serialize())
    cells = geometry.cells(np.arange(12))
    assert sorted(cells.tolist()) == list(range(12))
    assert geometry.position(4) == (1, 3)  # row 1 runs backwards


def test_three_dimensions_fold_into_rows_snakes_exact() -> None:
    spec = Line("z", 0, 1, 2) * ~Line("y", 0, 1, 2) * ~Line("x", 0, 1, 3)
    geometry = spec_geometry(spec.serialize())
    assert (geometry.rows, geometry.cols) == (4, 3)
    assert geometry.cells(np.arange(12)).tolist() == [0, 1, 2, 5, 4, 3, 9, 10, 11, 8, 7, 6]


def test_grid_scan_metadata_matches_bluesky_snaking() -> None:
    geometry = grid_geometry([3, 4], [False, True])
    assert geometry == spec_geometry((Line("y", 0, 1, 3) * ~Line("x", 0, 1, 4)).serialize())
    assert grid_geometry([2, 3]).cells(np.arange(6)).tolist() == list(range(6))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"type": "Nonsense"}, "not a scanspec Spec"),
        ("Line(x)", "not a scanspec Spec"),
        ({"axis": "x", "start": 0, "stop": 1, "num": 5_000_000, "type": "Linspace"}, "too large"),
    ],
)
def test_bad_scan_spec_is_a_clear_error(spec: object, words: str) -> None:
    with pytest.raises(ScanSpecError, match=words):
        spec_geometry(spec)


def test_bad_grid_metadata() -> None:
    with pytest.raises(ScanSpecError, match="snaking"):
        grid_geometry([2, 3], [True])
    with pytest.raises(ScanSpecError, match="positive"):
        grid_geometry([2, 0])


def test_order_geometry_keeps_scan_geometry_api() -> None:
    order = np.array([3, 2, 1, 0, -1])
    geometry = ScanGeometry((2, 2), False, order)
    assert geometry.position(0) == (1, 1)
    assert geometry.cells(np.array([0, 3, 4, 5, -1])).tolist() == [3, 0, -1, -1, -1]
    assert geometry != ScanGeometry((2, 2), False)
    assert geometry == ScanGeometry((2, 2), False, order.copy())
    assert hash(geometry) == hash(ScanGeometry((2, 2), False, order.copy()))
    with pytest.raises(Exception, match="outside"):
        ScanGeometry((2, 2), False, np.array([4]))
