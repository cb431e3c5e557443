"""KeyFollower.reset() reads keys again; a finished dataset must be one value;
an abandoned or dropped BlockStream stops its worker threads."""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.follow import BlockStream, KeyFollower, open_swmr


def _stream_threads() -> int:
    return sum(t.name.startswith("block-stream-") for t in threading.enumerate())


def _wait_no_stream_threads(before: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while _stream_threads() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    return _stream_threads()


class _Keys:
    """A key dataset in memory with h5py's interface (values can go back to 0)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.name = "/keys"
        self.ndim = values.ndim
        self.shape = values.shape
        self.maxshape = values.shape

    def refresh(self) -> None:
        pass

    def __getitem__(self, key: object) -> np.ndarray:
        return self.values[key]  # type: ignore[index]


def test_reset_reads_the_keys_again() -> None:
    keys = _Keys(np.ones(10))
    kf = KeyFollower.of_datasets([keys], timeout=0.2)
    assert list(kf) == list(range(10))
    keys.values[9] = 0
    kf.reset()
    # as a new follower: the key set back to 0 is incomplete again
    assert list(kf) == list(range(9))
    assert list(KeyFollower.of_datasets([keys], timeout=0.2)) == list(range(9))


def test_finished_dataset_of_several_values_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("keys", data=np.ones(4), maxshape=(None,))
        f.create_dataset("finished", data=np.array([1, 1, 1]))
        f.create_dataset("one", data=np.array([1]))
    with open_swmr(path) as f, caplog.at_level(logging.WARNING):
        kf = KeyFollower(f, ["/keys"], timeout=0.3, finished_dataset="/finished")
        start = time.monotonic()
        assert list(kf) == [0, 1, 2, 3]
        assert time.monotonic() - start >= 0.25  # not finished: waited for the timeout
        assert not kf.finished_flag
        assert "holds 3 values, not 1: ignored" in caplog.text
        single = KeyFollower(f, ["/keys"], timeout=5, finished_dataset="/one")
        start = time.monotonic()
        assert list(single) == [0, 1, 2, 3]
        assert time.monotonic() - start < 2
        assert single.finished_flag


@pytest.fixture
def frames_file(tmp_path: Path) -> Path:
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("data", data=np.arange(200 * 16).reshape(200, 4, 4), chunks=(1, 4, 4))
    return path


def test_abandoned_frames_generator_stops_the_threads(frames_file: Path) -> None:
    before = _stream_threads()
    with open_swmr(frames_file) as f:
        stream = BlockStream(f, "/data", block_size=4, read_ahead=2)
        for index, frame in stream.frames():
            assert frame[0, 0] == index * 16
            break
        assert _wait_no_stream_threads(before) == before
        assert stream.get() is None  # closed


def test_dropped_stream_stops_the_threads(frames_file: Path) -> None:
    before = _stream_threads()
    with open_swmr(frames_file) as f:
        stream = BlockStream(f, "/data", block_size=4, read_ahead=2)
        guard = stream.get()
        assert guard is not None
        guard.release()
        assert _stream_threads() == before + stream.workers
        del stream, guard
        gc.collect()
        assert _wait_no_stream_threads(before) == before
