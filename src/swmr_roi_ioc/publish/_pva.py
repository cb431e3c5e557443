"""The PVAccess mirror: every PV of the caproto IOC, same names, served by p4p.

The caproto channels stay the single source of truth. :meth:`PvaMirror.sync`
copies value, alarm and timestamp of each channel that changed to its p4p
``SharedPV`` (the app calls it right after each CA publish, so PVA updates at the
publish rate too). A PVA put is written through caproto (``ChannelData.write``),
so the same putter validates it, the same controller applies it and CA monitors
see it; a refusal comes back to the PVA client as the put's error message.

Maps (``n:Map``, ``Frame:Map``, ``Frame:MaxMap``) and ``Image`` are NTNDArrays
with their real 2-D shape (dimension[0] = x = columns, as areaDetector).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from caproto import ChannelData
from p4p.server import Server, ServerOperation, StaticProvider
from p4p.server.asyncio import Handler, SharedPV

from ._ca import RoiIoc
from ._pva_values import ChannelState, Kind, PvSpec, ShapeOf, describe, initial_value, put_value
from ._pva_values import update_value as _update_value

log = logging.getLogger(__name__)

#: Last name component of the waveforms served as 2-D maps (rows x cols of the scan).
MAP_SUFFIXES = ("Map", "MaxMap")
#: PV (after the prefix) of the live image, and its size PVs.
IMAGE = "Image"
IMAGE_SIZE = ("ImageSizeY_RBV", "ImageSizeX_RBV")


class _Handler(Handler):
    """p4p put handler of one PV; the asyncio SharedPV runs the coroutine in the loop."""

    def __init__(self, put: Callable[[PvSpec, ServerOperation], Awaitable[None]], spec: PvSpec):
        self._put = put
        self._spec = spec

    # p4p.server.asyncio runs a coroutine handler as a task in the loop (base: sync)
    async def put(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, pv: SharedPV, op: ServerOperation
    ) -> None:
        await self._put(self._spec, op)


class PvaMirror:
    """Serves every PV of ``ioc`` over PVAccess; ``map_shape`` is (rows, cols) of the maps."""

    def __init__(self, ioc: RoiIoc, map_shape: tuple[int, int]) -> None:
        self._ioc = ioc
        self._map_shape = (int(map_shape[0]), int(map_shape[1]))
        self._specs: dict[str, PvSpec] = {}
        for name, chan in ioc.pvdb.items():
            writable = not bool(getattr(chan.pvspec, "read_only", False))
            self._specs[name] = describe(name, chan, self._shape_of(name), writable)
        self._pvs: dict[str, SharedPV] = {}
        self._last: dict[str, ChannelState] = {}
        self._posts: dict[str, int] = {}
        self._server: Server | None = None
        self._serving = asyncio.Event()

    @property
    def names(self) -> list[str]:
        """Every PV name served, sorted (the same as the CA IOC's)."""
        return sorted(self._specs)

    def kind(self, name: str) -> Kind:
        """What ``name`` is over PVAccess."""
        return self._specs[name].kind

    # -- serving ----------------------------------------------------------------

    async def serve(self, *, isolate: bool = False) -> None:
        """Serve until cancelled. ``isolate=True``: loopback, random port (tests).

        Otherwise the server takes its configuration from the EPICS_PVAS_* /
        EPICS_PVA_* environment, as any EPICS server does."""
        self._ensure_pvs()
        provider = StaticProvider(f"swmr-roi-ioc:{self._ioc.prefix}")
        for name, pv in self._pvs.items():
            provider.add(name, pv)
        try:
            with Server(providers=[provider], isolate=isolate) as server:
                self._server = server
                self._serving.set()
                log.info("PVA mirror serving %d PVs (%s)", len(self._pvs), _port(server))
                await asyncio.Future[None]()  # until cancelled
        finally:
            self._serving.clear()
            self._server = None
            for pv in self._pvs.values():
                pv.close()
            self._pvs.clear()
            self._last.clear()
            log.info("PVA mirror stopped")

    async def wait_serving(self) -> dict[str, str]:
        """Wait until :meth:`serve` listens; its effective config (for a client Context)."""
        await self._serving.wait()
        assert self._server is not None
        return dict(self._server.conf())

    # -- CA -> PVA --------------------------------------------------------------

    async def sync(self) -> None:
        """Post every channel whose value, alarm or timestamp changed since the last sync."""
        self._ensure_pvs()
        self._post_changed()

    async def sync_some(self, names: list[str]) -> None:
        """:meth:`sync` for the channels of these CA PV names only."""
        self._ensure_pvs()
        for name in names:
            spec = self._specs.get(name)
            if spec is not None:
                self._post_if_changed(spec)

    def _post_changed(self) -> None:
        for spec in self._specs.values():
            self._post_if_changed(spec)

    def _ensure_pvs(self) -> None:
        """Create the SharedPVs (inside the running loop, as p4p's asyncio flavour needs)."""
        if self._pvs:
            return
        for name, spec in self._specs.items():
            handler = _Handler(self._put, spec)
            self._pvs[name] = SharedPV(handler=handler, initial=initial_value(spec))
            self._last[name] = ChannelState.of(spec.chan)

    def _post_if_changed(self, spec: PvSpec) -> None:
        pv = self._pvs.get(spec.name)
        if pv is None:
            return
        state = ChannelState.of(spec.chan)
        last = self._last.get(spec.name)
        if last is not None and state.same_as(last):
            return
        count = self._posts.get(spec.name, 0) + 1
        try:
            pv.post(_update_value(spec, state, unique_id=count))
        except Exception:  # one bad value must not stop the others
            log.exception("PVA post of %s failed", spec.name)
            return
        self._posts[spec.name] = count
        self._last[spec.name] = state

    # -- PVA -> CA --------------------------------------------------------------

    async def _put(self, spec: PvSpec, op: ServerOperation) -> None:
        """A client's put: through caproto's write, then op.done() or op.done(error=...)."""
        try:
            if not spec.writable:
                raise PermissionError(f"{spec.name} is read-only")
            user = str(op.account() or "")
            hosts = _peer_hosts(op)
            if not any(self._ioc.access.allows(h, user) for h in hosts):
                raise PermissionError(self._ioc.access.why_not(hosts[0], user))
            value = put_value(spec, op.value())
            await spec.chan.write(value)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            log.info("PVA put to %s refused: %s", spec.name, reason)
            op.done(error=reason)
        except BaseException:
            op.done(error="server shutting down")
            raise
        else:
            log.debug("PVA put to %s: %r", spec.name, value)
            op.done()
        # show the outcome at once: the new value, or caproto's WRITE alarm (which
        # caproto raises on the alarm the whole PVGroup shares)
        self._post_changed()

    # -- shapes -----------------------------------------------------------------

    def _shape_of(self, name: str) -> ShapeOf | None:
        """How to shape ``name`` as an NTNDArray, or None if it is not one."""
        prefix = self._ioc.prefix
        suffix = name[len(prefix) :] if name.startswith(prefix) else name
        if suffix.rsplit(":", 1)[-1] in MAP_SUFFIXES:
            return self._map
        if suffix == IMAGE:
            sizes = [self._ioc.pvdb.get(prefix + s) for s in IMAGE_SIZE]
            if all(s is not None for s in sizes):
                return lambda n: self._image(n, sizes)
            return _one_row
        return None

    def _map(self, n: int) -> tuple[int, int]:
        """The map's shape now: MapSizeY/X_RBV (the geometry may come from the
        file or the plugin), else the shape given at construction."""
        prefix = self._ioc.prefix
        sizes = [self._ioc.pvdb.get(prefix + s) for s in ("MapSizeY_RBV", "MapSizeX_RBV")]
        if all(s is not None for s in sizes):
            rows, cols = (int(s.value) if s is not None else 0 for s in sizes)
            if 0 < rows * cols == n:
                return (rows, cols)
        rows, cols = self._map_shape
        return (rows, cols) if rows * cols == n else _one_row(n)

    @staticmethod
    def _image(n: int, sizes: Sequence[ChannelData | None]) -> tuple[int, int]:
        rows, cols = (int(s.value) if s is not None else 0 for s in sizes)
        return (rows, cols) if 0 < rows * cols <= n else _one_row(n)


def _peer_hosts(op: ServerOperation) -> list[str]:
    """The client's host from op.peer() ('ip:port'): its address and its names;
    a local address also counts as this machine's host name."""
    peer = str(op.peer() or "")
    address = peer.rsplit(":", 1)[0].strip("[]")
    names = [address]
    try:
        name, aliases, _ = socket.gethostbyaddr(address)
        names += [name, *aliases]
    except OSError:
        pass
    if address.startswith("127.") or address == "::1":
        names.append(socket.gethostname())
    return names


def _one_row(n: int) -> tuple[int, int]:
    return (1, n)


def _port(server: Server) -> str:
    conf: dict[str, Any] = dict(server.conf())
    return f"port {conf.get('EPICS_PVA_SERVER_PORT', '?')}"
