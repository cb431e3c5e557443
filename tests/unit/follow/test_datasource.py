"""DataSource: per complete index, the frames of every dataset (swmr_tools' shape)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.follow import DataSource, SliceDict, open_swmr


@pytest.fixture
def scan_file(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 2x3 grid scan, 6 keys of which the last is still zero."""
    rng = np.random.default_rng(3)
    image = rng.integers(1, 100, (2, 3, 4, 5)).astype(np.int32)
    spectrum = rng.random((2, 3, 7))
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("entry/image", data=image, chunks=(1, 1, 4, 5))
        f.create_dataset("entry/spectrum", data=spectrum, chunks=(1, 1, 7))
        f["entry/keys/uid"] = np.array([[1, 2, 3], [4, 5, 0]])
    return path, image, spectrum


def test_frames_of_each_complete_index(scan_file: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, image, spectrum = scan_file
    with open_swmr(path) as f:
        source = DataSource(
            f, ["/entry/keys"], ["/entry/image", "/entry/spectrum"], timeout=0.2, scan_rank=2
        )
        got = list(source)
    assert [s.index for s in got] == [0, 1, 2, 3, 4]
    for s in got:
        assert isinstance(s, SliceDict)
        row, col = divmod(s.index, 3)
        assert s.position == (row, col)
        assert s.slice_metadata == (slice(row, row + 1), slice(col, col + 1))
        assert s.maxshape == (2, 3)
        np.testing.assert_array_equal(s.data[0], image[row, col])
        np.testing.assert_array_equal(s.data[1], spectrum[row, col])
        np.testing.assert_array_equal(s["/entry/image"], image[row, col])
        assert list(s) == ["/entry/image", "/entry/spectrum"]


async def test_default_scan_rank_and_async(
    scan_file: tuple[Path, np.ndarray, np.ndarray],
) -> None:
    path, image, _ = scan_file
    with open_swmr(path) as f:
        source = DataSource(f, [], ["/entry/image"], timeout=0.2)
        assert source.kf.scan_rank == 2  # frames are the last two dims
        out: list[int] = []
        async for s in source:
            np.testing.assert_array_equal(s.data[0], image.reshape(6, 4, 5)[s.index])
            out.append(s.index)
        assert source.finished  # fixed max shape, all 6 there
    assert out == list(range(6))
