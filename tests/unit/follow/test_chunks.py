"""ChunkReader: bit-identical to ``dset[i]`` on the fast path and every fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np
import pytest

from swmr_roi_ioc.follow import (
    ChunkReader,
    FrameIndexError,
    codec_available,
    open_swmr,
    shared_dataset,
)
from swmr_roi_ioc.sim import DATA_PATH, SimOptions, write_file

SHAPE = (24, 40)
FRAMES = 7


def _sim(tmp_path: Path, compression: str, dtype: str, **kw: Any) -> Path:
    path = tmp_path / f"{compression}_{dtype}.h5"
    options = SimOptions(
        frames=FRAMES, rate_hz=0, shape=SHAPE, dtype=dtype, compression=compression, **kw
    )
    write_file(path, options)
    return path


def _assert_like_h5py(reader: ChunkReader, dset: h5py.Dataset, count: int) -> None:
    expected = np.stack([dset[i] for i in range(count)])
    for i in range(count):
        frame = reader.read_frame(i)
        assert frame.dtype == dset[i].dtype
        np.testing.assert_array_equal(frame, expected[i])
    np.testing.assert_array_equal(reader.read_frames(0, count), expected)
    np.testing.assert_array_equal(reader.read_frames(0, count, parallel=False), expected)
    picks = [count - 1, 0, 2, 2, 1]
    np.testing.assert_array_equal(reader.read_indices(picks), expected[picks])
    assert reader.read_frames(3, 3).shape == (0, *SHAPE)


@pytest.mark.parametrize(
    ("compression", "dtype"),
    [
        ("none", "uint8"),
        ("none", "uint16"),
        ("lz4", "uint8"),
        ("lz4", "uint16"),
        ("bslz4", "uint8"),
        ("bslz4", "uint16"),
        ("bslz4", "float32"),
        ("blosc", "uint8"),
        ("blosc", "uint16"),
    ],
)
def test_fast_path_matches_h5py(tmp_path: Path, compression: str, dtype: str) -> None:
    if not codec_available(compression):
        pytest.skip(f"no library for {compression}")
    path = _sim(tmp_path, compression, dtype)
    with open_swmr(path) as f, ChunkReader(shared_dataset(f, DATA_PATH)) as reader:
        assert reader.codec == compression, reader.reason
        assert reader.fast
        _assert_like_h5py(reader, shared_dataset(f, DATA_PATH), FRAMES)
        assert reader.fallback_frames == 0
        assert reader.fast_frames > FRAMES


def test_extra_dims_scan_rank_2(tmp_path: Path) -> None:
    path = _sim(tmp_path, "bslz4", "uint16", extra_dims=True, scan=(3, 3))
    with open_swmr(path) as f:
        dset = shared_dataset(f, DATA_PATH)
        reader = ChunkReader(dset, scan_rank=2)
        assert reader.codec == "bslz4"
        for index in range(FRAMES):
            row, col = divmod(index, 3)
            np.testing.assert_array_equal(reader.read_frame(index), dset[row, col])
        assert reader.position(4) == (1, 1)
        with pytest.raises(FrameIndexError):
            reader.read_frame(9)  # (3, 0): past the rows written
        assert reader.frame_count() == FRAMES + 2  # the last row is in the extent


def test_fallback_scan_rank_2_reads_each_frame(tmp_path: Path) -> None:
    """HDF5's own read of one frame at a 2-D scan position (gzip: no fast path)."""
    grid = NOISE[:4].reshape(2, 2, *SHAPE)
    path = tmp_path / "grid.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("d", data=grid, chunks=(1, 1, *SHAPE), compression="gzip")
    with open_swmr(path) as f:
        reader = ChunkReader(shared_dataset(f, "d"), scan_rank=2)
        assert reader.codec is None
        for index in range(4):
            np.testing.assert_array_equal(reader.read_frame(index), NOISE[index])
        assert reader.fallback_frames == 4
        with pytest.raises(FrameIndexError):
            reader.read_frame(4)


def _h5(tmp_path: Path, data: np.ndarray[Any, Any], **kw: Any) -> Path:
    path = tmp_path / "custom.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("d", data=data, maxshape=(None, *data.shape[1:]), **kw)
    return path


RNG = np.random.default_rng(7)
NOISE = RNG.integers(0, 65535, (5, *SHAPE)).astype(np.uint16)


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"chunks": (2, *SHAPE)}, "not one frame"),
        ({"chunks": (1, 8, 8)}, "not one frame"),
        ({"chunks": (1, *SHAPE), "compression": "gzip"}, "no fast path"),
        ({"chunks": (1, *SHAPE), "shuffle": True, **hdf5plugin.LZ4()}, "2 filters"),
        ({"chunks": (1, *SHAPE), "fletcher32": True}, "no fast path"),
        ({"chunks": (1, *SHAPE), **hdf5plugin.Bitshuffle(cname="none")}, "without LZ4"),
    ],
)
def test_fallback_layouts_match_h5py(tmp_path: Path, kw: dict[str, Any], why: str) -> None:
    path = _h5(tmp_path, NOISE, **kw)
    with open_swmr(path) as f:
        dset = shared_dataset(f, "d")
        reader = ChunkReader(dset)
        assert reader.codec is None
        assert why in reader.reason
        _assert_like_h5py(reader, dset, len(NOISE))
        assert reader.fast_frames == 0


