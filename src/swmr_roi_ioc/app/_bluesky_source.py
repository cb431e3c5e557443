"""Source ``source.bluesky``: follow the runs a RunEngine (or blueapi) publishes.

A run is an acquisition. Its start document says which plan runs and what
shape the scan has (the maps' geometry); the detector's StreamResource names
the file and dataset; each StreamDatum says frames ``[0, stop)`` are complete,
wakes the follower and bounds what is read (a frame past it is never read;
the file's extent stays a guard); the stop document ends it: the last frames
are read, the NeXus file written, and an exit status other than success is
said in StatusMessage.

Once the StreamResource names the file, the run is followed by the one
acquisition lifecycle (``_lifecycle``), as every source's file is: the same
open retries, retry policy, worker replacement and status messages.
:class:`_RunHooks` tells it what the run's documents say: the frames
declared (the bound), the stop (the end, once every declared frame is read
or the stop is older than source.timeout), the run's uid and plan (in every
message), a scan.shape of ioc.yaml overriding the run's (a MINOR warning).
A start that arrives before the run's stop ends the run too (its frames are
read and written out) and is followed next.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from swmr_roi_ioc.engine import WorkerPool
from swmr_roi_ioc.publish import Severity, Status
from swmr_roi_ioc.stats import ScanGeometry

from ._acquisition import CurrentAcquisition
from ._bluesky_docs import RunEvent, RunFile, RunFrames, RunMissed, RunStart, RunStop, RunTracker
from ._bluesky_transport import StompDocuments, ZmqDocuments
from ._lifecycle import Abandon, Lifecycle, Outcome
from ._paths import PathRefusedError, resolve_under
from ._state import ServiceState

log = logging.getLogger(__name__)

EXIT_WORDS = {"abort": "aborted", "fail": "failed"}
LATE = "run in progress before this IOC started: waiting for the next start"
MISSED = "a run whose start was missed is in progress: waiting for the next start"
REPLACED = "a new run started before its stop arrived"


class FileRefusedError(PathRefusedError):
    """A StreamResource URI that names no file this IOC may open."""


def local_path(uri: str, data_root: str) -> Path:
    """The path of a ``file://localhost/...`` URI, checked against data_root."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        raise FileRefusedError(f"{uri} is not a file URI")
    host = parsed.netloc.split("@")[-1].split(":")[0]
    if host not in ("", "localhost", "127.0.0.1", socket.gethostname(), socket.getfqdn()):
        raise FileRefusedError(f"{uri} is on host {host!r}, not this one")
    return resolve_under(data_root, unquote(parsed.path))


class _Inbox:
    """The run events from the transport, in order of arrival."""

    def __init__(self) -> None:
        self._events: collections.deque[RunEvent] = collections.deque()
        self._arrived = asyncio.Event()

    def put(self, event: RunEvent) -> None:
        self._events.append(event)
        self._arrived.set()

    def take(self) -> RunEvent | None:
        return self._events.popleft() if self._events else None

    async def wait(self, timeout: float | None = None) -> bool:
        """True once an event is queued (at once if one is); False after ``timeout`` s."""
        if self._events:
            return True
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True


@dataclass
class _Run:
    """What the documents of the run followed said so far."""

    start: RunStart
    #: ioc.yaml's scan.shape overriding the run's, or its unusable scan_spec ("": none)
    warning: str = ""
    file: RunFile | None = None
    declared: int = 0
    stop: RunStop | None = None
    stopped_at: float = 0.0
    #: the next run's start, come before this run's stop (it is followed next)
    next_start: RunStart | None = None

    @property
    def over(self) -> bool:
        return self.stop is not None or self.next_start is not None

    def how_it_ended(self) -> str:
        if self.stop is None:
            return REPLACED
        if self.stop.exit_status == "success":
            return "the run ended"
        word = EXIT_WORDS.get(self.stop.exit_status, self.stop.exit_status)
        return f"the run was {word}" + (f": {self.stop.reason}" if self.stop.reason else "")


class _RunHooks:
    """The lifecycle's hooks for the detector's file of one run (see the
    module docstring); the run's documents are taken as they arrive."""

    use_keys = False  # followed by extent, bounded by the frames the run declared

    def __init__(self, source: BlueskySource, run: _Run, path: Path) -> None:
        assert run.file is not None
        self._source = source
        self._run = run
        self.path = path
        self.dataset: str | None = run.file.dataset
        self.scan: ScanGeometry | None = run.start.geometry
        self._timeout = source.timeout

    def bound(self) -> int | None:
        self._source.take(self._run)
        return self._run.declared

    async def wait(self, seconds: float) -> bool:
        if self._run.next_start is not None:  # the next run's documents wait for it
            await asyncio.sleep(seconds)
            return False
        woke = await self._source.inbox.wait(seconds)
        self._source.take(self._run)
        return woke

    def ended(self, done: int) -> str | None:
        run = self._run
        self._source.take(run)
        if not run.over:
            return None
        # after the stop, declared frames may still be on their way to the file
        on_their_way = done < run.declared and run.next_start is None
        if on_their_way and time.monotonic() - run.stopped_at <= self._timeout:
            return None
        return run.how_it_ended()

    def abandoned(self) -> Abandon | None:
        return None  # a run's file is read to its end (or source.timeout after the stop)

    def idle_timeout(self) -> float | None:
        return None  # the stop document says when it ends

    def describe(self) -> str:
        return f"run {self._run.start.uid}, plan {self._run.start.plan_name}"

    def warning(self) -> str:
        return self._run.warning


