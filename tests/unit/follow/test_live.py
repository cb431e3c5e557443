"""Following a real SWMR writer in another process, sync and async."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from swmr_roi_ioc.follow import DataSource, FrameReader, KeyFollower, open_swmr, shared_dataset

from .swmr_writer import DATA, FINISHED, UNIQUE_ID, Writer, expected_frame

StartWriter = Callable[..., Writer]

FRAMES = 60
TIMEOUT = 0.5


def test_sync_follower_sees_every_frame_once_in_order(start_writer: StartWriter) -> None:
    writer = start_writer(frames=FRAMES, rate=300)
    with open_swmr(writer.cfg.path) as f:
        kf = KeyFollower(f, [UNIQUE_ID], timeout=TIMEOUT, dataset_paths=[DATA])
        reader = FrameReader(DATA, f)
        keys = shared_dataset(f, UNIQUE_ID)
        writer.send()
        seen: list[int] = []
        for index in kf:
            seen.append(index)
            np.testing.assert_array_equal(reader.read_frame(index), expected_frame(index, 8, 8))
            assert keys[index] == index + 1
    assert writer.expect() == "done"
    assert seen == list(range(FRAMES))
    assert kf.complete == FRAMES
    assert not kf.finished


async def test_async_follower_sees_every_frame_once_in_order(start_writer: StartWriter) -> None:
    writer = start_writer(frames=FRAMES, rate=300)
    with open_swmr(writer.cfg.path) as f:
        kf = KeyFollower(f, [UNIQUE_ID], timeout=TIMEOUT, dataset_paths=[DATA])
        reader = FrameReader(DATA, f)
        writer.send()
        ticks = 0

        async def ticker() -> None:  # the event loop keeps running while we wait
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        seen: list[int] = []
        try:
            async for index in kf:
                seen.append(index)
                frame = await asyncio.to_thread(reader.read_frame, index)
                np.testing.assert_array_equal(frame, expected_frame(index, 8, 8))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert writer.expect() == "done"
    assert seen == list(range(FRAMES))
    assert ticks > 10


def test_stops_on_timeout_after_the_writer_stops(start_writer: StartWriter) -> None:
    writer = start_writer(frames=20, rate=400)
    with open_swmr(writer.cfg.path) as f:
        kf = KeyFollower(f, [UNIQUE_ID], timeout=TIMEOUT)
        writer.send()
        seen = [next(kf)]
        assert writer.expect() == "done"
        done = time.monotonic()
        seen.extend(kf)
        waited = time.monotonic() - done
    assert seen == list(range(20))
    assert TIMEOUT * 0.9 <= waited < TIMEOUT + 0.5


def test_keys_lagging_the_data_hold_frames_back(start_writer: StartWriter) -> None:
    """Keys flushed every 16 frames: a frame is yielded only once its key is."""
    writer = start_writer(frames=64, rate=200, key_flush=16)
    with open_swmr(writer.cfg.path) as f:
        kf = KeyFollower(f, [UNIQUE_ID], timeout=TIMEOUT)
        reader = FrameReader(DATA, f)
        keys = shared_dataset(f, UNIQUE_ID)
        writer.send()
        seen: list[int] = []
        lag = 0
        for index in kf:
            seen.append(index)
            keys.refresh()
            assert keys[index] == index + 1
            np.testing.assert_array_equal(reader.read_frame(index), expected_frame(index, 8, 8))
            lag = max(lag, reader.dataset.shape[0] - kf.complete)
    assert seen == list(range(64))
    assert lag > 0  # the data ran ahead of the keys at some point


def test_data_only_follows_the_written_extent(start_writer: StartWriter) -> None:
    writer = start_writer(frames=FRAMES, rate=300, keys=False)
    with open_swmr(writer.cfg.path) as f:
        source = DataSource(f, [], [DATA], timeout=TIMEOUT)
        writer.send()
        seen: list[int] = []
        for frames in source:
            seen.append(frames.index)
            np.testing.assert_array_equal(frames.data[0], expected_frame(frames.index, 8, 8))
    assert seen == list(range(FRAMES))


def test_finished_dataset_stops_without_waiting_for_the_timeout(
    start_writer: StartWriter,
) -> None:
    writer = start_writer(frames=30, rate=300, finished=True)
    with open_swmr(writer.cfg.path) as f:
        kf = KeyFollower(f, [UNIQUE_ID], timeout=30, finished_dataset=FINISHED)
        writer.send()
        start = time.monotonic()
        seen = list(kf)
        elapsed = time.monotonic() - start
    assert seen == list(range(30))
    assert kf.finished
    assert elapsed < 5


def test_empty_keys_at_first_poll(start_writer: StartWriter) -> None:
    """swmr_tools 0.9 crashes when the key dataset is still empty."""
    writer = start_writer(frames=10, rate=300)
    with open_swmr(writer.cfg.path) as f:
        kf = KeyFollower(f, [UNIQUE_ID], timeout=TIMEOUT, dataset_paths=[DATA])
        assert shared_dataset(f, UNIQUE_ID).shape == (0,)
        assert kf.poll() == 0
        assert kf.poll() == 0
        writer.send()
        assert list(kf) == list(range(10))
