"""The worker processes, seen from the IOC process (no HDF5 here).

Each worker is a fresh interpreter (``python -m swmr_roi_ioc.engine._worker``,
spawn semantics) joined by a socket pair; it is kept alive across
acquisitions. A call sends one request and awaits its reply; a thread per
worker receives the replies (a worker stopped half-way through a reply
stalls that thread, never the event loop).

The watchdog looks at every call in flight: one that has not returned after
BLOCKED_S is reported to ``on_blocked`` (the reads of that file are blocked:
a stuck file server); after ``stall_timeout`` the worker is killed, its call
fails with :class:`WorkerLostError` and a new worker takes its place. A
worker that dies (SIGKILL, a crash) is replaced the same way. The caller
makes the call again: following resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from swmr_roi_ioc.stats import LiveViews

from ._errors import WorkerLostError, rebuild

log = logging.getLogger(__name__)

#: A call not returned after this long is reported (a MINOR alarm).
BLOCKED_S = 2.0
#: How often the watchdog looks while a call is in flight (a blocked call is
#: reported within BLOCKED_S + WATCH_S), and while every worker is idle (a
#: worker that died is replaced within that long).
WATCH_S = 0.25
WATCH_IDLE_S = 1.0
#: An idle worker is pinged this often (one stopped while idle is found).
PING_S = 5.0
#: A worker not ready after this long (imports, on a loaded machine) is replaced.
STARTUP_S = 120.0
#: what a blocked call is about: (its file, seconds blocked, past stall_timeout)
BlockedCallback = Callable[[str, float, bool], None]
#: where a file's live views go (see ``WorkerPool.watch_views``)
ViewsCallback = Callable[[LiveViews], None]


class _Worker:
    """One worker process and its socket; one call at a time."""

    def __init__(
        self,
        index: int,
        generation: int,
        on_views: Callable[[int, LiveViews], None],
        threads: int,
    ) -> None:
        self._on_views = on_views
        self.generation = generation
        self.name = f"engine-{index}.{generation}"
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "swmr_roi_ioc.engine._worker",
                str(theirs.fileno()),
                str(threads),
            ],  # fmt: skip
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._socket = ours
        self.conn = Connection(ours.detach())
        self.lock = asyncio.Lock()
        #: the call in flight: its future, when it started, its file
        self.future: asyncio.Future[tuple[Any, ...]] | None = None
        self.since = time.monotonic()
        self.about = ""
        self.alive = True
        self._loop = asyncio.get_running_loop()
        #: set when the worker said it is ready (its start-up is not a stall)
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self._reader = threading.Thread(target=self._receive, name=self.name, daemon=True)
        self._reader.start()

    def _receive(self) -> None:
        while True:
            try:
                reply = self.conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001 - an unreadable reply
                reply = ("error", "read", f"unreadable reply from {self.name}: {exc}")
            self._loop.call_soon_threadsafe(self._resolve, reply)
        with contextlib.suppress(RuntimeError):  # the loop may be closed at exit
            self._loop.call_soon_threadsafe(self._lost, f"worker {self.name} exited")

    def _resolve(self, reply: tuple[Any, ...]) -> None:
        if reply[0] == "ready":
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if reply[0] == "views":  # pushed, not a reply
            self._on_views(reply[1], reply[2])
            return
        if self.future is not None and not self.future.done():
            self.future.set_result(reply)

    def _lost(self, why: str) -> None:
        self.alive = False
        if not self.ready.done():
            self.ready.set_exception(WorkerLostError(why))
            self.ready.exception()  # retrieved: nobody may be waiting
        if self.future is not None and not self.future.done():
            self.future.set_exception(WorkerLostError(why))

    def kill(self, why: str) -> None:
        """Kill the process (stuck or unwanted); its call fails with ``why``."""
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self._lost(why)

    def close(self, wait_s: float = 0.0) -> None:
        """Close the socket (the worker then exits); wait up to ``wait_s`` for
        it, then kill it. Never waits longer: a process blocked in a read of
        a hung file server (FUSE, NFS) cannot die before the read returns, so
        it is reaped by a thread whenever it does."""
        self.alive = False
        with contextlib.suppress(OSError):
            self.conn.close()
        try:
            self.process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        threading.Thread(target=self.process.wait, name=f"reap-{self.name}", daemon=True).start()


class WorkerPool:
    """``workers`` worker processes, replaced when stuck or dead."""

    def __init__(
        self,
        workers: int | None,
        stall_timeout: float,
        on_blocked: BlockedCallback | None = None,
    ) -> None:
        self.size = max(1, workers or os.cpu_count() or 1)
        #: threads per worker for a long range: the cores shared among the workers
        self.threads = max(1, (os.cpu_count() or 1) // self.size)
        self.stall_timeout = stall_timeout
        self.on_blocked = on_blocked
        self._workers: list[_Worker] = []
        self._generations = itertools.count()
        self._watch: asyncio.Task[None] | None = None
        self._pings: set[asyncio.Task[None] | None] = set()
        #: file key -> where its live views go
        self._views: dict[int, ViewsCallback] = {}
        #: when the reads of a file first stopped returning (across workers)
        self._blocked_since: dict[str, float] = {}

    def spawn(self) -> None:
        """Start the worker processes (from the event loop's thread); they
        import and get ready while the IOC builds its records."""
        if not self._workers:
            self._workers = [
                _Worker(i, next(self._generations), self._views_made, self.threads)
                for i in range(self.size)
            ]

    async def start(self) -> None:
        """Spawn (if not yet) and watch the workers."""
        self.spawn()
        self._watch = asyncio.create_task(self._watchdog(), name="engine-watchdog")

    async def close(self) -> None:
        for task in [self._watch, *self._pings]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        workers, self._workers = self._workers, []
        await asyncio.to_thread(lambda: [w.close(wait_s=2.0) for w in workers])

    def watch_views(self, key: int, callback: ViewsCallback | None) -> None:
        """Live views of file ``key`` go to ``callback`` (None: nowhere)."""
        if callback is None:
            self._views.pop(key, None)
        else:
            self._views[key] = callback

    def _views_made(self, key: int, views: LiveViews) -> None:
        callback = self._views.get(key)
        if callback is not None:  # else a file already forgotten
            callback(views)

    def _replace(self, index: int) -> _Worker:
        old = self._workers[index]
        with contextlib.suppress(Exception):
            old.close()
        worker = _Worker(index, next(self._generations), self._views_made, self.threads)
        self._workers[index] = worker
        log.info("worker %s replaced by %s", old.name, worker.name)
        return worker

    def worker_pid(self, index: int) -> int:
        return self._workers[index].process.pid

    def generation(self, index: int) -> int:
        """Which process serves worker ``index`` now: another number once it
        was replaced (a file open in the old one is not open in the new one)."""
        return self._workers[index % self.size].generation

    async def call(self, index: int, op: str, *args: Any, about: str = "") -> Any:
        """Run ``op`` in worker ``index`` (modulo the pool size) and return its
        value; raises the worker's error, or WorkerLostError."""
        index %= self.size
        worker = self._workers[index]
        async with worker.lock:
            if not worker.alive or worker.process.poll() is not None:
                worker = self._replace(index)
            if not worker.ready.done():
                try:
                    await asyncio.wait_for(asyncio.shield(worker.ready), STARTUP_S)
                except TimeoutError:
                    worker.kill(f"worker {worker.name} did not start in {STARTUP_S:g} s")
                    raise WorkerLostError(f"worker {worker.name} did not start") from None
            loop = asyncio.get_running_loop()
            worker.future = loop.create_future()
            worker.since, worker.about = time.monotonic(), about
            log.debug("%s: %s %s", worker.name, op, about)
            try:
                worker.conn.send((op, args))
            except OSError as exc:
                worker.kill(f"worker {worker.name} unreachable: {exc}")
            try:
                reply = await worker.future
            except asyncio.CancelledError:
                # a reply may still come for this call: not reusable
                worker.kill("call cancelled")
                raise
            finally:
                worker.future = None
        if about:
            self._blocked_since.pop(about, None)
        if reply[0] == "ok":
            return reply[1]
        raise rebuild(reply[1], reply[2])

    async def _ping(self, index: int) -> None:
        try:
            await self.call(index, "ping")
        except OSError as exc:
            log.info("worker %d did not answer its ping: %s", index, exc)
        finally:
            self._pings.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _watchdog(self) -> None:
        while True:
            busy = any(w.future is not None and not w.future.done() for w in self._workers)
            await asyncio.sleep(WATCH_S if busy else WATCH_IDLE_S)
            try:
                self._watch_once()
            except Exception:  # the watchdog must not die
                log.exception("engine watchdog")

    def _watch_once(self) -> None:
        now = time.monotonic()
        for index, worker in enumerate(list(self._workers)):
            future = worker.future
            idle = future is None or future.done()
            if worker.alive and worker.process.poll() is not None:
                worker.kill(f"worker {worker.name} died (exit {worker.process.returncode})")
                idle = True
            if idle:
                if not worker.alive and not worker.lock.locked():
                    self._replace(index)  # a warm spare before the next call
                elif now - worker.since > PING_S and not worker.lock.locked():
                    worker.since = now  # a stopped idle worker is found by its ping
                    self._pings.add(asyncio.create_task(self._ping(index)))
                continue
            waited = now - worker.since
            if waited < BLOCKED_S:
                continue
            about = worker.about or worker.name
            since = self._blocked_since.setdefault(about, worker.since)
            blocked = now - since
            stalled = waited >= self.stall_timeout
            if self.on_blocked is not None and worker.about:
                self.on_blocked(about, blocked, stalled or blocked >= self.stall_timeout)
            if stalled:
                log.warning(
                    "worker %s: a call about %s has not returned for %.0f s: replacing it",
                    worker.name, about, waited,
                )  # fmt: skip
                worker.kill(
                    f"reading {about} has not returned for {blocked:.0f} s (its file "
                    "system does not answer): worker replaced"
                )
