"""areaDetector extra dimensions: a half-filled row is not counted until written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.follow import DataSource, FrameReader, KeyFollower, open_swmr, shared_dataset

from .swmr_writer import DATA, UNIQUE_ID, Writer, expected_frame

StartWriter = Callable[..., Writer]

ROWS, COLS = 3, 4


@pytest.mark.parametrize("keys", [False, True])
def test_stepwise_extent_before_data_is_never_counted(
    start_writer: StartWriter, keys: bool
) -> None:
    writer = start_writer(frames=ROWS * COLS, scan=(ROWS, COLS), step=True, keys=keys)
    with open_swmr(writer.cfg.path) as f:
        kf = KeyFollower(
            f, [UNIQUE_ID] if keys else [], timeout=0.2, dataset_paths=[DATA], scan_rank=2
        )
        data = shared_dataset(f, DATA)  # never f[DATA] twice: see test_swmr.py
        writer.send()  # start
        for index in range(ROWS * COLS):
            assert writer.step() == f"extent {index}"
            assert kf.poll() == index  # the extent covers it, the data is not there
            data.refresh()
            if index == COLS:  # a new row: the extent covers it all, fill value
                assert data.shape[:2] == (2, COLS)
                assert not data[1].any()
            assert writer.step() == f"wrote {index}"
            assert kf.poll() == index + 1
        assert writer.step() == "done"
        assert list(kf) == list(range(ROWS * COLS))
        del data


def test_data_only_half_filled_row_of_a_closed_file(tmp_path: Path) -> None:
    """Extent (2, 4) with 5 frames written: 5 complete, not 8."""
    path = tmp_path / "half.h5"
    with h5py.File(path, "w", libver="latest") as f:
        d = f.create_dataset(
            DATA,
            shape=(2, COLS, 4, 4),
            maxshape=(None, None, 4, 4),
            chunks=(1, 1, 4, 4),
            dtype=np.uint32,
        )
        for index in range(5):
            d[divmod(index, COLS)] = expected_frame(index, 4, 4)
    with open_swmr(path) as f:
        kf = KeyFollower(f, [], timeout=0.1, dataset_paths=[DATA])
        assert kf.scan_rank == 2
        assert kf.poll() == 5
        source = DataSource(f, [], [DATA], timeout=0.1)
        got = [(s.index, s.position) for s in source]
        assert got == [(i, divmod(i, COLS)) for i in range(5)]
        reader = FrameReader(DATA, f, scan_rank=2)
        np.testing.assert_array_equal(reader.read_frame(4), expected_frame(4, 4, 4))


def test_gap_search_finds_the_written_prefix_in_few_lookups(tmp_path: Path) -> None:
    """A large extent with a long unwritten tail: O(log n) chunk look-ups."""
    path = tmp_path / "tail.h5"
    with h5py.File(path, "w", libver="latest") as f:
        d = f.create_dataset(
            DATA, shape=(1000, 2, 2), maxshape=(None, 2, 2), chunks=(1, 2, 2), dtype=np.uint8
        )
        d[:613] = 1
    with open_swmr(path) as f:
        kf = KeyFollower(f, [], dataset_paths=[DATA])
        tracker = kf._data[0]
        calls: list[int] = []
        written = tracker._written

        def counting(index: int, *args: object) -> bool:
            calls.append(index)
            return written(index, *args)  # type: ignore[arg-type]

        tracker._written = counting  # type: ignore[method-assign]
        assert kf.poll() == 613
        assert len(calls) < 25
        calls.clear()
        assert kf.poll() == 613  # nothing new: one look-up
        assert calls == [613]


def test_chunks_of_several_frames_trust_the_extent(tmp_path: Path) -> None:
    path = tmp_path / "multi.h5"
    with h5py.File(path, "w", libver="latest") as f:
        d = f.create_dataset(
            DATA, shape=(6, 2, 2), maxshape=(None, 2, 2), chunks=(4, 2, 2), dtype=np.uint8
        )
        d[:] = 1
    with open_swmr(path) as f:
        kf = KeyFollower(f, [], dataset_paths=[DATA], timeout=0.05)
        assert not kf._data[0].can_check_chunks
        assert kf.poll() == 6
