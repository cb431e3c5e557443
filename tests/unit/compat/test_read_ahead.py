"""The swmr_tools DataSource reads complete frames ahead: same frames, no leaked thread."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from swmr_roi_ioc.compat.swmr_tools import DataSource

FRAMES = 40
SHAPE = (32, 48)


def _threads() -> int:
    return sum(t.name.startswith("swmr-tools-read-ahead") for t in threading.enumerate())


def _wait_threads(at_most: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while _threads() > at_most and time.monotonic() < deadline:
        time.sleep(0.02)
    return _threads()


@pytest.fixture(params=["none", "blosc"])
def scan(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A finished scan: compressible frames, and (blosc) some stored as is."""
    rng = np.random.default_rng(1)
    data = rng.poisson(3.0, size=(FRAMES, *SHAPE)).astype(np.uint16)
    data[::5] = rng.integers(0, 65535, size=(FRAMES // 5, *SHAPE), dtype=np.uint16)
    filters = dict(hdf5plugin.Blosc(cname="lz4")) if request.param == "blosc" else {}
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("data", data=data, maxshape=(None, *SHAPE), chunks=(1, *SHAPE), **filters)
        f.create_dataset("keys", data=np.ones(FRAMES, np.int32), maxshape=(None,))
        f.create_dataset("finished", data=np.ones(1, np.int32))
    return path, data


def test_frames_read_ahead_equal_the_file(scan: tuple[Path, np.ndarray]) -> None:
    path, data = scan
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        ds = DataSource([f["keys"]], {"data": f["data"]}, timeout=1, finished_dataset=f["finished"])
        got = [(d.index, d["data"].copy(), d.slice_metadata) for d in ds]
        ahead = ds.read_ahead
        assert ahead is not None
        assert ahead.hits > FRAMES // 2  # most frames came from the background reads
        assert ds.frame_readers["data"].reader is not None
        assert ds.frame_readers["data"].reader.fallback_frames == 0
        ds.close()
    assert [i for i, _, _ in got] == list(range(FRAMES))
    for i, frame, slices in got:
        assert frame.shape == (1, *SHAPE)
        np.testing.assert_array_equal(frame[0], data[i])
        assert slices == (slice(i, i + 1),)


def test_reset_mid_scan_reads_from_the_start(scan: tuple[Path, np.ndarray]) -> None:
    path, data = scan
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        ds = DataSource([f["keys"]], {"data": f["data"]}, timeout=1, finished_dataset=f["finished"])
        first = [next(ds)["data"][0].copy() for _ in range(7)]
        ds.reset()
        again = [d["data"][0].copy() for d in ds]
        ds.close()
    assert len(again) == FRAMES
    for i, frame in enumerate(first):
        np.testing.assert_array_equal(frame, data[i])
    for i, frame in enumerate(again):
        np.testing.assert_array_equal(frame, data[i])


def test_dropped_mid_scan_stops_its_thread(scan: tuple[Path, np.ndarray]) -> None:
    path, _ = scan
    before = _threads()
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        ds = DataSource([f["keys"]], {"data": f["data"]}, timeout=1, finished_dataset=f["finished"])
        for k, _ in enumerate(ds):
            if k == 3:
                break
        assert _threads() == before + 1
        del ds
        gc.collect()
        assert _wait_threads(before) == before


def test_no_read_ahead_for_array_likes() -> None:
    class Keys:
        shape = maxshape = (4,)
        ndim = 1
        name = "/keys"

        def refresh(self) -> None:
            pass

        def __getitem__(self, key: object) -> np.ndarray:
            return np.ones(4)[key]  # type: ignore[index]

    data = np.arange(4 * 6).reshape(4, 6)
    ds = DataSource([Keys()], {"d": data}, timeout=0.2)
    assert ds.read_ahead is None
    assert [int(d["d"].sum()) for d in ds] == [int(row.sum()) for row in data]
