"""Wire source -> follower -> stats -> publishers, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.engine import WorkerPool
from swmr_roi_ioc.publish import Ioc, Publisher, Severity, Status, write_screens

if TYPE_CHECKING:
    from swmr_roi_ioc.publish.web import WebPage

from ._acquisition import CurrentAcquisition
from ._bluesky_source import BlueskySource
from ._fixed_file import FixedFileSource
from ._nexus_out import write_acquisition
from ._pidfile import pid_file_written
from ._plugin_source import PluginSource
from ._recompute import recompute_forever
from ._state import ServiceState
from ._world import world_ready

log = logging.getLogger(__name__)

#: Snapshots for publish passes that leave PVs waiting (changes faster than
#: rate_hz) take at most this share of the event loop's time: after one that
#: took t, the next pass starts t * (1 / MAX_SHARE - 1) later. A pass that
#: posted every change delays nothing.
MAX_SHARE = 0.2
#: Uptime_RBV (whole seconds) and the decay of ArrayRate_RBV are posted this
#: often while nothing else changes.
CLOCK_S = 1.0
#: The interpreter's thread switch interval in the IOC process (default 5 ms).
SWITCH_INTERVAL_S = 0.0005


def _waker(event: asyncio.Event) -> Callable[[], None]:
    """``event.set`` callable from any thread: CA puts change the state in
    the threads of EPICS base's CA server, not in the event loop's."""
    loop = asyncio.get_running_loop()
    thread = threading.get_ident()

    def wake() -> None:
        if threading.get_ident() == thread:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    return wake


async def _publish_forever(publisher: Publisher, state: ServiceState, rate_hz: float) -> None:
    """Leading-edge publishing, at most rate_hz updates per PV whatever the
    frame rate (the publisher defers a PV posted less than a period ago and
    says when it is due). A change of the state wakes this task at once; the
    next pass waits as long as MAX_SHARE needs for the snapshots of passes
    that post nothing. The histogram and image come made by the engine worker."""
    period = 1.0 / rate_hz
    publisher.period = period
    changed = asyncio.Event()
    state.on_change = _waker(changed)
    shown: tuple[int, int] | None = None
    due = math.inf  # when a PV the publisher deferred may be posted
    ready = -math.inf  # the earliest start of the next pass
    clock = -math.inf  # the last post of the clock PVs (Uptime_RBV, ArrayRate_RBV)
    while True:
        changed.clear()  # before looking: a change from now on wakes the wait below
        now = time.monotonic()
        if now < ready:  # the last pass was just now: a change waits this long
            await asyncio.sleep(ready - now)
            continue
        try:
            if (state.version, state.views_generation) != shown or now >= due:
                shown = (state.version, state.views_generation)
                snap = state.snapshot()
                # the cost of a pass that posts nothing (its PVs wait): what
                # frequent changes cost; what is posted costs at most rate_hz
                spent = time.monotonic() - now
                due = publisher.publish(snap, state.live_views())
                if due < math.inf:  # PVs wait: changes meanwhile cost passes
                    ready = time.monotonic() + spent * (1.0 / MAX_SHARE - 1.0)
                clock = now
            elif now - clock >= CLOCK_S:
                # nothing changed but the clock: Uptime_RBV (whole seconds) and
                # ArrayRate_RBV's decay only, so an idle IOC costs next to nothing
                publisher.publish_clock(state.uptime, state.array_rate)
                clock = now
        except Exception:  # a failing update must not stop the IOC
            log.exception("publishing failed")
            clock = time.monotonic()
            ready = clock + period
        timeout = max(0.0, min(due, clock + CLOCK_S) - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)


async def _view_settings_forever(state: ServiceState, current: CurrentAcquisition) -> None:
    """New histogram settings (HistSize/HistMin/HistMax puts) go to the
    engine worker that makes the live views; it makes them again at once."""
    changed = asyncio.Event()
    state.on_view_settings = _waker(changed)
    sent = state.view_params()
    while True:
        await changed.wait()
        changed.clear()
        params = state.view_params()
        if params != sent and (acq := current.acquisition) is not None:
            await acq.configure_views(params)
        sent = params


async def _idle_source(state: ServiceState) -> None:
    state.set_status(
        Status.IDLE, "No source configured (source.file, plugin_prefix and bluesky are null)"
    )
    await asyncio.Event().wait()


class Service:
    """One running IOC: its PVs (CA and PVA), the publisher and the source."""

    def __init__(self, config: IocConfig, pool: WorkerPool | None = None) -> None:
        self.config = config
        self.state = ServiceState(config)
        self.ioc = Ioc(config, controller=self.state)
        #: the one put path of every front end: ``puts.put(suffix, value, host=, user=)``
        self.puts = self.ioc.puts
        engine = config.engine
        #: the worker processes that own the files (the IOC never touches HDF5)
        self.pool = pool or WorkerPool(engine.workers, engine.stall_timeout)
        self.pool.on_blocked = self._blocked
        self.current = CurrentAcquisition()
        self._config_text = config.model_dump_json(indent=2)

    def _web_page(self) -> WebPage:
        """The live page (bokeh is imported only when it is enabled). Its edits
        go through the IOC's one put path, as CA and PVA puts do."""
        from swmr_roi_ioc.publish.web import WebPage

        return WebPage(self.config, self.state, self.puts)

    async def _finished(self) -> None:
        """An acquisition ended: its NeXus file."""
        await write_acquisition(self.state, self.pool, self._config_text)

    def _blocked(self, path: str, seconds: float, stalled: bool) -> None:
        """The engine's watchdog: reads of ``path`` have not returned for ``seconds``."""
        if stalled:
            self.state.set_status(
                Status.ERROR,
                f"Reading {path} has not returned for {seconds:.0f} s (its file system "
                "does not answer); worker replaced, waiting for it",
            )
        else:
            self.state.set_status(
                self.state.status,
                f"Reads of {path} blocked for {seconds:.0f} s (its file system does not "
                "answer); waiting for them",
                Severity.MINOR,
            )

    async def run(self) -> None:
        """Serve until cancelled; every task is cancelled and awaited on the way out."""
        self.ioc.start(asyncio.get_running_loop())  # the EPICS IOC: once per process
        await self.pool.start()
        src = self.config.source
        if src.file is not None:
            source = FixedFileSource(self.state, self.pool, self.current, self._finished).run()
        elif src.plugin_prefix is not None:
            source = PluginSource(
                self.state, self.pool, src.plugin_prefix, self.current, self._finished
            ).run()
        elif src.bluesky is not None:
            source = BlueskySource(self.state, self.pool, self.current, self._finished).run()
        else:
            source = _idle_source(self.state)
        source = world_ready(self.state, source)
        tasks = [
            asyncio.create_task(
                _publish_forever(self.ioc.publisher, self.state, self.config.publish.rate_hz),
                name="publisher",
            ),
            asyncio.create_task(source, name="source"),
            asyncio.create_task(
                recompute_forever(self.state, self.current, self.pool.size, self._finished),
                name="recompute",
            ),
            asyncio.create_task(
                _view_settings_forever(self.state, self.current), name="view-settings"
            ),
        ]
        if self.ioc.pva is not None:
            tasks.append(asyncio.create_task(self.ioc.pva.serve(), name="pva-server"))
        if self.config.web.enabled:
            tasks.append(asyncio.create_task(self._web_page().serve(), name="web-page"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a task that ended by itself is an error: raise it
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):
                await self.current.replace(None)
            await self.pool.close()


def _write_screens(config: IocConfig) -> None:
    """The Phoebus screens into screens_dir; a failure is a warning, not fatal."""
    if not config.screens_dir:
        return
    try:
        paths = write_screens(config, Path(config.screens_dir))
    except OSError as exc:
        log.warning("could not write screens to %s: %s", config.screens_dir, exc)
        return
    log.info("wrote %d Phoebus screens to %s", len(paths), config.screens_dir)


async def serve(config: IocConfig) -> None:
    """Run the IOC until SIGINT/SIGTERM."""
    # The publisher hands the GIL over at every C call that releases it (p4p's
    # posts, numpy copies); with the default 5 ms switch interval the reader
    # thread kept it that long each time, and a publish of ~130 PVs took up to
    # 450 ms (measured following 500 frames/s: 5.4 publishes/s, 8.6 with this).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    engine = config.engine
    pool = WorkerPool(engine.workers, engine.stall_timeout)
    pool.spawn()  # the workers start while the screens and records are made
    await asyncio.to_thread(_write_screens, config)
    service = Service(config, pool)
    task = asyncio.create_task(service.run(), name="service")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)
    with pid_file_written(config), contextlib.suppress(asyncio.CancelledError):
        await task