def test_contiguous_and_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("contiguous", data=NOISE)
        f.create_dataset("big", data=NOISE.astype(">u2"), chunks=(1, *SHAPE))
    with open_swmr(path) as f:
        contiguous = ChunkReader(shared_dataset(f, "contiguous"))
        assert contiguous.codec is None
        _assert_like_h5py(contiguous, shared_dataset(f, "contiguous"), len(NOISE))
        big = ChunkReader(shared_dataset(f, "big"))
        assert big.codec == "none"
        assert big.dtype == np.dtype(">u2")
        _assert_like_h5py(big, shared_dataset(f, "big"), len(NOISE))


def test_bitshuffle_zstd(tmp_path: Path) -> None:
    if not codec_available("bszstd"):
        pytest.skip("no dectris-compression")
    path = _h5(tmp_path, NOISE, chunks=(1, *SHAPE), **hdf5plugin.Bitshuffle(cname="zstd"))
    with open_swmr(path) as f:
        reader = ChunkReader(shared_dataset(f, "d"))
        assert reader.codec == "bszstd"
        _assert_like_h5py(reader, shared_dataset(f, "d"), len(NOISE))
        assert reader.fallback_frames == 0


def test_incompressible_lz4_and_blosc(tmp_path: Path) -> None:
    noise = RNG.integers(0, 256, (4, 64, 64)).astype(np.uint8)
    for name, kw in [("lz4", hdf5plugin.LZ4()), ("blosc", hdf5plugin.Blosc(cname="lz4"))]:
        path = tmp_path / f"{name}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("d", data=noise, chunks=(1, 64, 64), **kw)
        with open_swmr(path) as f:
            reader = ChunkReader(shared_dataset(f, "d"))
            assert reader.codec == name
            np.testing.assert_array_equal(reader.read_frames(0, 4), noise)


def test_skipped_filter_copied_and_unwritten_chunk_falls_back(tmp_path: Path) -> None:
    """A chunk stored with its filter skipped (mask 1) is copied as stored;
    a chunk never written reads as fill value through HDF5."""
    path = tmp_path / "mask.h5"
    with h5py.File(path, "w", libver="latest") as f:
        dset = f.create_dataset(
            "d", shape=(3, *SHAPE), maxshape=(None, *SHAPE), chunks=(1, *SHAPE),
            dtype=np.uint16, fillvalue=7, **hdf5plugin.LZ4(),
        )  # fmt: skip
        dset[0] = NOISE[0]
        dset.id.write_direct_chunk((1, 0, 0), NOISE[1].tobytes(), filter_mask=1)
    with open_swmr(path) as f:
        dset = shared_dataset(f, "d")
        reader = ChunkReader(dset)
        assert reader.codec == "lz4"
        frames = [reader.read_frame(i) for i in range(3)]
        np.testing.assert_array_equal(frames[0], NOISE[0])
        np.testing.assert_array_equal(frames[1], dset[1])
        np.testing.assert_array_equal(frames[1], NOISE[1])
        np.testing.assert_array_equal(frames[2], dset[2])
        assert (frames[2] == 7).all()  # fill value
        assert reader.fast_frames == 2
        assert reader.fallback_frames == 1
        np.testing.assert_array_equal(reader.read_frames(0, 3), dset[0:3])


def test_out_buffers_and_errors(tmp_path: Path) -> None:
    path = _sim(tmp_path, "none", "uint16")
    with open_swmr(path) as f:
        dset = shared_dataset(f, DATA_PATH)
        reader = ChunkReader(dset)
        out = reader.empty(3)
        assert reader.read_frames(2, 5, out) is out
        np.testing.assert_array_equal(out, dset[2:5])
        frame = np.empty(SHAPE, np.uint16)
        assert reader.read_frame(4, frame) is frame
        with pytest.raises(ValueError, match="C-contiguous"):
            reader.read_frames(0, 2, np.empty((2, *SHAPE), np.uint8))
        with pytest.raises(ValueError, match="C-contiguous"):
            reader.read_frames(0, 2, np.empty((2, SHAPE[0], SHAPE[1] * 2), np.uint16)[:, :, ::2])
        with pytest.raises(FrameIndexError):
            reader.read_frame(FRAMES)
        with pytest.raises(FrameIndexError):
            reader.read_frames(3, 1)
        assert reader.frame_count() == FRAMES
