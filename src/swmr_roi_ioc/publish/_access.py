"""Write access by client host and user (ioc.yaml ``access``), for every front end.

One rule: empty lists allow anyone; otherwise the client's host and user must
both be listed. Hosts are matched by address (EPICS ``asCheckClientIP``: a
client's claimed host name is not trusted), so the configured names are
resolved once at start; this machine's own name also covers loopback clients.
The same rule becomes the EPICS access-security file of the CA server
(:meth:`WriteAccess.acf`) and is applied by :class:`PutHandler` to PVA and web puts.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

log = logging.getLogger(__name__)

#: Access-security group of the setpoints (writable VAL); every other record
#: is in DEFAULT (read-only, every field: SCAN, DISP, ... included).
SETPOINT_ASG = "SETPOINT"


def _addresses(name: str) -> set[str]:
    """IPv4 addresses of ``name``; loopback too if it names this machine."""
    found: set[str] = set()
    try:
        for *_, addr in socket.getaddrinfo(name, None, socket.AF_INET):
            found.add(str(addr[0]))
    except OSError:
        log.warning("access.write_hosts: %s does not resolve; no writes from it", name)
    short = name.lower().split(".", 1)[0]
    if short in (socket.gethostname().lower().split(".", 1)[0], "localhost"):
        found.add("127.0.0.1")
    return found


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class WriteAccess:
    """Who may write: ``hosts`` (names or addresses) and ``users``."""

    def __init__(self, hosts: Sequence[str] = (), users: Sequence[str] = ()) -> None:
        self._names = {h.lower() for h in hosts}
        self._users = sorted(set(users))
        self._ips: set[str] = set()
        for host in hosts:
            self._ips |= _addresses(host)

    @property
    def open(self) -> bool:
        return not self._names and not self._users

    def allows(self, host: str, user: str) -> bool:
        """``host``: the client's address (or a name); ``user``: its account."""
        if self._names:
            name = host.lower()
            short = name.split(".", 1)[0]
            if name not in self._ips and name not in self._names and short not in self._names:
                return False
        return not self._users or user in self._users

    def why_not(self, host: str, user: str) -> str:
        return f"write access denied to {user or '?'}@{host or '?'} (ioc.yaml access)"

    def acf(self) -> str:
        """The EPICS access-security file: setpoints writable (VAL only, by
        their ASL0) by the listed clients, with TRAPWRITE so the IOC sees each
        put's sender and raw value; everything else read-only."""
        lines: list[str] = []
        conditions: list[str] = []
        writable = True
        if self._users:
            lines.append(f"UAG(writers) {{ {', '.join(_quoted(u) for u in self._users)} }}")
            conditions.append("UAG(writers)")
        if self._names:
            if self._ips:
                ips = ", ".join(_quoted(ip) for ip in sorted(self._ips))
                lines.append(f"HAG(writers) {{ {ips} }}")
                conditions.append("HAG(writers)")
            else:
                writable = False  # no listed host resolves: nobody may write
        lines += ["ASG(DEFAULT) {", "    RULE(1, READ)", "}", f"ASG({SETPOINT_ASG}) {{",
                  "    RULE(1, READ)"]  # fmt: skip
        if writable:
            rule = "    RULE(0, WRITE, TRAPWRITE)"
            lines.append(rule + (f" {{ {' '.join(conditions)} }}" if conditions else ""))
        lines.append("}")
        return "\n".join(lines) + "\n"
