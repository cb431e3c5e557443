"""One followed file, seen from the IOC process: every HDF5 call is a request
to a worker (no HDF5 here).

The IOC process keeps what must survive a worker: how many frames were
processed (``done``), the file's spec and frame 0's stored bytes. When its
worker dies or is killed (stuck), the call fails with WorkerLostError; the
next call opens the file again in the replacement worker and goes on from
``done``, so every frame is counted exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from swmr_roi_ioc.stats import FrameStats, LiveViews, Roi

from ._errors import WorkerLostError
from ._pool import WorkerPool
from ._protocol import FileSpec, Opened, Polled, Processed, ViewParams

log = logging.getLogger(__name__)

#: Frames processed per request (keeps status responsive) ...
HOP_FRAMES = 256
#: ... and at most this many bytes of frames (a hop must stay far below BLOCKED_S).
HOP_BYTES = 256 * 2**20
#: A backlog of at least this many hops is shared with the other workers ...
PARALLEL_HOPS = 2
#: ... for at most this long per call (then the status is brought up to date).
CATCH_UP_S = 1.0
#: Frames read again per request (a ROI change): at most this many bytes, so
#: live frames queued behind it in the same worker wait a few ms only.
REREAD_BYTES = 64 * 2**20
REREAD_FRAMES = 1024
#: The worker that follows live.
LIVE_WORKER = 0

_keys = itertools.count(1)


class StatsSink(Protocol):
    """Where results go in the IOC process (the service's state)."""

    def rois_for_next_batch(self) -> list[Roi | None]: ...

    def add_batch(
        self, start: int, rois: Sequence[FrameStats | None], frame: FrameStats, unique_id: int
    ) -> None: ...

    def view_params(self) -> ViewParams: ...

    def set_live_views(self, views: LiveViews) -> None: ...


class RemoteAcquisition:
    """An open file being followed by a worker. Create with :meth:`open`."""

    def __init__(
        self, pool: WorkerPool, spec: FileSpec, sink: StatsSink, worker: int, *, views: bool
    ) -> None:
        self.path = Path(spec.path)
        self._pool = pool
        self._spec = spec
        self._sink = sink
        self._worker = worker
        self._key = next(_keys)
        #: its worker makes the live views of its newest frames (the live
        #: handle; helpers and handles reading again show no frames)
        self._views = views
        self._open_in_worker = False
        #: helper handles of this file in the other workers (catch-up), by worker
        self._helpers: dict[int, RemoteAcquisition] = {}
        self.parallel = True
        self._opened: Opened | None = None
        self._first_frame = spec.first_frame
        self._closed = False
        #: frames processed so far
        self.done = 0
        #: frames complete in the file at the last poll
        self.complete = 0
        self.last_new = time.monotonic()
        #: the file's "finished" dataset said so at the last poll
        self.finished = False
        #: NDArrayUniqueId was not yet flushed for the last frame processed
        self.keys_lag = False
        #: (rows, cols) of a scan-shaped dataset at the last poll
        self.scan_extent: tuple[int, int] | None = None
        #: frames the keys / the data's extent say complete at the last poll
        self.keys_complete: int | None = None
        self.extent_complete: int | None = None

    @classmethod
    async def open(
        cls, pool: WorkerPool, spec: FileSpec, sink: StatsSink, *, worker: int = LIVE_WORKER
    ) -> RemoteAcquisition:
        """Open in a worker; raises the worker's READ error."""
        acq = cls(pool, spec, sink, worker, views=True)
        await acq._ensure_open()
        return acq

    @property
    def keys_mode(self) -> str:
        """'extent' or 'wait': what configured keys lagging the data mean here."""
        return "wait" if self._opened is None else self._opened.keys_mode

    @property
    def frame_shape(self) -> tuple[int, int]:
        assert self._opened is not None
        return self._opened.frame_shape

    async def _call(self, op: str, *args: object) -> object:
        try:
            return await self._pool.call(self._worker, op, *args, about=str(self.path))
        except WorkerLostError:
            self._open_in_worker = False  # the next call opens it again
            raise

    @property
    def closed(self) -> bool:
        """Closed by :meth:`close`: it never opens its file again."""
        return self._closed

    async def _ensure_open(self) -> None:
        # a worker replaced between calls (found dead while idle) is a fresh
        # process: the file is opened in it again
        if self._open_in_worker and self._open_in == self._pool.generation(self._worker):
            return
        if self._closed:
            raise OSError(f"{self.path} is closed")
        spec = FileSpec(
            self._spec.path, self._spec.dataset, self._spec.keys, self._spec.timeout,
            self._spec.finished, self._first_frame, self._spec.keys_lag,
        )  # fmt: skip
        views = self._sink.view_params() if self._views else None
        if views is not None:
            self._pool.watch_views(self._key, self._sink.set_live_views)
        self._open_in = self._pool.generation(self._worker)
        opened = await self._call("open", self._key, spec, views)
        assert isinstance(opened, Opened)
        if self._opened is not None and opened.frame_shape != self._opened.frame_shape:
            raise WorkerLostError(f"{self.path} changed its frame shape")
        self._opened = opened
        self._open_in_worker = True
        if self._first_frame is not None:
            await self._call("check_same", self._key)

    async def poll(self) -> int:
        """Refresh; returns the number of complete frames."""
        await self._ensure_open()
        polled = await self._call("poll", self._key)
        assert isinstance(polled, Polled)
        extent = self.extent_complete
        self.complete, self.finished = polled.complete, polled.finished
        self.scan_extent = polled.scan_extent
        self.keys_complete, self.extent_complete = polled.keys_complete, polled.extent_complete
        if (self.extent_complete or 0) > (extent or 0):
            self.last_new = time.monotonic()  # frames arrive, keys or not: no timeout
        return self.complete

    def _hop(self, frames: int | None = None, nbytes: int | None = None) -> int:
        """Frames per request: at most ``frames`` and ``nbytes`` (HOP_FRAMES, HOP_BYTES)."""
        frames = HOP_FRAMES if frames is None else frames
        nbytes = HOP_BYTES if nbytes is None else nbytes
        assert self._opened is not None
        shape = self._opened.frame_shape
        frame_bytes = max(1, shape[0] * shape[1] * self._opened.itemsize)
        return max(1, min(frames, nbytes // frame_bytes))

    @property
    def reread_hop(self) -> int:
        """Frames per :meth:`roi_stats` request (REREAD_BYTES, REREAD_FRAMES)."""
        return self._hop(REREAD_FRAMES, REREAD_BYTES)

    async def process(self) -> int:
        """Process complete frames; returns how many. Live frames (less than
        PARALLEL_HOPS hops) go to this file's own worker at once, a hop
        (HOP_FRAMES, HOP_BYTES) at most. A backlog (a file found long, after
        a pause) is shared by every worker: each takes the next hop as soon
        as it is done with its last (no worker waits for the others), the
        results are applied in frame order, for at most CATCH_UP_S."""
        if self.complete <= self.done:
            return 0
        await self._ensure_open()
        first, hop = self.done, self._hop()
        rois = self._sink.rois_for_next_batch()
        if not self.parallel or self._pool.size == 1 or self.complete - first < PARALLEL_HOPS * hop:
            stop = min(self.complete, first + hop)
            result = await self._call("process", self._key, first, stop, rois)
            assert isinstance(result, Processed)
            self._apply(result)
        else:
            await self._catch_up(first, hop, rois)
        self.last_new = time.monotonic()
        return self.done - first

    async def _catch_up(self, first: int, hop: int, rois: list[Roi | None]) -> None:
        """Frames [first, complete) in hops over every worker, applied in order."""
        stop, deadline = self.complete, time.monotonic() + CATCH_UP_S
        ranges: dict[int, int] = {}  # start -> stop of the hops handed out
        results: dict[int, Processed | BaseException] = {}
        arrived = asyncio.Event()
        taken = first
        halted = False

        def take() -> tuple[int, int] | None:
            nonlocal taken
            if halted or taken >= stop or time.monotonic() > deadline:
                return None
            part = (taken, min(stop, taken + hop))
            taken = part[1]
            ranges[part[0]] = part[1]
            return part

        async def work(index: int) -> None:
            nonlocal halted
            while (part := take()) is not None:
                result: Processed | BaseException
                try:
                    if index == 0:
                        got = await self._call("process", self._key, *part, rois)
                    else:
                        got = await self._helper_part(index, *part, rois)
                    assert isinstance(got, Processed)
                    result = got
                except Exception as exc:  # noqa: BLE001 - applied in order, below
                    result, halted = exc, True
                results[part[0]] = result
                arrived.set()
                if isinstance(result, BaseException):
                    return

        tasks = [asyncio.create_task(work(i)) for i in range(self._pool.size)]
        try:
            while True:
                while (result := results.pop(self.done, None)) is not None:
                    if isinstance(result, BaseException):
                        if self.done == first:
                            raise result  # nothing applied: the lifecycle retries
                        log.debug("catch-up part from %d failed: %s", self.done, result)
                        return
                    assert isinstance(result, Processed)
                    short = result.done < ranges[self.done]
                    self._apply(result)
                    if short:  # stopped short (the file's end moved): the rest next time
                        halted = True
                        return
                if all(task.done() for task in tasks) and self.done not in results:
                    return
                arrived.clear()
                await arrived.wait()
        except asyncio.CancelledError:
            for task in tasks:  # their workers are replaced: a call cut short
                task.cancel()
            raise
        finally:
            # hops in flight are let finish (a call cancelled costs its worker)
            halted = True
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _helper(self, part: int) -> RemoteAcquisition:
        """This file open in the ``part``-th worker after its own (part > 0)."""
        if self._closed:
            raise OSError(f"{self.path} is closed")
        worker = (self._worker + part) % self._pool.size
        helper = self._helpers.get(worker)
        if helper is None:
            spec = FileSpec(
                self._spec.path, self._spec.dataset, self._spec.keys, self._spec.timeout,
                self._spec.finished, self._first_frame, self._spec.keys_lag,
            )  # fmt: skip
            helper = RemoteAcquisition(self._pool, spec, self._sink, worker, views=False)
            self._helpers[worker] = helper
        await helper._ensure_open()  # noqa: SLF001 - same class
        return helper

    async def _helper_part(
        self, index: int, start: int, stop: int, rois: list[Roi | None]
    ) -> object:
        helper = await self._helper(index)
        return await helper._call("catch_up", helper._key, start, stop, rois)  # noqa: SLF001

    def _apply(self, processed: Processed) -> None:
        for batch in processed.batches:
            self._sink.add_batch(batch.start, batch.rois, batch.frame, batch.unique_id)
        self.done = processed.done
        self.keys_lag = processed.keys_lag
        self._first_frame = self._first_frame or processed.first_frame

    async def drain(self) -> None:
        """One last poll, then every complete frame (the writer has finished)."""
        await self.poll()
        while await self.process():
            pass

    async def roi_stats(self, start: int, stop: int, roi: Roi, part: int = 0) -> FrameStats:
        """One ROI's statistics of frames [start, stop), read again from the
        file: by its own worker (part 0) or the part-th worker after it (the
        file is then open there too, as for a catch-up: a file is never open
        twice in one worker)."""
        if part % self._pool.size == 0:
            await self._ensure_open()
            stats = await self._call("roi_stats", self._key, start, stop, roi)
        else:
            helper = await self._helper(part)
            stats = await helper._call("roi_stats", helper._key, start, stop, roi)  # noqa: SLF001
        assert isinstance(stats, FrameStats)
        return stats

    async def reopen(self, worker: int = LIVE_WORKER) -> RemoteAcquisition:
        """The same file opened again after it was closed, to read frames
        already processed; RewrittenError if another file took its place."""
        spec = FileSpec(
            self._spec.path, self._spec.dataset, self._spec.keys, self._spec.timeout,
            self._spec.finished, self._first_frame, self._spec.keys_lag,
        )  # fmt: skip
        fresh = RemoteAcquisition(self._pool, spec, self._sink, worker, views=False)
        try:
            await fresh._ensure_open()  # noqa: SLF001 - same class
        except BaseException:
            await fresh.close()
            raise
        return fresh

    async def close(self) -> None:
        """Close the file in its worker (again: a no-op), and its helpers."""
        if self._closed:
            return
        self._closed = True
        helpers, self._helpers = list(self._helpers.values()), {}
        for helper in helpers:
            await helper.close()
        try:
            if self._open_in_worker:
                await self._pool.call(self._worker, "close", self._key)
        except OSError as exc:
            log.debug("closing %s: %s", self.path, exc)
        finally:
            self._open_in_worker = False

    async def configure_views(self, params: ViewParams) -> None:
        """New histogram settings: the live views are made again (also after
        the file closed, from the newest frame its worker keeps)."""
        if self._views:
            try:
                await self._pool.call(self._worker, "views", self._key, params)
            except OSError as exc:
                log.debug("views of %s: %s", self.path, exc)

    async def release(self) -> None:
        """Done with this acquisition: its file closed, its views forgotten."""
        await self.close()
        if self._views:
            self._pool.watch_views(self._key, None)
            try:
                await self._pool.call(self._worker, "forget", self._key)
            except OSError as exc:
                log.debug("forgetting %s: %s", self.path, exc)
