"""The simulated NDFileHDF5 writer: ADCore layout, content, pacing, stop."""

import threading
import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the LZ4/bitshuffle/Blosc filters)
import numpy as np
import pytest

from swmr_roi_ioc.sim import (
    ATTRIBUTES_GROUP,
    DATA_LINK_PATH,
    DATA_PATH,
    DETECTOR_ATTRIBUTES_GROUP,
    EPICS_EPOCH_OFFSET,
    PERFORMANCE_PATH,
    SimOptions,
    frame_pattern,
    write_file,
)
from swmr_roi_ioc.sim._writer import _position

KEYS = (
    "NDArrayUniqueId",
    "NDArrayTimeStamp",
    "NDArrayEpicsTSSec",
    "NDArrayEpicsTSnSec",
)


def test_layout_is_adcore_default(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "scan.h5"  # parent dirs are created
    options = SimOptions(frames=7, rate_hz=0, shape=(24, 32), dtype="uint16")
    t_before = time.time()
    assert write_file(path, options) == 7
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        for group, nx_class in [
            ("/entry", b"NXentry"),
            ("/entry/instrument", b"NXinstrument"),
            ("/entry/instrument/detector", b"NXdetector"),
            ("/entry/data", b"NXdata"),
            (ATTRIBUTES_GROUP, b"NXcollection"),
            (DETECTOR_ATTRIBUTES_GROUP, b"NXcollection"),
        ]:
            assert isinstance(f[group], h5py.Group)
            assert f[group].attrs["NX_class"] == nx_class

        data = f[DATA_PATH]
        assert data.shape == (7, 24, 32)
        assert data.maxshape == (None, 24, 32)
        assert data.chunks == (1, 24, 32)
        assert data.dtype == np.uint16
        assert data.fillvalue == 0
        assert data.attrs["NX_class"] == b"SDS"
        assert data.attrs["signal"] == 1
        assert data.attrs["signal"].dtype == np.int32
        # /entry/data/data is a hard link to the very same dataset
        assert isinstance(f["/entry/data"].get("data", getlink=True), h5py.HardLink)
        assert f[DATA_LINK_PATH] == data
        for i in range(7):
            np.testing.assert_array_equal(data[i], frame_pattern(i, options))

        dtypes = {
            "NDArrayUniqueId": np.int32,
            "NDArrayTimeStamp": np.float64,
            "NDArrayEpicsTSSec": np.uint32,
            "NDArrayEpicsTSnSec": np.uint32,
        }
        for name, dtype in dtypes.items():
            dset = f[f"{ATTRIBUTES_GROUP}/{name}"]
            assert dset.dtype == dtype
            assert dset.shape == (7, 1, 1)  # ADCore: two trailing dims of 1
            assert dset.maxshape == (None, 1, 1)
            assert dset.chunks == (7, 1, 1)  # NDAttributeChunk default: frames
            assert dset.attrs["NDAttrName"] == name.encode()
        keys = {k: f[f"{ATTRIBUTES_GROUP}/{k}"][:, 0, 0] for k in KEYS}
        np.testing.assert_array_equal(keys["NDArrayUniqueId"], np.arange(1, 8))
        stamps = keys["NDArrayTimeStamp"]
        assert np.all(np.diff(stamps) >= 0)
        assert t_before - EPICS_EPOCH_OFFSET - 1 < stamps[0] < time.time()
        np.testing.assert_array_equal(keys["NDArrayEpicsTSSec"], np.floor(stamps).astype(np.uint32))
        assert np.all(keys["NDArrayEpicsTSnSec"] < 1_000_000_000)
        color = f[f"{DETECTOR_ATTRIBUTES_GROUP}/ColorMode"]
        assert color.shape == (7, 1, 1) and not color[...].any()

        perf = f[PERFORMANCE_PATH]
        assert perf.shape == (7, 5) and perf.dtype == np.float64
        assert np.all(perf[:, 2] > 0) and np.all(np.diff(perf[:, 2]) >= 0)


@pytest.mark.parametrize(
    ("compression", "filter_id"),
    [("none", None), ("lz4", 32004), ("bslz4", 32008), ("blosc", 32001)],
)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_compression_reads_back_equal(
    tmp_path: Path, compression: str, filter_id: int | None, dtype: str
) -> None:
    path = tmp_path / "c.h5"
    options = SimOptions(frames=5, rate_hz=0, shape=(40, 56), dtype=dtype, compression=compression)
    write_file(path, options)
    with h5py.File(path, "r") as f:
        data = f[DATA_PATH]
        plist = data.id.get_create_plist()
        if filter_id is None:
            assert plist.get_nfilters() == 0
        else:
            assert plist.get_nfilters() == 1
            assert plist.get_filter(0)[0] == filter_id
        for i in range(5):
            np.testing.assert_array_equal(data[i], frame_pattern(i, options))


def test_extra_dims_grow_like_adcore() -> None:
    options = SimOptions(frames=12, scan=(3, 4), extra_dims=True)
    extents = [_position(i, options)[0] for i in range(12)]
    offsets = [_position(i, options)[1] for i in range(12)]
    assert extents == [(1, 1), (1, 2), (1, 3), (1, 4)] + [(2, 4)] * 4 + [(3, 4)] * 4
    assert offsets == [(r, c) for r in range(3) for c in range(4)]  # acquisition order
    flat = SimOptions(frames=3)
    assert [_position(i, flat) for i in range(3)] == [
        ((1,), (0,)),
        ((2,), (1,)),
        ((3,), (2,)),
    ]


@pytest.mark.parametrize("compression", ["none", "bslz4"])
def test_extra_dims_file(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "x.h5"
    options = SimOptions(
        frames=10,
        rate_hz=0,
        shape=(16, 20),
        scan=(3, 4),
        extra_dims=True,
        compression=compression,
        attribute_chunk=4,
    )
    assert write_file(path, options) == 10
    with h5py.File(path, "r") as f:
        data = f[DATA_PATH]
        assert data.shape == (3, 4, 16, 20)
        assert data.maxshape == (None, None, 16, 20)
        assert data.chunks == (1, 1, 16, 20)
        for r in range(3):
            for c in range(4):
                index = r * 4 + c
                if index < 10:
                    expected = frame_pattern(index, options)
                else:  # the half-filled last row reads as fill value
                    expected = np.zeros((16, 20), options.dtype)
                np.testing.assert_array_equal(data[r, c], expected)
        uid = f[f"{ATTRIBUTES_GROUP}/NDArrayUniqueId"]
        assert uid.shape == (3, 4, 1, 1)
        assert uid.chunks == (1, 4, 1, 1)
        expected_uid = np.arange(1, 13).reshape(3, 4)
        expected_uid[2, 2:] = 0
        np.testing.assert_array_equal(uid[:, :, 0, 0], expected_uid)


def test_rate_pacing_without_drift(tmp_path: Path) -> None:
    times: list[float] = []
    options = SimOptions(frames=21, rate_hz=50.0, shape=(8, 8))
    t0 = time.monotonic()
    write_file(tmp_path / "r.h5", options, on_frame=lambda i: times.append(time.monotonic()))
    elapsed = time.monotonic() - t0
    assert len(times) == 21
    # frame i is due at i/50 s: 20 periods = 0.4 s from the first to the last
    assert 0.35 < times[-1] - times[0] < 0.6
    assert elapsed < 2.0
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))


