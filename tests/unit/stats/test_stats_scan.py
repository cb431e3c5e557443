"""Scan geometry against a naive loop over rows and columns."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swmr_roi_ioc._errors import SwmrRoiError
from swmr_roi_ioc.stats import ScanGeometry


def naive_positions(rows: int, cols: int, snake: bool) -> list[tuple[int, int]]:
    positions: list[tuple[int, int]] = []
    for row in range(rows):
        columns = list(range(cols))
        if snake and row % 2 == 1:
            columns.reverse()
        positions.extend((row, col) for col in columns)
    return positions


@settings(max_examples=200, deadline=None)
@given(rows=st.integers(1, 20), cols=st.integers(1, 20), snake=st.booleans())
def test_matches_naive_loop(rows: int, cols: int, snake: bool) -> None:
    scan = ScanGeometry((rows, cols), snake)
    assert (scan.rows, scan.cols, scan.size, scan.snake) == (
        rows,
        cols,
        rows * cols,
        snake,
    )
    positions = naive_positions(rows, cols, snake)
    assert [scan.position(i) for i in range(scan.size)] == positions
    indices = np.arange(-3, scan.size + 3)
    want = [-1] * 3 + [r * cols + c for r, c in positions] + [-1] * 3
    got = scan.cells(indices)
    assert got.dtype == np.int64
    assert got.tolist() == want
    # every cell is hit exactly once
    assert sorted(got[got >= 0].tolist()) == list(range(scan.size))


def test_snake_and_raster_examples() -> None:
    assert ScanGeometry((2, 3), snake=True).cells(np.arange(6)).tolist() == [
        0,
        1,
        2,
        5,
        4,
        3,
    ]
    assert ScanGeometry((2, 3), snake=False).cells(np.arange(6)).tolist() == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    assert ScanGeometry((3, 3), snake=True).position(4) == (1, 1)
    assert ScanGeometry((3, 3), snake=True).position(5) == (1, 0)


def test_cells_keeps_shape_and_handles_unsigned() -> None:
    scan = ScanGeometry((2, 2), snake=True)
    got = scan.cells(np.array([[0, 1], [2, 3]], dtype=np.uint32))
    assert got.tolist() == [[0, 1], [3, 2]]
    huge = np.array([2**64 - 1, 2**63, 4, 3], dtype=np.uint64)
    assert scan.cells(huge).tolist() == [-1, -1, -1, 2]
    assert scan.cells([0, 5]).tolist() == [0, -1]


def test_cells_rejects_floats() -> None:
    with pytest.raises(SwmrRoiError):
        ScanGeometry((2, 2), snake=False).cells(np.array([0.0, 1.0]))


@pytest.mark.parametrize("index", [-1, 6, 100])
def test_position_outside_raises(index: int) -> None:
    with pytest.raises(SwmrRoiError):
        ScanGeometry((2, 3), snake=True).position(index)


@pytest.mark.parametrize(
    "shape", [(0, 5), (5, 0), (-1, 2), (2.0, 3), (True, 3), (1, 2, 3), (4,), 7]
)
def test_bad_shape_raises(shape: object) -> None:
    with pytest.raises(SwmrRoiError):
        ScanGeometry(shape, snake=False)  # type: ignore[arg-type]


def test_list_shape_equality_and_repr() -> None:
    scan = ScanGeometry([3, 4], snake=True)  # type: ignore[arg-type]
    assert scan == ScanGeometry((3, 4), True)
    assert hash(scan) == hash(ScanGeometry((3, 4), True))
    assert scan != ScanGeometry((3, 4), False)
    assert repr(scan) == "ScanGeometry((3, 4), snake=True)"