class BlueskySource:
    """Follows bluesky runs, run after run, from STOMP or 0MQ."""

    def __init__(
        self,
        state: ServiceState,
        pool: WorkerPool,
        current: CurrentAcquisition,
        on_finished: Callable[[], Awaitable[None]],
    ) -> None:
        cfg = state.config.source.bluesky
        assert cfg is not None
        self._state = state
        self._current = current
        self._lifecycle = Lifecycle(state, pool, current, on_finished)
        self.timeout = state.config.source.timeout
        self._tracker = RunTracker(cfg.data_key)
        self.inbox = _Inbox()
        if cfg.stomp is not None:
            self._transport: StompDocuments | ZmqDocuments = StompDocuments(
                cfg.stomp, self._document, self._link
            )
        else:
            assert cfg.zmq is not None
            self._transport = ZmqDocuments(cfg.zmq, self._document, self._link)

    # -- transport callbacks (on the loop) -----------------------------------

    def _document(self, name: str, doc: object) -> None:
        try:
            events = self._tracker.feed(name, doc)
        except (KeyError, TypeError, ValueError) as exc:  # valid by schema, still unusable
            log.warning("ignoring a %s document: %s", name, exc)
            return
        for event in events:
            self.inbox.put(event)

    def _link(self, problem: str | None) -> None:
        self._state.set_link(problem)
        if problem is not None:
            self._tracker.link_lost()

    # -- the run's documents -------------------------------------------------

    def take(self, run: _Run) -> None:
        """Apply the events queued for ``run`` (up to the next run's start)."""
        while run.next_start is None and (event := self.inbox.take()) is not None:
            if isinstance(event, RunStart):
                run.next_start = event
            elif isinstance(event, RunFile) and run.file is None:
                run.file = event
            elif isinstance(event, RunFrames):
                run.declared = max(run.declared, event.stop)
                if run.start.expected:
                    progress = 100.0 * run.declared / run.start.expected
                    self._state.set_run_progress(min(100.0, progress))
            elif isinstance(event, RunStop):
                run.stop, run.stopped_at = event, time.monotonic()

    async def _until(self, run: _Run, done: Callable[[], bool]) -> None:
        """Take the run's events until ``done()`` or the run is over."""
        self.take(run)
        while not done() and not run.over:
            await self.inbox.wait()
            self.take(run)

    def _status(self, run: _Run, status: Status, message: str) -> None:
        """A status of the run before its file is followed, with its warning (MINOR)."""
        severity = None
        if run.warning:
            message = f"{message} ({run.warning})"
            severity = Severity.MAJOR if status is Status.ERROR else Severity.MINOR
        self._state.set_status(status, message, severity)

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        transport = asyncio.create_task(self._transport.run(), name="bluesky-documents")
        try:
            await self._loop()
        finally:
            transport.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await transport

    async def _loop(self) -> None:
        self._state.set_status(
            Status.WAITING, f"Waiting for a bluesky run to start ({self._transport.where})"
        )
        pending: RunStart | None = None
        while True:
            event = pending
            while event is None:
                await self.inbox.wait()
                event = self.inbox.take()
            pending = None
            if isinstance(event, RunStart):
                pending = await self._follow(event)
            elif isinstance(event, RunMissed) and self._state.status is not Status.FOLLOWING:
                message = MISSED if self._tracker.started_any else LATE
                self._state.set_status(Status.WAITING, message)

    async def _follow(self, start: RunStart) -> RunStart | None:
        """Follow one run to its end; returns the next run's start if it came first."""
        run = _Run(start, self._geometry_warning(start))
        await self._current.replace(None)
        self._state.set_run(start.uid, start.plan_name)
        self._status(run, Status.WAITING, f"run {start.uid}: plan {start.plan_name}")
        await self._until(run, lambda: run.file is not None)
        if run.file is None:
            succeeded = run.stop is not None and run.stop.exit_status == "success"
            how = "" if succeeded else f"; {run.how_it_ended()}"
            self._status(
                run,
                Status.WAITING,
                f"run {start.uid} ({start.plan_name}) ended without frames of the detector"
                f"{how}; waiting for the next start",
            )
            return run.next_start
        try:  # in a thread: resolving on a file server that hangs blocks that thread only
            path = await asyncio.to_thread(local_path, run.file.uri, self._state.config.data_root)
        except PathRefusedError as exc:
            self._status(run, Status.ERROR, f"Refusing the run's file: {exc}")
            await self._until(run, lambda: False)  # its Error stays shown
            return run.next_start
        hooks = _RunHooks(self, run, path)
        outcome = await self._lifecycle.run_file(hooks)
        while outcome is Outcome.REWRITTEN:  # the file recreated: follow its new content
            outcome = await self._lifecycle.run_file(hooks)
        if outcome is not Outcome.FINISHED:
            # unreadable or given up: its Error stays shown until the run is over
            await self._until(run, lambda: False)
        return run.next_start

    def _geometry_warning(self, start: RunStart) -> str:
        """ioc.yaml's scan.shape overriding the run's geometry, or the run's
        unusable scan_spec ("" for neither)."""
        configured = self._state.config.scan.shape
        geometry = start.geometry
        if configured is not None and geometry is not None:
            if tuple(configured) != (geometry.rows, geometry.cols):
                return (
                    f"scan.shape {list(configured)} in ioc.yaml overrides the run's "
                    f"{geometry.rows} x {geometry.cols} ({start.geometry_from})"
                )
        return start.problem