def test_as_fast_as_possible(tmp_path: Path) -> None:
    options = SimOptions(frames=200, rate_hz=0, shape=(8, 8))
    t0 = time.monotonic()
    assert write_file(tmp_path / "f.h5", options) == 200
    assert time.monotonic() - t0 < 5.0


def test_stop_closes_the_file_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    stop = threading.Event()
    seen: list[int] = []

    def on_frame(i: int) -> None:
        seen.append(i)
        if i == 4:
            stop.set()

    options = SimOptions(frames=1000, rate_hz=0, shape=(8, 12))
    assert write_file(path, options, stop=stop, on_frame=on_frame) == 5
    assert seen == [0, 1, 2, 3, 4]
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        assert f[DATA_PATH].shape == (5, 8, 12)
        uid = f[f"{ATTRIBUTES_GROUP}/NDArrayUniqueId"][:, 0, 0]
        np.testing.assert_array_equal(uid, [1, 2, 3, 4, 5])
        assert f[PERFORMANCE_PATH].shape == (5, 5)


def test_stop_interrupts_a_slow_rate(tmp_path: Path) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    t0 = time.monotonic()
    try:
        n = write_file(tmp_path / "slow.h5", SimOptions(frames=5, rate_hz=0.5), stop=stop)
    finally:
        timer.cancel()
    assert n == 1
    assert time.monotonic() - t0 < 1.5


def test_on_frame_called_at_flush_with_num_frames_flush(tmp_path: Path) -> None:
    calls: list[int] = []
    options = SimOptions(frames=10, rate_hz=0, shape=(8, 8), num_frames_flush=4)
    write_file(tmp_path / "n.h5", options, on_frame=calls.append)
    assert calls == list(range(10))
