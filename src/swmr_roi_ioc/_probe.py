"""``swmr-roi-ioc probe``: is this instance's IOC alive? (liveness, HEALTHCHECK)

Several IOCs may share one host's network (epics-containers runs IOCs with
hostNetwork): they all bind UDP 5064, and a unicast Channel Access search
reaches only one of them, so a probe that searches would ask a neighbour. An
EPICS base (RSRV) IOC that finds TCP 5064 taken serves on an ephemeral port.

So the probe asks no one: it reads the pid the service wrote
(``config.pid_file``), takes that process's listening TCP sockets from
``/proc``, and speaks Channel Access over TCP to each until one serves the
instance's uptime PV (a channel is created by name on the circuit, no search
involved). It reads the uptime twice, ADVANCE_S apart: it must advance, which
shows the service's event loop publishes, not only that a CA server answers.
Works with any CA server (caproto, RSRV), on loopback or any address.
"""

from __future__ import annotations

import getpass
import os
import socket
import struct
import time
from pathlib import Path

from swmr_roi_ioc.config import IocConfig, pid_file
from swmr_roi_ioc.publish._pvtable import UPTIME

#: The IOC's uptime PV, after the prefix.
#: Seconds between the two reads of the uptime (it is published once a second).
ADVANCE_S = 1.5
#: Channel Access protocol: commands and the minor version spoken.
CA_VERSION, CA_READ_NOTIFY, CA_CREATE_CHAN, CA_CREATE_CH_FAIL = 0, 15, 18, 26
CA_CLIENT_NAME, CA_HOST_NAME, CA_MINOR = 20, 21, 13
DBR_DOUBLE = 6
ECA_NORMAL = 1
_HEADER = struct.Struct(">HHHHII")


class ProbeError(Exception):
    """The IOC did not answer as a live one does."""


def _message(command: int, payload: bytes = b"", dtype: int = 0, count: int = 0,
             p1: int = 0, p2: int = 0) -> bytes:  # fmt: skip
    padded = payload + b"\0" * (-len(payload) % 8)
    return _HEADER.pack(command, len(padded), dtype, count, p1, p2) + padded


def _padded_name(text: str) -> bytes:
    return text.encode() + b"\0"


class _Circuit:
    """One CA virtual circuit (TCP) to a server, blocking with a deadline."""

    def __init__(self, port: int, deadline: float) -> None:
        self._deadline = deadline
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=self._left())
        self._buffer = b""
        self._ioid = 0
        hello = (
            _message(CA_VERSION, count=CA_MINOR)
            + _message(CA_CLIENT_NAME, _padded_name(_user()))
            + _message(CA_HOST_NAME, _padded_name(socket.gethostname()))
        )
        self._sock.sendall(hello)

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer in time")
        return left

    def close(self) -> None:
        self._sock.close()

    def _receive(self) -> tuple[tuple[int, int, int, int, int, int], bytes]:
        while True:
            if len(self._buffer) >= _HEADER.size:
                head = _HEADER.unpack_from(self._buffer)
                end = _HEADER.size + head[1]
                if len(self._buffer) >= end:
                    payload = self._buffer[_HEADER.size : end]
                    self._buffer = self._buffer[end:]
                    return head, payload
            self._sock.settimeout(self._left())
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk

    def channel(self, name: str) -> int:
        """Create a channel by name on this circuit; its server id."""
        self._sock.sendall(_message(CA_CREATE_CHAN, _padded_name(name), p1=1, p2=CA_MINOR))
        while True:
            head, _ = self._receive()
            if head[0] == CA_CREATE_CHAN:
                return head[5]
            if head[0] == CA_CREATE_CH_FAIL:
                raise ProbeError(f"{name} is not served here")

    def read_double(self, sid: int) -> float:
        self._ioid += 1
        self._sock.sendall(_message(CA_READ_NOTIFY, dtype=DBR_DOUBLE, count=1, p1=sid,
                                    p2=self._ioid))  # fmt: skip
        while True:
            head, payload = self._receive()
            if head[0] == CA_READ_NOTIFY and head[5] == self._ioid:
                if head[4] != ECA_NORMAL or len(payload) < 8:
                    raise ProbeError(f"read failed (CA status {head[4]})")
                return float(struct.unpack_from(">d", payload)[0])


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "probe"


def listening_ports(pid: int) -> list[int]:
    """TCP ports process ``pid`` listens on (IPv4 and IPv6), from /proc."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: list[int] = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port not in ports:
                    ports.append(port)
    return ports


def uptime_pv(config: IocConfig) -> str:
    """The PV the probe reads (tests check it is one the IOC serves; the PV
    table is not built here: that costs seconds, too many for a probe)."""
    return f"{config.prefix}{UPTIME}"


def probe(config: IocConfig, timeout: float = 5.0) -> tuple[bool, str]:
    """(alive?, what was seen) for the instance of ``config`` on this host."""
    deadline = time.monotonic() + timeout
    path = pid_file(config.ioc_name)
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError) as exc:
        return False, f"{config.ioc_name}: no pid file {path} ({exc}): not running here?"
    try:
        ports = listening_ports(pid)
    except OSError:
        return False, f"{config.ioc_name}: process {pid} (from {path}) is not running"
    pv = uptime_pv(config)
    problems: list[str] = []
    for port in ports:
        try:
            first, second = _read_twice(port, pv, deadline)
        except (OSError, ProbeError, struct.error) as exc:
            problems.append(f"TCP {port}: {exc or type(exc).__name__}")
            continue
        if second <= first:
            return False, f"{config.ioc_name}: {pv} stuck at {second:g} s (TCP {port})"
        return True, f"{config.ioc_name}: alive, {pv} = {second:g} s (pid {pid}, TCP {port})"
    seen = "; ".join(problems) or "no listening TCP socket"
    return False, f"{config.ioc_name}: pid {pid} does not serve {pv}: {seen}"


def _read_twice(port: int, pv: str, deadline: float) -> tuple[float, float]:
    # a port that is not CA (PVA, the web page) fails fast or at its share of the time
    circuit = _Circuit(port, min(deadline, time.monotonic() + ADVANCE_S + 2.0))
    try:
        sid = circuit.channel(pv)
        first = circuit.read_double(sid)
        time.sleep(min(ADVANCE_S, max(0.0, deadline - time.monotonic() - 0.5)))
        return first, circuit.read_double(sid)
    finally:
        circuit.close()
