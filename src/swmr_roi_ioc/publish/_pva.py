"""PVAccess: every PV of the table under the same name, served by p4p.

One p4p ``SharedPV`` per table entry, fed by the same publisher as the CA
records (:meth:`PvaServer.post` is its sink). A client's put goes to the
:class:`PutHandler`, the one put path of every front end (access, check,
apply, PutError_RBV); a refusal comes back as the put's error message.

Why p4p and not softioc's own QSRV2: measured on this workload, QSRV2 lost
updates ("cbLow ring buffer full") and serves NTNDArrays from groups with an
``any`` value, where areaDetector's NDPluginPva serves the value union that
clients of areaDetector read; p4p serves the union and kept every update.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from p4p import Type
from p4p.server import Server, ServerOperation, StaticProvider
from p4p.server.asyncio import Handler, SharedPV

from ._model import AlarmStatus, Severity
from ._puts_rules import PutRefusedError
from ._pva_values import initial_value, nt_type, put_value, update_value
from ._pvtable import PvSpec

log = logging.getLogger(__name__)


class Puts(Protocol):
    def put(self, suffix: str, value: Any, *, host: str, user: str) -> None: ...


class _Handler(Handler):
    """p4p put handler of one PV (the asyncio SharedPV runs it in the loop)."""

    def __init__(self, server: PvaServer, spec: PvSpec) -> None:
        self._server = server
        self._spec = spec

    def put(self, pv: SharedPV, op: ServerOperation) -> None:
        self._server.handle_put(self._spec, op)


class PvaServer:
    """The p4p server of the table's PVs under ``prefix``."""

    def __init__(self, prefix: str, specs: Sequence[PvSpec], puts: Puts) -> None:
        self.prefix = prefix
        self._specs = {spec.suffix: spec for spec in specs}
        self._puts = puts
        self._pvs: dict[str, SharedPV] = {}
        self._sizes: dict[str, int] = {}
        self._posts: dict[str, int] = {}
        self._types: dict[str, Type] = {}
        self._early: dict[str, tuple[PvSpec, Any, Severity, AlarmStatus, float]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._server: Server | None = None
        self._serving = asyncio.Event()

    @property
    def names(self) -> list[str]:
        return sorted(self.prefix + s for s in self._specs)

    def open(self) -> None:
        """Create the PVs (in the running loop, as p4p's asyncio flavour needs)."""
        self._ensure_pvs()

    def _ensure_pvs(self) -> None:
        if self._pvs:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        now = time.time()
        for suffix, spec in self._specs.items():
            self._types[suffix] = nt = nt_type(spec)
            initial = initial_value(spec, nt, spec.initial, now)
            self._pvs[suffix] = SharedPV(handler=_Handler(self, spec), initial=initial)
        early, self._early = self._early, {}
        for args in early.values():
            self.post(*args)

    async def serve(self, *, isolate: bool = False) -> None:
        """Serve until cancelled; configured by the EPICS_PVAS_*/EPICS_PVA_*
        environment as any EPICS server (``isolate``: loopback, random port)."""
        self._ensure_pvs()
        provider = StaticProvider(f"swmr-roi-ioc:{self.prefix}")
        for suffix, pv in self._pvs.items():
            provider.add(self.prefix + suffix, pv)
        try:
            with Server(providers=[provider], isolate=isolate) as server:
                self._server = server
                self._serving.set()
                conf = dict(server.conf())
                port = conf.get("EPICS_PVA_SERVER_PORT", "?")
                log.info("PVA server (p4p) serving %d PVs on port %s", len(self._pvs), port)
                await asyncio.Future[None]()  # until cancelled
        finally:
            self._serving.clear()
            self._server = None
            for pv in self._pvs.values():
                pv.close()
            log.info("PVA server stopped")

    async def wait_serving(self) -> dict[str, str]:
        """Wait until :meth:`serve` listens; its effective config."""
        await self._serving.wait()
        assert self._server is not None
        return dict(self._server.conf())

    # -- the publisher's sink ---------------------------------------------------

    def post(
        self, spec: PvSpec, value: Any, severity: Severity, status: AlarmStatus, stamp: float
    ) -> None:
        if self._loop is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.post, spec, value, severity, status, stamp)
            return
        if spec.kind.integer:
            self._sizes[spec.suffix] = int(value)
        pv = self._pvs.get(spec.suffix)
        if pv is None:  # not open yet: posted when the PVs open
            self._early[spec.suffix] = (spec, value, severity, status, stamp)
            return
        shape = None
        if spec.ndarray is not None:
            nd = spec.ndarray
            rows, cols = self._sizes.get(nd.rows, 0), self._sizes.get(nd.cols, 0)
            shape = (rows, cols) if rows > 0 and cols > 0 else None
        count = self._posts.get(spec.suffix, 0) + 1
        try:
            nt = self._types[spec.suffix]
            update = update_value(
                spec, nt, value, severity, status, stamp, shape=shape, unique_id=count
            )
            pv.post(update)
        except Exception:  # one bad value must not stop the others
            log.exception("PVA post of %s failed", spec.suffix)
            return
        self._posts[spec.suffix] = count

    # -- puts -------------------------------------------------------------------

    def handle_put(self, spec: PvSpec, op: ServerOperation) -> None:
        name = self.prefix + spec.suffix
        try:
            value = put_value(spec, op.value())
            host = str(op.peer() or "").rsplit(":", 1)[0].strip("[]")
            self._puts.put(spec.suffix, value, host=host, user=str(op.account() or ""))
        except (PutRefusedError, ValueError) as exc:
            op.done(error=str(exc) or type(exc).__name__)
        except Exception as exc:  # a put must be answered, whatever happened
            log.exception("PVA put to %s failed", name)
            op.done(error=f"{name}: {exc}")
        else:
            op.done()
