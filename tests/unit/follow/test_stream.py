"""BlockStream: blocks, remainder, order, cyclic wrap, bounded buffer pool, live files."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.follow import (
    BlockGuard,
    BlockStream,
    FollowError,
    KeyFollower,
    open_swmr,
    shared_dataset,
)
from swmr_roi_ioc.sim import DATA_PATH, SimOptions, frame_pattern, write_file

SHAPE = (16, 24)
FRAMES = 10


@pytest.fixture(params=["none", "bslz4"])
def sim_file(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "sim.h5"
    write_file(
        path,
        SimOptions(
            frames=FRAMES, rate_hz=0, shape=SHAPE, dtype="uint16", compression=request.param
        ),
    )
    return path


def _expected(path: Path) -> np.ndarray:
    # HDF5 refuses a second open of a file in one process with other locking
    # flags than the first (open_swmr's: no locking, so writers are never refused)
    with h5py.File(path, "r", locking=False) as f:
        dset = f[DATA_PATH]
        assert isinstance(dset, h5py.Dataset)
        return np.asarray(dset[()])


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_blocks_in_order_with_remainder(sim_file: Path) -> None:
    expected = _expected(sim_file)
    with open_swmr(sim_file) as f, BlockStream(f, DATA_PATH, block_size=4) as stream:
        seen: list[tuple[int, int]] = []
        for guard in stream:
            with guard as block:
                assert block.shape == (guard.stop - guard.start, *SHAPE)
                np.testing.assert_array_equal(block, expected[guard.start : guard.stop])
                np.testing.assert_array_equal(guard.indices, np.arange(guard.start, guard.stop))
                seen.append((guard.start, guard.stop))
    assert seen == [(0, 4), (4, 8), (8, 10)]  # the remainder block is delivered


def test_unordered_delivers_every_frame_once(sim_file: Path) -> None:
    expected = _expected(sim_file)
    with open_swmr(sim_file) as f:
        stream = BlockStream(f, DATA_PATH, block_size=1, workers=3, ordered=False)
        got: dict[int, np.ndarray] = {}
        for guard in stream:
            with guard as block:
                got[guard.start] = block[0].copy()
        stream.close()
    assert sorted(got) == list(range(FRAMES))
    for index, frame in got.items():
        np.testing.assert_array_equal(frame, expected[index])


def _slow_first_block(stream: BlockStream) -> None:
    original = stream.reader.read_indices

    def read(indices: object, out: np.ndarray, *, parallel: bool = True) -> np.ndarray:
        if int(np.asarray(indices)[0]) == 0:
            time.sleep(0.3)
        return original(indices, out, parallel=parallel)  # type: ignore[arg-type]

    stream.reader.read_indices = read  # type: ignore[method-assign]


def test_unordered_is_first_ready(tmp_path: Path) -> None:
    """A block blocked in its read does not hold back later ones when unordered."""
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "d", data=np.arange(6 * 4, dtype=np.uint8).reshape(6, 2, 2), chunks=(1, 2, 2)
        )
    with open_swmr(path) as f:
        for ordered in (True, False):
            stream = BlockStream(f, "d", block_size=1, workers=2, ordered=ordered)
            _slow_first_block(stream)
            with stream:
                first = stream.get()
                assert first is not None
                assert (first.start == 0) is ordered
                first.release()
                rest = [g.start for g in stream]
            assert sorted([first.start, *rest]) == list(range(6))


def test_cyclic_wraps_blocks_across_the_end(sim_file: Path) -> None:
    expected = _expected(sim_file)
    with open_swmr(sim_file) as f, BlockStream(f, DATA_PATH, block_size=4, cyclic=True) as stream:
        indices: list[list[int]] = []
        for guard in stream:
            with guard as block:
                np.testing.assert_array_equal(block, expected[guard.indices])
                indices.append(guard.indices.tolist())
            if len(indices) == 4:
                break
    assert indices == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5]]


def test_pool_is_bounded_and_release_frees_a_buffer(sim_file: Path) -> None:
    with open_swmr(sim_file) as f:
        stream = BlockStream(f, DATA_PATH, block_size=1, read_ahead=2, workers=2)
        with stream:
            first = stream.get()
            second = stream.get()
            assert first is not None and second is not None
            time.sleep(0.3)
            assert stream.blocks_read == 2  # both buffers held: nothing read ahead
            kept = second.copy()
            with first:
                pass
            assert first.released
            with pytest.raises(FollowError):
                _ = first.block
            assert _wait_for(lambda: stream.blocks_read == 3)
            time.sleep(0.1)
            assert stream.blocks_read == 3
            del second  # a guard dropped without release frees its buffer too
            assert _wait_for(lambda: stream.blocks_read == 4)
            np.testing.assert_array_equal(kept, _expected(sim_file)[1:2])
            starts = [g.start for g in stream]
        assert starts == list(range(2, FRAMES))


def test_frames_generator_copies(sim_file: Path) -> None:
    expected = _expected(sim_file)
    with open_swmr(sim_file) as f, BlockStream(f, DATA_PATH, block_size=3, read_ahead=1) as s:
        frames = list(s.frames())
    assert [i for i, _ in frames] == list(range(FRAMES))
    for index, frame in frames:  # copies, still valid after the buffer was reused
        np.testing.assert_array_equal(frame, expected[index])


def test_start_and_default_block_size(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    data = np.arange(12 * 1024 * 1024 // 4, dtype=np.uint32).reshape(12, 256, 1024) % 1000
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=data, chunks=(2, 256, 1024))
    with open_swmr(path) as f, BlockStream(f, "d", start=3) as stream:
        assert stream.block_size == 8  # 1 MB frames, 2-frame chunks: 8 MB
        assert stream.reader.codec is None  # two frames per chunk: HDF5's read
        blocks = [(g.start, g.stop, g.copy()) for g in stream]
    assert [(a, b) for a, b, _ in blocks] == [(3, 11), (11, 12)]
    np.testing.assert_array_equal(np.concatenate([b for _, _, b in blocks]), data[3:])


def test_stop_ends_the_stream_with_a_short_block(sim_file: Path) -> None:
    expected = _expected(sim_file)
    with open_swmr(sim_file) as f, BlockStream(f, DATA_PATH, block_size=4, start=1, stop=7) as s:
        blocks = [(g.start, g.stop, g.copy()) for g in s]
    assert [(a, b) for a, b, _ in blocks] == [(1, 5), (5, 7)]
    np.testing.assert_array_equal(np.concatenate([b for _, _, b in blocks]), expected[1:7])
    with open_swmr(sim_file) as f, BlockStream(f, DATA_PATH, start=4, stop=4) as empty:
        assert empty.get() is None
    with open_swmr(sim_file) as f, pytest.raises(ValueError, match="stop"):
        BlockStream(f, DATA_PATH, start=4, stop=3)


def test_close_while_consumer_holds_guards(sim_file: Path) -> None:
    with open_swmr(sim_file) as f:
        stream = BlockStream(f, DATA_PATH, block_size=1, read_ahead=1, workers=2)
        guard = stream.get()
        assert isinstance(guard, BlockGuard)
        stream.close()  # workers wait for a buffer: close must not hang
        assert stream.get() is None
        guard.release()


def test_read_error_reaches_the_consumer(sim_file: Path) -> None:
    with open_swmr(sim_file) as f:
        stream = BlockStream(f, DATA_PATH, block_size=2)

        def broken(*_: object, **__: object) -> np.ndarray:
            raise OSError("disk on fire")

        stream.reader.read_indices = broken  # type: ignore[method-assign]
        with stream, pytest.raises(FollowError, match="disk on fire") as info:
            list(stream)
        assert isinstance(info.value.__cause__, OSError)


def test_missing_dataset() -> None:
    with pytest.raises(FollowError):
        with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
            BlockStream(f, "/nope")


async def test_async_iteration(sim_file: Path) -> None:
    with open_swmr(sim_file) as f, BlockStream(f, DATA_PATH, block_size=3) as stream:
        starts = []
        async for guard in stream:
            with guard:
                starts.append(guard.start)
            await asyncio.sleep(0)
    assert starts == [0, 3, 6, 9]


# -- a file being written by the simulated NDFileHDF5 writer in another process --


def _simulate(path: Path, frames: int, rate: float, compression: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "swmr_roi_ioc", "simulate", str(path)]
    cmd += ["--frames", str(frames), "--rate", str(rate), "--shape", *map(str, SHAPE)]
    cmd += ["--compression", compression, "--dtype", "uint16"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _open_when_ready(path: Path, proc: subprocess.Popen[bytes]) -> h5py.File:
    assert _wait_for(path.exists, 20), f"writer exited {proc.poll()}"
    return open_swmr(path, retries=40)


@pytest.mark.parametrize("mode", ["follower", "timeout"])
def test_follows_a_live_writer(tmp_path: Path, mode: str) -> None:
    frames, rate = 40, 100.0
    options = SimOptions(frames=frames, rate_hz=rate, shape=SHAPE, dtype="uint16")
    path = tmp_path / "live.h5"
    proc = _simulate(path, frames, rate, "bslz4")
    try:
        with _open_when_ready(path, proc) as f:
            if mode == "follower":
                follower = KeyFollower(f, [], timeout=2.0, dataset_paths=[DATA_PATH])
                stream = BlockStream(f, DATA_PATH, block_size=8, follower=follower)
            else:
                stream = BlockStream(f, DATA_PATH, block_size=8, timeout=2.0)
            seen: list[int] = []
            live_blocks = 0
            with stream:
                for guard in stream:
                    if proc.poll() is None:
                        live_blocks += 1
                    with guard as block:
                        for index, frame in zip(guard.indices.tolist(), block, strict=True):
                            np.testing.assert_array_equal(frame, frame_pattern(index, options))
                            seen.append(index)
            assert shared_dataset(f, DATA_PATH).shape[0] == frames
        assert seen == list(range(frames))
        assert live_blocks > 3  # delivered while the writer was still writing
    finally:
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()


def test_process_runs_in_the_workers(sim_file: Path) -> None:
    expected = _expected(sim_file)
    threads: set[str] = set()

    def totals(block: np.ndarray) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return block.sum(axis=(1, 2), dtype=np.uint64)

    with open_swmr(sim_file) as f:
        stream = BlockStream(f, DATA_PATH, block_size=3, process=totals)
        with stream:
            results = {g.start: g.result for g in stream}
    assert sorted(results) == [0, 3, 6, 9]
    for start, result in results.items():
        want = expected[start : start + 3].sum(axis=(1, 2), dtype=np.uint64)
        np.testing.assert_array_equal(result, want)
    assert threads and all(name.startswith("block-stream") for name in threads)


def test_process_error_ends_the_stream(sim_file: Path) -> None:
    def explode(block: np.ndarray) -> None:
        raise ZeroDivisionError("bad stats")

    with open_swmr(sim_file) as f, BlockStream(f, DATA_PATH, process=explode) as stream:
        with pytest.raises(FollowError, match="bad stats"):
            list(stream)
        assert stream.get() is None
