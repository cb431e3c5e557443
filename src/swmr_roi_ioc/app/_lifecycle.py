"""One acquisition's lifecycle, the same for every source.

A source (a fixed path, an NDFileHDF5 plugin, bluesky runs) only learns
which file to follow and when it ends. It describes that one file with a
:class:`FileHooks` and calls :meth:`Lifecycle.run_file`; everything else is
implemented here, once: opening with retries, the follow loop (poll,
process, adaptive sleep), the retry policy on read errors, the stall
watchdog, truncation and files rewritten in place, the status messages, the
end (Finished, the NeXus file) and closing the file.

The hooks a source implements
-----------------------------

``path``
    The file to follow (already resolved under ``data_root``).
``dataset``
    The frames' dataset when the source names it (a bluesky StreamResource
    does): source.dataset and source.finished describe the files of
    ioc.yaml's layout and do not apply then. None: source.dataset, and
    source.finished says when the writer finished.
``use_keys``
    Frames are complete when ``source.keys`` say so (True), or by the
    data's extent (False: NDFileHDF5 flushes its attribute datasets only
    every NDAttributeChunk frames).
``scan``
    The map's geometry when the source knows it (the plugin's
    ExtraDimSize, a run's start document), set once the file is open;
    None: the dataset's extra dimensions say it as the file grows.
``bound()``
    Frames the source declares complete (a bluesky ``stream_datum``'s
    ``stop``), or None. At most ``min(bound, complete in the file)``
    frames are processed, so a frame not yet declared is never read; the
    status says "N of M frames declared", and a finish with fewer frames
    than declared says how many never appeared in the file.
``wait(seconds)``
    Sleep up to ``seconds``; return True early on a wake-up (a flush of the
    plugin, a datum): the file is polled again at once.
``ended(done)``
    None while the writer may write on (``done``: frames processed so
    far, e.g. to wait for declared frames still on their way to the file);
    else why it ended ("capture ended", "the run was aborted: ..."). It is
    asked only after a round that processed nothing; every remaining frame
    (up to ``bound()``) is then read and the acquisition is Finished with
    that reason.
``abandoned()``
    None while this is still the file to follow; else an :class:`Abandon`:
    the lifecycle stops at once, without finishing (the file was deleted,
    another file took its place).
``idle_timeout()``
    Seconds without a new frame after which the acquisition is Finished
    (its writer went away without saying so), or None to wait for
    ``ended()``.
``describe()``
    Words after the file's name in every status message about it ("run
    1f2e..., plan fly"), or "".
``warning()``
    A problem of the source's own that every status message about the file
    ends with, in parentheses, raising at least a MINOR alarm (ioc.yaml's
    scan.shape overriding a run's), or "".

States (:class:`Phase`)::

    OPENING --> FOLLOWING <--> RETRYING
                    |              |
                    v              v
                DRAINING --> FINISHED          (ABANDONED, FAILED from any)
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from swmr_roi_ioc.engine import (
    DataLostError,
    FileSpec,
    NotSwmrFileError,
    RemoteAcquisition,
    RewrittenError,
    TruncatedError,
    WorkerLostError,
    WorkerPool,
)
from swmr_roi_ioc.publish import Severity, Status
from swmr_roi_ioc.stats import ScanGeometry

from ._acquisition import READ_ERRORS, CurrentAcquisition
from ._keys_lag import KeysLag, KeysLagMode, unique_id_lag
from ._state import ServiceState

log = logging.getLogger(__name__)

#: Poll interval bounds while following: fast after a frame, slower when idle.
POLL_MIN = 0.002
POLL_MAX = 0.05
#: A file that stopped growing for IDLE_AFTER_S is polled every POLL_IDLE s:
#: an idle IOC costs well under 1 % of a core, and the first frame after a
#: long pause waits at most that long.
IDLE_AFTER_S = 2.0
POLL_IDLE = 0.25
#: Within this long of the last new frame the poll stays at POLL_MIN, so a
#: writer at 10-500 Hz is seen within ~2 ms of its flush.
LIVE_WINDOW_S = 0.1
#: How often ``abandoned()`` is asked while frames keep coming.
CHECK_INTERVAL = 0.25
#: A file that keeps failing to open for this long is an Error, not a Wait.
OPEN_GRACE_S = 5.0
#: Read errors shorter than this are retried quietly.
QUIET_RETRY_S = 1.0
#: Read errors on the same file are retried (backoff up to RETRY_MAX_S) for
#: max(source.timeout, GIVE_UP_MIN_S) before giving up on the file: long
#: enough to ride out a file server failing over.
GIVE_UP_MIN_S = 60.0
RETRY_MIN_S = 0.05
RETRY_MAX_S = 2.0


class Phase(enum.Enum):
    """Where one acquisition is in its life."""

    OPENING = "opening"
    FOLLOWING = "following"
    RETRYING = "retrying"
    DRAINING = "draining"
    FINISHED = "finished"
    ABANDONED = "abandoned"
    FAILED = "failed"


class Outcome(enum.Enum):
    """How :meth:`Lifecycle.run_file` ended."""

    #: every frame read, Finished (the NeXus file written)
    FINISHED = "finished"
    #: never opened (the source moved on, or it stayed unreadable)
    NOT_OPENED = "not opened"
    #: the source said this is no longer the file
    ABANDONED = "abandoned"
    #: read errors for longer than the retry policy allows
    FAILED = "failed"
    #: bytes it held are gone (truncated, then written on past a hole)
    LOST = "lost"
    #: another file was written over it in place: follow that one anew
    REWRITTEN = "rewritten"


@dataclass(frozen=True)
class Abandon:
    """Why a file is no longer followed; ``error``: say so with an alarm."""

    reason: str
    error: bool = False


class FileHooks(Protocol):
    """What a source tells the lifecycle about the one file it follows
    (see the module docstring)."""

    @property
    def path(self) -> Path: ...

    @property
    def dataset(self) -> str | None: ...

    @property
    def use_keys(self) -> bool: ...

    @property
    def scan(self) -> ScanGeometry | None: ...

    def bound(self) -> int | None: ...

    def wait(self, seconds: float) -> Awaitable[bool]: ...

    def ended(self, done: int) -> str | None: ...

    def abandoned(self) -> Abandon | None: ...

    def idle_timeout(self) -> float | None: ...

    def describe(self) -> str: ...

    def warning(self) -> str: ...


class RetryPolicy:
    """One policy for read errors on a file being followed: quiet for
    QUIET_RETRY_S, then an Error saying it retries, given up after
    ``give_up`` seconds of failing; backoff RETRY_MIN_S .. RETRY_MAX_S."""

    def __init__(self, give_up: float) -> None:
        self.give_up = give_up
        self.since: float | None = None
        self.delay = RETRY_MIN_S

    @property
    def failing(self) -> bool:
        return self.since is not None

    def failed(self) -> tuple[float, float]:
        """A read failed: (seconds failing, seconds left before giving up)."""
        now = time.monotonic()
        self.since = self.since or now
        return now - self.since, self.give_up - (now - self.since)

    async def backoff(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, RETRY_MAX_S)

    def recovered(self) -> float:
        """Reads work again; returns how long they failed."""
        seconds = time.monotonic() - (self.since or time.monotonic())
        self.since, self.delay = None, RETRY_MIN_S
        return seconds


class Lifecycle:
    """Opens, follows and finishes one file at a time for a source."""

    def __init__(
        self,
        state: ServiceState,
        pool: WorkerPool,
        current: CurrentAcquisition,
        on_finished: Callable[[], Awaitable[None]],
    ) -> None:
        self._state = state
        self._pool = pool
        self._current = current
        self._on_finished = on_finished
        self._cfg = state.config.source
        #: read errors on one file are retried this long
        self._give_up = max(self._cfg.timeout, GIVE_UP_MIN_S)
        self.phase = Phase.OPENING
        self._path: Path | None = None
        self._keys_watch: KeysLag | None = None

    async def run_file(self, hooks: FileHooks) -> Outcome:
        """Open, follow to the end, finish; the file is closed when it returns."""
        self._path = hooks.path
        await self._current.replace(None)
        acq = await self._open(hooks)
        if acq is None:
            return Outcome.NOT_OPENED
        await self._current.replace(acq)
        outcome = await self._follow(acq, hooks)
        if outcome is Outcome.FINISHED:
            # closed: its writer may recreate the path; a ROI change reopens it
            await self._current.finish()
            await self._on_finished()
        else:
            await self._current.replace(None)
        return outcome

    # -- status messages -----------------------------------------------------

    @staticmethod
    def _name(hooks: FileHooks) -> str:
        """The file as status messages name it (with the source's words)."""
        words = hooks.describe()
        return f"{hooks.path} ({words})" if words else str(hooks.path)

    def _status(
        self, hooks: FileHooks, status: Status, message: str, severity: Severity | None = None
    ) -> None:
        """A status of this file, with the source's warning (MINOR at least)."""
        if warning := hooks.warning():
            message = f"{message} ({warning})"
            default = Severity.MAJOR if status is Status.ERROR else Severity.NO_ALARM
            severity = max(severity or default, Severity.MINOR)
        self._state.set_status(status, message, severity)

    # -- opening -------------------------------------------------------------

    async def _open(self, hooks: FileHooks) -> RemoteAcquisition | None:
        """Open with backoff while the file is still the one; None if not."""
        self.phase = Phase.OPENING
        name = self._name(hooks)
        delay = RETRY_MIN_S
        first_failure: float | None = None
        while True:
            try:
                acq = await RemoteAcquisition.open(self._pool, self._spec(hooks), self._state)
                self._state.start_acquisition(str(hooks.path), acq.frame_shape)
                if hooks.scan is not None:
                    self._state.set_scan_geometry(hooks.scan)
                return acq
            except READ_ERRORS as exc:
                now = time.monotonic()
                first_failure = first_failure or now
                # a worker lost (killed when stuck): said at once, with an alarm
                late = now - first_failure > OPEN_GRACE_S or isinstance(exc, WorkerLostError)
                # a file under construction fails for a while; one that keeps
                # failing is broken, and that is an Error with an alarm
                if late and isinstance(exc, NotSwmrFileError):
                    # not followed live: its metadata changes under a reader
                    self._status(
                        hooks,
                        Status.WAITING,
                        f"{name} is being written without SWMR mode: it will be read "
                        "whole when its writer closes it",
                        Severity.MINOR,
                    )
                elif late:
                    self._status(hooks, Status.ERROR, f"Cannot open {name}: {exc}")
                else:
                    self._status(hooks, Status.WAITING, f"Waiting to open {name}: {exc}")
                log.debug("open %s: %s", hooks.path, exc)
                # its writer is done with it and it is unreadable; a worker lost
                # (stuck, killed) says nothing of the file: tried in its
                # replacement, up to the retry policy's give-up time
                lost = isinstance(exc, WorkerLostError) and now - first_failure < self._give_up
                readable_later = lost or isinstance(exc, NotSwmrFileError)
                if late and not readable_later and hooks.ended(0) is not None:
                    return None
            if await hooks.wait(delay) is False:
                delay = min(delay * 2, 1.0)
            if hooks.abandoned() is not None:
                return None

    def _spec(self, hooks: FileHooks) -> FileSpec:
        cfg = self._cfg
        keys = tuple(cfg.keys) if hooks.use_keys else ()
        if hooks.dataset is None:
            dataset, finished = cfg.dataset, cfg.finished
        else:  # the source names its dataset: ioc.yaml's file layout does not apply
            dataset, finished = hooks.dataset, None
        return FileSpec(str(hooks.path), dataset, keys, cfg.timeout, finished, None, cfg.keys_lag)

    # -- following -----------------------------------------------------------

    def _following(self, acq: RemoteAcquisition, hooks: FileHooks) -> str:
        bound = hooks.bound()
        count = f"{acq.done} frames" if bound is None else f"{acq.done} of {bound} frames declared"
        lag = self._lag_remark(acq, hooks)
        return f"Following {self._name(hooks)}: {count}" + (f"; {lag}" if lag else "")

    def _lag_remark(self, acq: RemoteAcquisition, hooks: FileHooks) -> str:
        """StatusMessage's remark on keys lagging the data ('' if they do not)."""
        keys = self._cfg.keys if hooks.use_keys else []
        if keys:
            if self._keys_watch is None or self._keys_watch.mode != acq.keys_mode:
                mode: KeysLagMode = "extent" if acq.keys_mode == "extent" else "wait"
                self._keys_watch = KeysLag(list(keys), mode)
            return self._keys_watch.describe(acq.keys_complete, acq.extent_complete)
        return unique_id_lag() if acq.keys_lag else ""

    async def _step(self, acq: RemoteAcquisition, hooks: FileHooks) -> int:
        """Poll the file, process what is complete; returns frames processed."""
        complete = await acq.poll()
        bound = hooks.bound()
        if bound is not None and bound < complete:
            acq.complete = complete = max(bound, acq.done)
        if hooks.scan is None and (extent := acq.scan_extent) is not None:
            self._state.set_scan_shape(*extent)
        try:
            return await acq.process()
        finally:
            # with the frame's results, in one change: a change of its own
            # would be published first, and the frame's a moment later
            self._state.set_frames_written(complete)

    def _finish(self, acq: RemoteAcquisition, hooks: FileHooks, why: str) -> Outcome:
        self.phase = Phase.FINISHED
        bound = hooks.bound()
        if bound is not None and bound > acq.done:
            why += f"; {bound - acq.done} declared frames never appeared in the file"
        self._status(
            hooks, Status.FINISHED, f"Finished {self._name(hooks)}: {acq.done} frames ({why})"
        )
        return Outcome.FINISHED

    def _abandon(self, acq: RemoteAcquisition, hooks: FileHooks, why: Abandon) -> Outcome:
        self.phase = Phase.ABANDONED
        if why.error:
            self._status(
                hooks,
                Status.ERROR,
                f"{self._name(hooks)} {why.reason} after {acq.done} frames",
                Severity.MAJOR,
            )
        log.info("%s: %s after %d frames", acq.path, why.reason, acq.done)
        return Outcome.ABANDONED

    async def _follow(self, acq: RemoteAcquisition, hooks: FileHooks) -> Outcome:
        """The follow loop: the state machine of one open file."""
        path, name = acq.path, self._name(hooks)
        self._keys_watch = None
        self.phase = Phase.FOLLOWING
        self._status(hooks, Status.FOLLOWING, f"Following {name}")
        retry = RetryPolicy(self._give_up)
        last_check = time.monotonic()
        poll = POLL_MIN
        ended: str | None = None
        while True:
            try:
                processed = await self._step(acq, hooks)
            except RewrittenError as exc:
                # a new file over the old one (its writer recreated the path)
                log.info("%s; following the new file", exc)
                self.phase = Phase.ABANDONED
                return Outcome.REWRITTEN
            except DataLostError as exc:
                self.phase = Phase.FAILED
                self._status(
                    hooks, Status.ERROR, f"Gave up on {name} after {acq.done} frames: {exc}"
                )
                log.warning("giving up on %s: %s", path, exc)
                return Outcome.LOST
            except READ_ERRORS as exc:
                if (why := hooks.abandoned()) is not None:
                    return self._abandon(acq, hooks, why)
                self.phase = Phase.RETRYING
                failing, left = retry.failed()
                if left < 0:
                    self.phase = Phase.FAILED
                    self._status(
                        hooks,
                        Status.ERROR,
                        f"Gave up on {name} after {acq.done} frames: read errors for "
                        f"{retry.give_up:g} s: {exc}",
                    )
                    log.warning("giving up on %s: %s", path, exc)
                    return Outcome.FAILED
                # a truncated file is an Error at once: a batch read meanwhile may
                # hold zeros; so is a worker lost (killed when stuck, or crashed).
                # A short hiccup is retried quietly first.
                loud = isinstance(exc, TruncatedError | WorkerLostError)
                if loud or failing > QUIET_RETRY_S:
                    self._status(
                        hooks,
                        Status.ERROR,
                        f"Reading {name} failed after {acq.done} frames: {exc}; retrying "
                        f"(for {left:.0f} s more)",
                    )
                log.info("reading %s failed, retrying: %s", path, exc)
                await retry.backoff()
                continue
            if retry.failing:
                log.info("reading %s works again after %.1f s", path, retry.recovered())
                self.phase = Phase.DRAINING if ended else Phase.FOLLOWING
                acq.last_new = time.monotonic()  # the outage is no "no new frame" time
                self._status(hooks, Status.FOLLOWING, self._following(acq, hooks))
            if processed:
                poll = POLL_MIN
                self._status(hooks, Status.FOLLOWING, self._following(acq, hooks))
                continue
            # nothing new this round (a lag of the keys may be worth saying)
            self._status(hooks, Status.FOLLOWING, self._following(acq, hooks))
            if ended is not None:
                return self._finish(acq, hooks, ended)
            now = time.monotonic()
            if acq.finished:
                return self._finish(acq, hooks, "writer finished")
            timeout = hooks.idle_timeout()
            if timeout is not None and now - acq.last_new > timeout:
                return self._finish(acq, hooks, f"no new frame for {timeout:g} s")
            if (ended := hooks.ended(acq.done)) is not None:
                self.phase = Phase.DRAINING
                continue  # one more poll: every frame written before the end
            if now - last_check > CHECK_INTERVAL:
                last_check = now
                if (why := hooks.abandoned()) is not None:
                    return self._abandon(acq, hooks, why)
            woke = await hooks.wait(poll)
            quiet = now - acq.last_new
            if woke:
                poll = POLL_MIN
            elif quiet >= LIVE_WINDOW_S:  # frames stopped coming: back off
                poll = min(poll * 1.5, POLL_MAX if quiet < IDLE_AFTER_S else POLL_IDLE)
