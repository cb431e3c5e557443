"""Wire source -> follower -> stats -> publishers, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from caproto import get_server_address_list

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.engine import WorkerPool
from swmr_roi_ioc.publish import (
    LiveViews,
    PvaMirror,
    RoiIoc,
    SafeContext,
    Severity,
    Status,
    build_ioc,
    map_shape,
    write_screens,
)

if TYPE_CHECKING:
    from swmr_roi_ioc.publish.web import WebPage

from ._acquisition import CurrentAcquisition
from ._bluesky_source import BlueskySource
from ._fixed_file import FixedFileSource
from ._nexus_out import write_acquisition
from ._plugin_source import PluginSource
from ._recompute import recompute_forever
from ._state import ServiceState

log = logging.getLogger(__name__)


async def _publish_forever(
    ioc: RoiIoc, state: ServiceState, rate_hz: float, mirror: PvaMirror | None
) -> None:
    """Coalesced publishing: at most rate_hz updates per PV, whatever the frame rate.
    Histogram and image of the latest frame are computed here, off the event
    loop, only when the frame changed. The PVA mirror copies the CA values
    right after each CA publish."""
    period = 1.0 / rate_hz
    loop = asyncio.get_running_loop()
    views: LiveViews | None = None
    shown: tuple[int, int] | None = None
    while True:
        started = loop.time()
        key = (state.version, state.frame_generation)
        try:
            if key != shown:
                # the statistics first; the live views (histogram and binned
                # image of the newest frame, numpy work off the loop) after
                # them, so they never delay the numbers: they show one period later
                await ioc.publish(state.snapshot(), views)
                if mirror is not None:
                    await mirror.sync()
                shown = key
                if views is None or views.generation != state.frame_generation:
                    views = await asyncio.to_thread(state.live_views)
                    shown = None  # publish them next period
            else:
                # nothing changed but the clock: Uptime_RBV and ArrayRate_RBV's
                # decay only, so an idle IOC costs next to nothing
                await ioc.publish_clock(state.uptime, state.array_rate)
                if mirror is not None:
                    await mirror.sync_some(ioc.clock_pvs)
        except Exception:  # a failing update must not stop the IOC
            log.exception("publishing failed")
        await asyncio.sleep(max(0.0, period - (loop.time() - started)))


async def _idle_source(state: ServiceState) -> None:
    state.set_status(
        Status.IDLE, "No source configured (source.file, plugin_prefix and bluesky are null)"
    )
    await asyncio.Event().wait()


class Service:
    """One running IOC: the CA server, the publisher and the source."""

    def __init__(self, config: IocConfig, pool: WorkerPool | None = None) -> None:
        self.config = config
        self.state = ServiceState(config)
        self.ioc = build_ioc(config, controller=self.state)
        self.pva = PvaMirror(self.ioc, map_shape(config)) if config.pva else None
        engine = config.engine
        self.pool = pool or WorkerPool(engine.workers, engine.stall_timeout)
        self.pool.on_blocked = self._blocked
        self.current = CurrentAcquisition()
        self._config_text = config.model_dump_json(indent=2)

    def _web_page(self) -> WebPage:
        """The live page (bokeh is imported only when it is enabled). Its edits
        go through a put path with the CA putters' rules and access."""
        from swmr_roi_ioc.publish.web import ControllerPutPath, WebPage

        return WebPage(self.config, self.state, ControllerPutPath(self.config, self.state))

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
        context = SafeContext(self.ioc.pvdb, get_server_address_list())
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
        tasks = [
            asyncio.create_task(context.run(), name="ca-server"),
            asyncio.create_task(
                _publish_forever(self.ioc, self.state, self.config.publish.rate_hz, self.pva),
                name="publisher",
            ),
            asyncio.create_task(source, name="source"),
            asyncio.create_task(
                recompute_forever(self.state, self.current, self._finished), name="recompute"
            ),
        ]
        if self.pva is not None:
            tasks.append(asyncio.create_task(self.pva.serve(), name="pva-server"))
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
    with contextlib.suppress(asyncio.CancelledError):
        await task
