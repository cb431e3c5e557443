"""A real SWMR reader follows the simulated writer running in another process."""

import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.sim import (
    ATTRIBUTES_GROUP,
    DATA_PATH,
    SimOptions,
    frame_pattern,
    write_file,
)

UID_PATH = f"{ATTRIBUTES_GROUP}/NDArrayUniqueId"


@dataclass
class Observed:
    """What the reader saw at each poll: (data extent, uid non-zero count)."""

    polls: list[tuple[tuple[int, ...], int]] = field(default_factory=list)
    frames_checked: set[int] = field(default_factory=set)


def _open_swmr(path: Path, proc: multiprocessing.Process, timeout: float = 20.0) -> h5py.File:
    deadline = time.monotonic() + timeout
    while True:
        alive = proc.is_alive()
        try:
            return h5py.File(path, "r", libver="latest", swmr=True)
        except OSError:  # not there yet, or not yet in SWMR mode
            if not alive or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _follow(path: Path, options: SimOptions, proc: multiprocessing.Process) -> Observed:
    """Poll like a follower until the writer exits; check every flushed frame."""
    seen = Observed()
    cols = options.scan_shape[1]
    with _open_swmr(path, proc) as f:
        data, uid = f[DATA_PATH], f[UID_PATH]
        while True:
            alive = proc.is_alive()
            # the keys before the data: the writer flushes the data first, so
            # keys read before the data can never be ahead of it (read after,
            # they could count frames appended between the two refreshes)
            uid.refresh()
            uids = uid[...].ravel()
            data.refresh()
            extent = data.shape[:-2]
            seen.polls.append((extent, int(np.count_nonzero(uids))))
            # frames flushed for sure: those before the last extension (with
            # extra dims the last row's fill is unknown until the next row)
            if options.extra_dims:
                rows_seen, cols_seen = extent
                sure = cols_seen - 1 if rows_seen == 1 else (rows_seen - 1) * cols
            else:
                sure = extent[0] - 1
            for index in range(sure):
                if index not in seen.frames_checked:
                    where = divmod(index, cols) if options.extra_dims else (index,)
                    np.testing.assert_array_equal(data[where], frame_pattern(index, options))
                    seen.frames_checked.add(index)
            if not alive:
                return seen
            time.sleep(0.002)


def _run(path: Path, options: SimOptions) -> Observed:
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=write_file, args=(str(path), options))
    proc.start()
    try:
        seen = _follow(path, options, proc)
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    return seen


def _check_final(path: Path, options: SimOptions) -> None:
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        uid = f[UID_PATH][...].ravel()
        data = f[DATA_PATH]
        np.testing.assert_array_equal(uid[: options.frames], np.arange(1, options.frames + 1))
        cols = options.scan_shape[1]
        for index in range(options.frames):
            where = divmod(index, cols) if options.extra_dims else (index,)
            np.testing.assert_array_equal(data[where], frame_pattern(index, options))


def test_reader_sees_growth_and_lagging_keys(tmp_path: Path) -> None:
    path = tmp_path / "live.h5"
    # NDAttributeChunk default (= frames): keys are flushed only at the end
    options = SimOptions(frames=40, rate_hz=100.0, shape=(32, 40), dtype="uint16")
    seen = _run(path, options)
    extents = [e[0] for e, _ in seen.polls]
    assert extents == sorted(extents)
    assert len(set(extents)) >= 5  # watched it grow
    assert len(seen.frames_checked) >= 30
    # data ran ahead of the keys: uid was zeros / short while frames were there
    assert any(n >= 10 and k < n - 1 for (n,), k in seen.polls)
    _check_final(path, options)


def test_keys_flushed_every_attribute_chunk(tmp_path: Path) -> None:
    path = tmp_path / "chunk.h5"
    options = SimOptions(frames=48, rate_hz=100.0, shape=(16, 16), dtype="uint8", attribute_chunk=8)
    seen = _run(path, options)
    # keys never run ahead of the data (chunk is a multiple of NumFramesFlush)
    assert all(k <= n for (n,), k in seen.polls)
    lagging = [(n, k) for (n,), k in seen.polls if k < n - 1]
    assert lagging, "keys never lagged the data"
    assert any(k >= 8 for _, k in lagging)  # a chunk flush became visible mid-run
    _check_final(path, options)


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_reader_follows_extra_dims(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "xd.h5"
    options = SimOptions(
        frames=20,
        rate_hz=100.0,
        shape=(16, 24),
        scan=(4, 5),
        extra_dims=True,
        compression=compression,
    )
    seen = _run(path, options)
    valid = {(1, c) for c in range(1, 6)} | {(r, 5) for r in range(2, 5)}
    extents = [e for e, _ in seen.polls]
    assert set(extents) <= valid
    flat = [(r - 1) * 5 + c if r > 1 else c for r, c in extents]
    assert flat == sorted(flat)
    assert len(set(extents)) >= 4
    _check_final(path, options)
