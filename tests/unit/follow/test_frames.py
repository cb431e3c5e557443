"""FrameReader against plain numpy reads of a finished file."""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from swmr_roi_ioc.follow import FollowError, FrameIndexError, FrameReader, open_swmr

H, W = 6, 10


@pytest.fixture
def stack(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Rank 1: (7, H, W), LZ4-compressed single-frame chunks."""
    data = np.random.default_rng(1).integers(1, 60000, (7, H, W)).astype(np.uint16)
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset(
            "d", data=data, maxshape=(None, H, W), chunks=(1, H, W), **hdf5plugin.LZ4()
        )
    return path, data


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Rank 2: (3, 4, H, W) with a fixed max shape."""
    data = np.random.default_rng(2).integers(1, 255, (3, 4, H, W)).astype(np.uint8)
    path = tmp_path / "grid.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("d", data=data, chunks=(1, 1, H, W))
    return path, data


def test_rank1_reads_match_numpy(stack: tuple[Path, np.ndarray]) -> None:
    path, data = stack
    with open_swmr(path) as f:
        reader = FrameReader("d", f)
        assert reader.frame_shape == (H, W)
        assert reader.dtype == np.uint16
        for index in range(7):
            assert reader.scan_index(index) == (index,)
            np.testing.assert_array_equal(reader.read_frame(index), data[index])
        np.testing.assert_array_equal(reader.read_region(3, 1, 2, 4, 5), data[3, 1:5, 2:7])
        np.testing.assert_array_equal(reader.read_region(3, 4, 8, 9, 9), data[3, 4:, 8:])
        a, b = reader.read_regions(5, [(0, 0, 2, 2), (2, 3, 3, 4)])
        np.testing.assert_array_equal(a, data[5, :2, :2])
        np.testing.assert_array_equal(b, data[5, 2:5, 3:7])
        np.testing.assert_array_equal(reader.read_frames(2, 6), data[2:6])
        assert reader.read_frames(3, 3).shape == (0, H, W)
        with pytest.raises(FrameIndexError):
            reader.read_frame(7)
        with pytest.raises(FrameIndexError):
            reader.read_frames(5, 8)
        with pytest.raises(ValueError):
            reader.read_region(0, -1, 0, 2, 2)


def test_rank2_reads_match_numpy(grid: tuple[Path, np.ndarray]) -> None:
    path, data = grid
    flat = data.reshape(12, H, W)
    with open_swmr(path) as f:
        reader = FrameReader("d", f, scan_rank=2)
        assert reader.maxshape == (3, 4)
        for index in range(12):
            assert reader.scan_index(index) == divmod(index, 4)
            np.testing.assert_array_equal(reader.read_frame(index), flat[index])
        np.testing.assert_array_equal(reader.read_region(9, 2, 3, 3, 4), flat[9, 2:5, 3:7])
        for start, stop in [(0, 12), (1, 3), (3, 9), (5, 6), (4, 8)]:
            np.testing.assert_array_equal(reader.read_frames(start, stop), flat[start:stop])
        with pytest.raises(FrameIndexError):
            reader.read_frame(12)


def test_scan_index_over_a_fixed_max_shape_with_a_partial_extent(tmp_path: Path) -> None:
    """C order over the max shape: extent (2, 2) of max (2, 4) holds 0, 1, 4, 5."""
    path = tmp_path / "partial.h5"
    with h5py.File(path, "w", libver="latest") as f:
        d = f.create_dataset("d", shape=(2, 2, 2, 2), maxshape=(2, 4, 2, 2), dtype=np.int8)
        d[...] = np.arange(4, dtype=np.int8).reshape(2, 2, 1, 1)
    with open_swmr(path) as f:
        reader = FrameReader("d", f, scan_rank=2)
        assert reader.scan_index(5) == (1, 1)
        assert reader.read_frame(5)[0, 0] == 3
        with pytest.raises(FrameIndexError):
            reader.read_frame(2)  # (0, 2): outside the extent
        with pytest.raises(FrameIndexError):
            reader.read_frames(0, 5)


def test_bad_arguments(stack: tuple[Path, np.ndarray]) -> None:
    path, _ = stack
    with open_swmr(path) as f:
        with pytest.raises(FollowError, match="not found"):
            FrameReader("missing", f)
        with pytest.raises(FollowError, match="scan_rank"):
            FrameReader("d", f, scan_rank=4)
        with pytest.raises(FrameIndexError):
            FrameReader("d", f).read_frame(-1)
