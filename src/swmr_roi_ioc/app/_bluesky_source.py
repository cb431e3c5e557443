"""Source ``source.bluesky``: follow the runs a RunEngine (or blueapi) publishes.

A run is an acquisition. Its start document says which plan runs and what
shape the scan has (the maps' geometry); the detector's StreamResource names
the file and dataset; each StreamDatum says frames ``[0, stop)`` are complete,
wakes the follower and bounds what is read (a frame past it is never read;
the file's extent stays a guard); the stop document ends it: the last frames
are read, the NeXus file written, and an exit status other than success is
said in StatusMessage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from swmr_roi_ioc.config import BlueskyConfig
from swmr_roi_ioc.engine import FileSpec, RemoteAcquisition, WorkerPool
from swmr_roi_ioc.publish import Severity, Status

from ._acquisition import READ_ERRORS, CurrentAcquisition
from ._bluesky_docs import RunEvent, RunFile, RunFrames, RunMissed, RunStart, RunStop, RunTracker
from ._bluesky_transport import StompDocuments, ZmqDocuments
from ._paths import PathRefusedError, resolve_under
from ._state import ServiceState

log = logging.getLogger(__name__)

#: Poll bounds while declared frames are not yet in the file's extent.
POLL_MIN = 0.002
POLL_MAX = 0.05
#: How long to keep trying to open the file a StreamResource names.
OPEN_GRACE_S = 10.0
#: After a read error, retry this often.
RETRY_S = 1.0
EXIT_WORDS = {"abort": "aborted", "fail": "failed"}
LATE = "run in progress before this IOC started: waiting for the next start"
MISSED = "a run whose start was missed is in progress: waiting for the next start"


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


@dataclass
class _Run:
    """What is known of the run followed."""

    start: RunStart
    file: RunFile | None = None
    path: Path | None = None
    acq: RemoteAcquisition | None = None
    declared: int = 0
    stop: RunStop | None = None
    #: when the file was first tried, and when the stop arrived
    opening_since: float | None = None
    stopped_at: float | None = None
    gave_up: bool = False


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
        self._cfg: BlueskyConfig = cfg
        self._source = state.config.source
        self._pool = pool
        self._current = current
        self._on_finished = on_finished
        self._tracker = RunTracker(cfg.data_key)
        self._events: asyncio.Queue[RunEvent] = asyncio.Queue()
        if cfg.stomp is not None:
            self._transport: StompDocuments | ZmqDocuments = StompDocuments(
                cfg.stomp, self._document, self._link
            )
        else:
            assert cfg.zmq is not None
            self._transport = ZmqDocuments(cfg.zmq, self._document, self._link)
        self._note = ""
        self._severity = Severity.NO_ALARM

    # -- transport callbacks (on the loop) -----------------------------------

    def _document(self, name: str, doc: object) -> None:
        try:
            events = self._tracker.feed(name, doc)
        except (KeyError, TypeError, ValueError) as exc:  # valid by schema, still unusable
            log.warning("ignoring a %s document: %s", name, exc)
            return
        for event in events:
            self._events.put_nowait(event)

    def _link(self, problem: str | None) -> None:
        self._state.set_link(problem)
        if problem is not None:
            self._tracker.link_lost()

    # -- status --------------------------------------------------------------

    def _status(self, status: Status, message: str) -> None:
        """A status of the run followed, with its geometry remark (MINOR) if any."""
        if self._note:
            message = f"{message} ({self._note})"
        severity = Severity.MAJOR if status is Status.ERROR else self._severity
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
        pending: RunEvent | None = None
        while True:
            event = pending or await self._events.get()
            pending = None
            if isinstance(event, RunStart):
                pending = await self._follow(_Run(event))
            elif isinstance(event, RunMissed) and self._state.status is not Status.FOLLOWING:
                message = MISSED if self._tracker.started_any else LATE
                self._state.set_status(Status.WAITING, message)

    async def _next(self, timeout: float | None) -> RunEvent | None:
        """The next event; None after ``timeout`` s (0: only one already queued)."""
        if timeout is None:
            return await self._events.get()
        if timeout <= 0:
            try:
                return self._events.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return None

    async def _follow(self, run: _Run) -> RunStart | None:
        """Follow one run to its end; returns a start that replaced it, if any."""
        start = run.start
        await self._current.replace(None)
        self._state.set_run(start.uid, start.plan_name)
        self._geometry_note(start)
        self._status(Status.WAITING, f"run {start.uid}: plan {start.plan_name}")
        poll = POLL_MIN
        timeout: float | None = None
        while True:
            event = await self._next(timeout)
            if isinstance(event, RunStart):
                await self._end(run, replaced=True)
                return event
            self._apply(run, event)
            if run.file is not None and run.acq is None and not run.gave_up:
                await self._open(run)
            moved = await self._advance(run) if run.acq is not None else False
            if run.stop is not None and self._over(run):
                await self._end(run)
                return None
            if event is not None or moved:
                timeout, poll = 0, POLL_MIN
            elif (
                (run.acq is not None and run.acq.done < run.declared)
                or (run.file is not None and run.acq is None and not run.gave_up)
                or run.stop is not None
            ):
                timeout = poll
                poll = min(poll * 2, POLL_MAX)
            else:
                timeout = None  # nothing to do until the next document

    def _apply(self, run: _Run, event: RunEvent | None) -> None:
        if isinstance(event, RunFile) and run.file is None:
            run.file = event
            try:
                run.path = local_path(event.uri, self._state.config.data_root)
            except PathRefusedError as exc:
                run.gave_up = True
                self._status(Status.ERROR, f"Refusing the run's file: {exc}")
        elif isinstance(event, RunFrames):
            run.declared = max(run.declared, event.stop)
            if run.start.expected:
                self._state.set_run_progress(min(100.0, 100.0 * run.declared / run.start.expected))
        elif isinstance(event, RunStop):
            run.stop = event
            run.stopped_at = time.monotonic()

    def _geometry_note(self, start: RunStart) -> None:
        """The remark (MINOR alarm) when ioc.yaml's scan.shape overrides the run's."""
        self._note, self._severity = start.problem, Severity.NO_ALARM
        configured = self._state.config.scan.shape
        geometry = start.geometry
        if configured is not None and geometry is not None:
            if tuple(configured) != (geometry.rows, geometry.cols):
                self._note = (
                    f"scan.shape {list(configured)} in ioc.yaml overrides the run's "
                    f"{geometry.rows} x {geometry.cols} ({start.geometry_from})"
                )
        if self._note:
            self._severity = Severity.MINOR

    async def _open(self, run: _Run) -> None:
        assert run.file is not None and run.path is not None
        now = time.monotonic()
        run.opening_since = run.opening_since or now
        # followed by extent (no keys), bounded by the frames the run declared
        spec = FileSpec(str(run.path), run.file.dataset, (), self._source.timeout, None)
        try:
            run.acq = await RemoteAcquisition.open(self._pool, spec, self._state)
            self._state.start_acquisition(str(run.path), run.acq.frame_shape)
        except READ_ERRORS as exc:
            if now - run.opening_since > OPEN_GRACE_S:
                run.gave_up = True
                self._status(Status.ERROR, f"Cannot open {run.path}: {exc}")
            else:
                self._status(Status.WAITING, f"Waiting to open {run.path}: {exc}")
            return
        await self._current.replace(run.acq)
        if run.start.geometry is not None:
            self._state.set_scan_geometry(run.start.geometry)
        self._status(Status.FOLLOWING, f"Following {run.path} (run {run.start.uid})")

    async def _advance(self, run: _Run) -> bool:
        """Poll the file and process the complete frames the run declared."""
        acq = run.acq
        assert acq is not None
        try:
            extent = await acq.poll()
            # the run's word bounds what is read; the extent stays a guard
            acq.complete = min(extent, run.declared)
            self._state.set_frames_written(acq.complete)
            moved = await acq.process()
        except READ_ERRORS as exc:
            self._status(
                Status.ERROR, f"Reading {acq.path} failed after {acq.done} frames: {exc}; retrying"
            )
            log.warning("reading %s failed: %s", acq.path, exc)
            await asyncio.sleep(RETRY_S)
            return False
        if moved:
            self._status(
                Status.FOLLOWING,
                f"Following {acq.path}: {acq.done} of {run.declared} frames declared "
                f"(run {run.start.uid})",
            )
        return moved > 0

    def _over(self, run: _Run) -> bool:
        """After the stop: every declared frame read, or nothing more will come."""
        if run.acq is None:
            return run.file is None or run.gave_up or self._late(run)
        return run.acq.done >= run.declared or self._late(run)

    def _late(self, run: _Run) -> bool:
        return time.monotonic() - (run.stopped_at or time.monotonic()) > self._source.timeout

    async def _end(self, run: _Run, *, replaced: bool = False) -> None:
        start, acq = run.start, run.acq
        how = ""
        if replaced:
            how = "; a new run started before its stop arrived"
        elif run.stop is not None and run.stop.exit_status != "success":
            word = EXIT_WORDS.get(run.stop.exit_status, run.stop.exit_status)
            reason = f": {run.stop.reason}" if run.stop.reason else ""
            how = f"; the run was {word}{reason}"
        if acq is None:
            if run.gave_up:
                return  # its Error (file refused or unreadable) stays shown
            self._status(
                Status.WAITING,
                f"run {start.uid} ({start.plan_name}) ended without frames of the detector"
                f"{how}; waiting for the next start",
            )
            return
        missing = run.declared - acq.done
        if missing > 0:
            how += f"; {missing} declared frames never appeared in the file"
        self._status(
            Status.FINISHED,
            f"Finished {acq.path}: {acq.done} frames (run {start.uid}, "
            f"plan {start.plan_name}){how}",
        )
        # closed: its writer may recreate the path; a ROI change reopens it
        await self._current.finish()
        await self._on_finished()
