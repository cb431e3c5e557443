"""Write access by client host and user (ioc.yaml ``access``), for CA and PVA."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from caproto import AccessRights

log = logging.getLogger(__name__)


class WriteAccess:
    """Empty lists allow anyone; otherwise host and user must both be listed.
    Host names match case-insensitively, fully qualified or short."""

    def __init__(self, hosts: Sequence[str] = (), users: Sequence[str] = ()) -> None:
        self._hosts = {h.lower() for h in hosts}
        self._users = set(users)

    @property
    def open(self) -> bool:
        return not self._hosts and not self._users

    def allows(self, host: str, user: str) -> bool:
        if self._hosts:
            name = host.lower()
            short = name.split(".", 1)[0]
            if name not in self._hosts and short not in self._hosts:
                return False
        return not self._users or user in self._users

    def why_not(self, host: str, user: str) -> str:
        return f"write access denied to {user or '?'}@{host or '?'} (ioc.yaml access)"

    def guard_ca(self, pvdb: dict[str, Any]) -> None:
        """Restrict caproto's access rights of every writable PV in ``pvdb``."""
        if self.open:
            return
        for chan in pvdb.values():
            original = chan.check_access

            def check(host: str, user: str, original: Any = original) -> Any:
                rights = original(host, user)
                if not self.allows(host, user):
                    rights &= ~AccessRights.WRITE
                return rights

            chan.check_access = check
