"""The one put path of every front end (CA records, PVA, the web page).

``PutHandler.put(suffix, value, host=..., user=...)`` checks write access,
checks the value by the PV table's rule, applies it to the controller and
shows the new setpoint on every front end; a refusal raises
:class:`PutRefusedError` with the reason, which also goes to ``PutError_RBV``
and to the log (a refused CA put has no text on the wire).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from ._access import WriteAccess
from ._puts_rules import PUT_ERROR, Controller, PutRefusedError
from ._pvtable import PvSpec

log = logging.getLogger(__name__)


class Shows(Protocol):
    """What the put path tells the publisher (see :class:`Publisher`)."""

    def show(self, spec: PvSpec, value: Any, *, skip_ca: bool = False) -> None: ...


class PutHandler:
    """Access, check, apply and show a put; :meth:`put` is the public entry."""

    def __init__(
        self,
        prefix: str,
        specs: Sequence[PvSpec],
        controller: Controller,
        access: WriteAccess,
        shows: Shows,
    ) -> None:
        self.prefix = prefix
        self._specs = {spec.suffix: spec for spec in specs}
        self._controller = controller
        self.access = access
        self._shows = shows

    def put(self, suffix: str, value: Any, *, host: str, user: str) -> None:
        """Write ``value`` to the PV ``prefix + suffix`` for ``user`` at ``host``
        (the client's address); raises PutRefusedError(reason)."""
        self._put(suffix, value, host, user, from_ca=False)

    def put_from_ca(self, suffix: str, value: Any, host: str, user: str) -> None:
        """A CA put, already allowed by the IOC's access security; the record
        takes the value itself when this returns."""
        self._put(suffix, value, host, user, from_ca=True)

    def _put(self, suffix: str, value: Any, host: str, user: str, *, from_ca: bool) -> None:
        name = self.prefix + suffix
        try:
            spec = self._specs.get(suffix)
            if spec is None:
                raise PutRefusedError(f"{name}: no such writable PV")
            rule = spec.put
            if rule is None:
                raise PutRefusedError(f"{name} is read-only")
            if not from_ca and not self.access.allows(host, user):
                raise PutRefusedError(self.access.why_not(host, user))
            checked = rule.check(value, name)
            try:
                rule.apply(self._controller, checked)
            except ValueError as exc:
                raise PutRefusedError(f"{name}: {exc}") from exc
        except PutRefusedError as exc:
            self._refused(name, str(exc), host, user)
            raise
        log.info("%s = %r (put by %s@%s)", name, checked, user or "?", host or "?")
        self._shows.show(spec, rule.shows(checked), skip_ca=from_ca)

    def _refused(self, name: str, reason: str, host: str, user: str) -> None:
        log.warning("put to %s by %s@%s refused: %s", name, user or "?", host or "?", reason)
        spec = self._specs.get(PUT_ERROR)
        if spec is not None:
            self._shows.show(spec, reason)
