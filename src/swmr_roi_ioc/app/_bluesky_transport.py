"""Where bluesky documents come from: a STOMP broker or bluesky's 0MQ proxy.

Both hand every ``(name, doc)`` pair to ``on_document`` and the state of
their link to ``on_link`` (a problem as text, None when fine), both on the
event loop. Neither ever ends by itself: a broker that goes away is retried
with backoff until it is back.

- STOMP: blueapi publishes ``{"name": ..., "doc": ..., "task_id": ...}``
  (its DataEvent, JSON) on ``/topic/<topic>``; other messages on the same
  topic (blueapi's worker and progress events) are skipped.
- 0MQ: bluesky's ``Publisher`` -> ``Proxy`` sends ``b"<prefix> <name> <doc>"``
  with the document serialised as JSON (the publisher's ``serializer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any, cast

import stomp  # pyright: ignore[reportMissingTypeStubs]
import zmq
import zmq.asyncio
from stomp.exception import StompException  # pyright: ignore[reportMissingTypeStubs]
from zmq.utils.monitor import parse_monitor_message

from swmr_roi_ioc.config import StompConfig

log = logging.getLogger(__name__)

DocumentSink = Callable[[str, object], None]
LinkSink = Callable[[str | None], None]

#: Reconnection backoff: first retry after BACKOFF_MIN s, doubling to BACKOFF_MAX.
BACKOFF_MIN = 0.5
BACKOFF_MAX = 10.0
#: STOMP heart-beats (ms) both ways: a broker that stops answering is noticed.
HEARTBEAT_MS = 5000


def parse_data_event(body: str | bytes) -> tuple[str, object] | None:
    """(name, doc) of a blueapi DataEvent; None for any other message."""
    try:
        message = json.loads(body)
    except ValueError:
        log.warning("ignoring a message that is not JSON: %.200r", body)
        return None
    if not isinstance(message, dict):
        return None
    event = cast(dict[str, Any], message)
    name, doc = event.get("name"), event.get("doc")
    if not isinstance(name, str) or doc is None:
        return None  # blueapi's WorkerEvent / ProgressEvent on the same topic
    return name, doc


class _Listener(stomp.ConnectionListener):  # type: ignore[misc]
    """stomp.py's receiver thread -> the event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_document: DocumentSink, lost: asyncio.Event
    ) -> None:
        self._loop = loop
        self._on_document = on_document
        self._lost = lost

    def on_message(self, frame: Any) -> None:
        parsed = parse_data_event(frame.body)
        if parsed is not None:
            self._loop.call_soon_threadsafe(self._on_document, *parsed)

    def on_disconnected(self) -> None:
        self._loop.call_soon_threadsafe(self._lost.set)

    def on_heartbeat_timeout(self) -> None:
        self._loop.call_soon_threadsafe(self._lost.set)

    def on_error(self, frame: Any) -> None:
        log.warning("STOMP broker error: %s", getattr(frame, "body", frame))


class StompDocuments:
    """Documents from blueapi's STOMP topic, reconnecting with backoff."""

    def __init__(self, cfg: StompConfig, on_document: DocumentSink, on_link: LinkSink) -> None:
        self._cfg = cfg
        self._on_document = on_document
        self._on_link = on_link
        self.where = f"STOMP broker {cfg.host}:{cfg.port}"

    def _credentials(self) -> tuple[str | None, str | None]:
        password = None
        if self._cfg.password_env is not None:
            password = os.environ.get(self._cfg.password_env)
            if password is None:
                raise StompException(
                    f"the environment variable {self._cfg.password_env} (password_env) is not set"
                )
        return self._cfg.user, password

    def _connect(self, listener: _Listener) -> Any:
        """Blocking: a connected, subscribed connection (raises on failure)."""
        conn: Any = stomp.StompConnection11(
            [(self._cfg.host, self._cfg.port)],
            vhost="/",
            heartbeats=(HEARTBEAT_MS, HEARTBEAT_MS),
            reconnect_attempts_max=1,
            timeout=5.0,
            auto_content_length=False,
        )
        conn.set_listener("swmr-roi-ioc", listener)
        user, password = self._credentials()
        try:
            if user is not None:
                conn.connect(username=user, passcode=password or "", wait=True)
            else:
                conn.connect(wait=True)
            conn.subscribe(destination=f"/topic/{self._cfg.topic}", id="1", ack="auto")
        except BaseException:
            _close(conn)
            raise
        return conn

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN
        while True:
            lost = asyncio.Event()
            listener = _Listener(loop, self._on_document, lost)
            try:
                conn = await asyncio.to_thread(self._connect, listener)
            except (StompException, OSError) as exc:
                why = str(exc) or type(exc).__name__
                self._on_link(f"{self.where} not reachable ({why})")
                log.info("%s: %s; retrying in %.1f s", self.where, why, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            log.info("%s: subscribed to /topic/%s", self.where, self._cfg.topic)
            self._on_link(None)
            delay = BACKOFF_MIN
            try:
                await lost.wait()
            finally:
                await asyncio.to_thread(_close, conn)
            self._on_link(f"{self.where}: connection lost; reconnecting")
            log.warning("%s: connection lost", self.where)


def _close(conn: Any) -> None:
    try:
        if conn.is_connected():
            conn.disconnect()
        conn.transport.stop()
    except Exception as exc:  # noqa: BLE001 - closing a dead connection must not raise
        log.debug("closing the STOMP connection: %s", exc)


class ZmqDocuments:
    """Documents from a bluesky 0MQ proxy's output (JSON serializer); 0MQ
    reconnects by itself with backoff, its socket monitor tells the link."""

    def __init__(self, address: str, on_document: DocumentSink, on_link: LinkSink) -> None:
        self._address = address
        self._on_document = on_document
        self._on_link = on_link
        self.where = f"0MQ proxy {address}"

    def _handle(self, message: bytes) -> None:
        try:
            _prefix, name, body = message.split(b" ", 2)
            doc = json.loads(body)
        except ValueError:
            log.warning("ignoring a 0MQ message that is not '<prefix> <name> <JSON>': %.200r",
                        message)  # fmt: skip
            return
        self._on_document(name.decode(errors="replace"), doc)

    async def _watch(self, monitor: zmq.asyncio.Socket) -> None:
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())
            kind = event["event"]
            if kind == zmq.EVENT_CONNECTED:
                log.info("%s: connected", self.where)
                self._on_link(None)
            elif kind == zmq.EVENT_DISCONNECTED:
                log.warning("%s: connection lost", self.where)
                self._on_link(f"{self.where}: connection lost; reconnecting")

    async def run(self) -> None:
        context = zmq.asyncio.Context()
        sock = context.socket(zmq.SUB)
        sock.setsockopt(zmq.RECONNECT_IVL, int(BACKOFF_MIN * 1000))
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, int(BACKOFF_MAX * 1000))
        sock.setsockopt(zmq.LINGER, 0)
        monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._on_link(f"{self.where} not reachable yet")
        sock.subscribe(b"")
        sock.connect(f"tcp://{self._address}")
        watcher = asyncio.create_task(self._watch(monitor), name="zmq-monitor")
        try:
            while True:
                self._handle(await sock.recv())
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            sock.disable_monitor()
            monitor.close(linger=0)
            sock.close(linger=0)
            context.term()
