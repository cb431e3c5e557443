"""The live page's server: Bokeh's server embedded in the IOC's asyncio loop.

One feed task turns the service state into :class:`PageData` at the publish
rate, only while some browser is watching; every browser's page copies it
into its plots. BokehJS comes from the server itself (it ships in the bokeh
wheel), so the page works on a network without internet.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.document import Document
from bokeh.server.server import Server
from bokeh.settings import settings
from tornado.ioloop import IOLoop

from swmr_roi_ioc.config import IocConfig

from ._feed import ImageView, PageData, PageState, PutPath, image_view, page_data
from ._page import LivePage

log = logging.getLogger(__name__)


def page_url(config: IocConfig) -> str:
    """Where a browser on this host finds the page."""
    host = config.web.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.web.port}/"


def _origins(host: str, port: int) -> list[str]:
    """Origins whose pages may open the websocket: the page's own address.
    Listening on every interface, the page may be reached under any name."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return [f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]


class WebPage:
    """The page's server and its feed; :meth:`serve` runs until cancelled."""

    def __init__(self, config: IocConfig, state: PageState, put: PutPath | None) -> None:
        self.config = config
        self._state = state
        self._put = put if config.web.allow_edit else None
        self._period = 1.0 / config.publish.rate_hz
        self._latest: PageData | None = None
        self._watchers = 0
        self._map_shape = state.snapshot().map_shape

    @property
    def url(self) -> str:
        return page_url(self.config)

    def latest(self) -> PageData | None:
        """The newest data for the pages (None before the first feed)."""
        return self._latest

    def _session(self, doc: Document) -> None:
        """A browser opened the page: its own document."""
        context: Any = doc.session_context
        request: Any = context.request if context is not None else None
        host = str(getattr(request, "remote_ip", "") or "")
        self._watchers += 1
        doc.on_session_destroyed(self._gone)
        LivePage(
            doc,
            title=f"{self.config.ioc_name} — {self.config.prefix}",
            roi_names=[r.name for r in self.config.rois],
            map_shape=self._map_shape,
            put=self._put,
            client_host=host,
            latest=self.latest,
            period_ms=max(20, round(self._period * 1000)),
        )

    def _gone(self, _context: Any) -> None:
        self._watchers = max(0, self._watchers - 1)

    async def serve(self) -> None:
        """Listen on web.host:web.port and feed the pages until cancelled. A
        port that cannot be bound is logged; the PVs are served regardless."""
        web = self.config.web
        settings.resources.set_value("server")  # BokehJS from this server, never a CDN
        for name in ("bokeh", "tornado.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            server = Server(
                {"/": Application(FunctionHandler(self._session))},
                io_loop=IOLoop.current(),
                address=web.host,
                port=web.port,
                allow_websocket_origin=_origins(web.host, web.port),
            )
        except OSError as exc:
            log.error("live page not served: cannot listen on %s:%d: %s", web.host, web.port, exc)
            await asyncio.Event().wait()
            return
        server.start()
        log.info("live page at %s (editing %s)", self.url, "on" if self._put else "off")
        try:
            await self._feed()
        finally:
            server.stop()

    async def _feed(self) -> None:
        """PageData at the publish rate while a page is open; the image and
        histogram when the engine made new ones."""
        loop = asyncio.get_running_loop()
        image: ImageView | None = None
        key: tuple[int, int] | None = None
        while True:
            started = loop.time()
            if self._watchers:
                try:
                    if image is None or image.generation != self._state.views_generation:
                        views = self._state.live_views()  # made by the engine
                        image = image_view(views) if views is not None else None
                    now = (self._state.version, image.generation if image else -1)
                    if now != key or self._latest is None:
                        self._latest = page_data(self._state.snapshot(), image)
                        key = now
                    elif self._latest.array_rate != (rate := self._state.array_rate):
                        self._latest = replace(self._latest, array_rate=rate)  # its decay
                except Exception:  # a failing update must not stop the page
                    log.exception("live page update failed")
            await asyncio.sleep(max(0.0, self._period - (loop.time() - started)))
