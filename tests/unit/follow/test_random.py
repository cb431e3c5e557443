"""RandomReader: futures of arbitrary frame sets, equal to plain h5py reads."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.follow import FollowError, FrameIndexError, RandomReader, open_swmr
from swmr_roi_ioc.sim import DATA_PATH, SimOptions, write_file

SHAPE = (20, 30)
FRAMES = 12


@pytest.fixture(params=["none", "lz4", "blosc"])
def sim_file(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, np.ndarray]:
    path = tmp_path / "sim.h5"
    options = SimOptions(
        frames=FRAMES, rate_hz=0, shape=SHAPE, dtype="uint16", compression=request.param
    )
    write_file(path, options)
    with h5py.File(path, "r") as f:
        dset = f[DATA_PATH]
        assert isinstance(dset, h5py.Dataset)
        return path, np.asarray(dset[()])


def test_requests_return_futures_of_the_frames(sim_file: tuple[Path, np.ndarray]) -> None:
    path, data = sim_file
    with open_swmr(path) as f, RandomReader(f, DATA_PATH, workers=2) as reader:
        assert len(reader) == FRAMES
        assert reader.frame_shape == SHAPE
        requests: list[tuple[object, np.ndarray]] = [
            ([3, 0, 11, 3], data[[3, 0, 11, 3]]),
            (slice(2, 9, 3), data[2:9:3]),
            (slice(None), data),
            (range(5, 7), data[5:7]),
            (np.array([[1, 2], [4, 8]]), data[[1, 2, 4, 8]]),
            ([-1, -FRAMES], data[[-1, 0]]),
            ([], data[:0]),
        ]
        futures = [(reader.request(r), want) for r, want in requests]  # type: ignore[arg-type]
        for future, want in futures:
            assert isinstance(future, Future)
            np.testing.assert_array_equal(future.result(timeout=10), want)
        single = reader.request(7).result(timeout=10)
        assert single.shape == SHAPE
        np.testing.assert_array_equal(single, data[7])
        np.testing.assert_array_equal(reader.read(-2), data[-2])
        assert reader.get_direct([1, 2], lambda frames: int(frames.sum())) == int(
            data[[1, 2]].sum(dtype=np.int64)
        )


def test_large_requests_are_split_and_gathered(
    sim_file: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = sim_file
    with open_swmr(path) as f, RandomReader(f, DATA_PATH, workers=3) as reader:
        reader._piece = 2  # six pieces for the whole file
        threads: set[str] = set()
        original = reader.reader.read_indices

        def spy(indices: object, out: np.ndarray, *, parallel: bool = True) -> np.ndarray:
            threads.add(threading.current_thread().name)
            return original(indices, out, parallel=parallel)  # type: ignore[arg-type]

        monkeypatch.setattr(reader.reader, "read_indices", spy)
        order = np.random.default_rng(3).permutation(FRAMES)
        np.testing.assert_array_equal(reader.request(order).result(timeout=10), data[order])
        assert threads and all(name.startswith("random-reader") for name in threads)


def test_errors_fail_the_future(sim_file: tuple[Path, np.ndarray]) -> None:
    path, _ = sim_file
    with open_swmr(path) as f:
        reader = RandomReader(f, DATA_PATH)
        with pytest.raises(FrameIndexError):
            reader.request([0, FRAMES]).result(timeout=10)
        with pytest.raises(FrameIndexError):
            reader.request([-FRAMES - 1]).result(timeout=10)
        with pytest.raises(ValueError):
            reader.request(["x"]).result(timeout=10)  # type: ignore[list-item]
        reader.close(wait=True)
        with pytest.raises(FollowError):
            reader.request([0])


def test_close_without_wait_fails_pending_requests(sim_file: tuple[Path, np.ndarray]) -> None:
    path, _ = sim_file
    with open_swmr(path) as f:
        reader = RandomReader(f, DATA_PATH, workers=1)
        gate = threading.Event()
        original = reader.reader.read_indices

        def slow(indices: object, out: np.ndarray, *, parallel: bool = True) -> np.ndarray:
            gate.wait(5)
            return original(indices, out, parallel=parallel)  # type: ignore[arg-type]

        reader.reader.read_indices = slow  # type: ignore[method-assign]
        reader._piece = 1
        future = reader.request(range(4))
        reader.close(wait=False)
        gate.set()
        with pytest.raises(FollowError, match="closed"):
            future.result(timeout=10)
