"""pythonSoftIOC records of the simulated camera, with areaDetector's semantics.

- :class:`Pv` is one record as the camera's code sees it: ``value`` (enum
  records give their choice string) and ``set()`` from inside the IOC, which
  posts to every monitor and never runs the record's put handler;
- :class:`RecordBuilder` makes the records of one port (``prefix + name``):
  readbacks are input records, setpoints are output records whose put
  completes (``ca_put_callback``) once their handler has run, on every put
  (``always_update``), as an asyn port processes every write;
- :class:`Busy` is ADCore's ``busy`` record (``Acquire``, ``Capture``): a
  put of 1 starts an operation and its put callback completes only when
  the operation ends, while a put of 0 (a stop) is taken at once.

EPICS base has no busy record here, so :class:`Busy` is two records: the
one clients write, not blocking, whose forward link processes a hidden
blocking record (``<name>_Busy``) that stays active until the operation
ends. A put callback waits for every record its put processed, so it waits
for the hidden one; the record clients write is never active, so a stop
reaches it (a blocking ``Acquire`` would queue the stop behind the start).

All handlers run on the asyncio loop the IOC was started with
(``AsyncioDispatcher``); so does all the camera's code. softioc is imported
when the first record is made: importing the simulator (e.g. for its file
writer) does not load EPICS.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

#: Length of the CHAR waveforms that carry paths, templates and messages.
LONG_STRING = 1024

#: A put handler: takes the written value (enum records: the choice string).
Handler = Callable[[Any], Awaitable[None] | None]

#: Set while this thread writes a record from inside the IOC (Pv.set).
_inside = threading.local()


class Pv:
    """One record: its value, and ``set()`` from inside the IOC."""

    def __init__(self, record: Any, choices: Sequence[str] | None, *, output: bool) -> None:
        self.record = record
        self.name: str = record.name
        self.choices = tuple(choices) if choices is not None else None
        self.output = output
        #: The readback of a setpoint (``<name>_RBV``), if any.
        self.readback: Pv | None = None
        # per record processing that called on_update: True if Pv.set caused it
        self._origins: collections.deque[bool] = collections.deque()

    @property
    def value(self) -> Any:
        raw = self.record.get()
        if self.choices is not None:
            return self.choices[int(raw)]
        return raw

    def _raw(self, value: Any) -> Any:
        if self.choices is not None and isinstance(value, str):
            return self.choices.index(value)
        return value

    def set(self, value: Any) -> None:
        """Change the value and post it; a setpoint's put handler is not run.

        Not for a setpoint from inside its own put handler: the record is
        still active then, so EPICS processes it again afterwards, from
        another thread, and the handler runs as for a client's put.
        """
        raw = self._raw(value)
        if not self.output:
            self.record.set(raw)
            return
        _inside.active = True
        try:
            self.record.set(raw)  # processes the record: monitors see it
        finally:
            _inside.active = False

    def set_both(self, value: Any) -> None:
        """Change a setpoint and its readback from inside the IOC."""
        self.set(value)
        if self.readback is not None:
            self.readback.set(value)

    def to_value(self, raw: Any) -> Any:
        """A value as an output record hands it to on_update -> as ``value``."""
        if self.choices is not None:
            return self.choices[int(raw)]
        return raw

    # -- called by softioc ------------------------------------------------------

    def note_origin(self, _record: Any, _value: Any) -> bool:
        # softioc calls validate, then dispatches on_update, in the thread that
        # processes the record and under its lock: the origins stay in order
        self._origins.append(bool(getattr(_inside, "active", False)))
        return True

    def came_from_set(self) -> bool:
        """In on_update: True if this processing came from :meth:`set`."""
        return self._origins.popleft() if self._origins else False


class RecordBuilder:
    """Makes the records of one areaDetector port, named ``prefix + name``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.builder = _builder()

    def _record(
        self,
        kinds: tuple[str, str],
        name: str,
        value: Any,
        *,
        writable: bool,
        on_put: Handler | None,
        choices: Sequence[str] | None = None,
        **fields: Any,
    ) -> Pv:
        """A record of softioc.builder's kind ``kinds[0]`` (input) or ``[1]`` (output)."""
        full = self.prefix + name
        args = tuple(choices) if kinds[0] == "mbbIn" and choices else ()
        if not writable:
            record = getattr(self.builder, kinds[0])(full, *args, initial_value=value, **fields)
            return Pv(record, choices, output=False)
        cell: list[Pv] = []  # the Pv, once its record exists

        def validate(record: Any, raw: Any) -> bool:
            return cell[0].note_origin(record, raw)

        async def on_update(raw: Any) -> None:
            pv = cell[0]
            if pv.came_from_set():
                return  # Pv.set: the value is posted, nothing else to do
            handler = on_put if on_put is not None else _mirror(pv)
            result = handler(pv.to_value(raw))
            if inspect.isawaitable(result):
                await result

        record = getattr(self.builder, kinds[1])(
            full,
            *args,
            initial_value=value,
            on_update=on_update,
            validate=validate,
            always_update=True,  # an asyn port acts on every write, same value or not
            blocking=True,  # the put callback completes once on_update has run
            **fields,
        )
        cell.append(Pv(record, choices, output=True))
        return cell[0]

    # -- record kinds -----------------------------------------------------------

    def number(
        self,
        name: str,
        value: float,
        *,
        writable: bool = False,
        on_put: Handler | None = None,
        units: str | None = None,
        precision: int | None = None,
    ) -> Pv:
        """A longin/longout (int ``value``) or ai/ao (float ``value``) record."""
        if isinstance(value, int):
            extra: dict[str, Any] = {"EGU": units} if units else {}
            kinds = ("longIn", "longOut")
        else:
            extra = {"EGU": units, "PREC": precision}
            kinds = ("aIn", "aOut")
        return self._record(kinds, name, value, writable=writable, on_put=on_put, **extra)

    def text(
        self, name: str, value: str = "", *, writable: bool = False, on_put: Handler | None = None
    ) -> Pv:
        """A long string as a CHAR waveform (``caget -S``), as ADCore's paths."""
        kinds = ("longStringIn", "longStringOut")
        return self._record(
            kinds, name, value, writable=writable, on_put=on_put, length=LONG_STRING
        )

    def string(
        self, name: str, value: str = "", *, writable: bool = False, on_put: Handler | None = None
    ) -> Pv:
        """A DBR_STRING (40 characters) record: stringin/stringout."""
        kinds = ("stringIn", "stringOut")
        return self._record(kinds, name, value, writable=writable, on_put=on_put)

    def choice(
        self,
        name: str,
        choices: Sequence[str],
        value: str | None = None,
        *,
        writable: bool = False,
        on_put: Handler | None = None,
    ) -> Pv:
        """An enum record (bi/bo for two choices, mbbi/mbbo for more)."""
        index = 0 if value is None else list(choices).index(value)
        if len(choices) == 2:
            names = {"ZNAM": choices[0], "ONAM": choices[1]}
            return self._record(
                ("boolIn", "boolOut"),
                name,
                index,
                writable=writable,
                on_put=on_put,
                choices=choices,
                **names,
            )
        return self._record(
            ("mbbIn", "mbbOut"), name, index, writable=writable, on_put=on_put, choices=choices
        )

    def pair(
        self,
        kind: Callable[..., Pv],
        name: str,
        *args: Any,
        on_put: Handler | None = None,
        **kwargs: Any,
    ) -> tuple[Pv, Pv]:
        """Setpoint ``name`` and its readback ``name_RBV``.

        Without ``on_put`` the readback follows every put; a handler given
        sets the readback itself (``setpoint.readback``).
        """
        readback = kind(f"{name}_RBV", *args, **kwargs)
        setpoint = kind(name, *args, writable=True, on_put=on_put, **kwargs)
        setpoint.readback = readback
        return setpoint, readback

    def busy(
        self,
        name: str,
        choices: tuple[str, str],
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
    ) -> Busy:
        """ADCore's busy record ``name``; see :class:`Busy`."""
        return Busy(self.prefix + name, choices, start, stop)


def _builder() -> Any:
    """softioc's record builder (imported on first use: it loads EPICS base)."""
    from softioc import builder

    return builder


def _mirror(pv: Pv) -> Handler:
    def mirror(value: Any) -> None:
        if pv.readback is not None:
            pv.readback.set(value)

    return mirror


class Busy:
    """ADCore's ``busy`` record: a put of 1 completes when the operation ends.

    A client's put of 1, unless already busy, calls ``start()``; the
    operation must call :meth:`finish` when it ends (also when it could not
    start), which writes the record back to 0 and completes every put
    callback waiting. A put of 0 calls ``stop()``, which must lead to
    :meth:`finish` if an operation runs.
    """

    def __init__(
        self,
        name: str,
        choices: tuple[str, str],
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
    ) -> None:
        self.choices = choices
        self._start = start
        self._stop = stop
        self._done: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        builder = _builder()
        hold = builder.boolOut(
            f"{name}_Busy",
            initial_value=0,
            on_update=self._hold,
            always_update=True,
            blocking=True,
            DISP=1,  # clients cannot write it
        )
        self.pv = Pv(
            builder.boolOut(
                name,
                ZNAM=choices[0],
                ONAM=choices[1],
                initial_value=0,
                on_update=self._on_put,
                validate=lambda record, raw: self.pv.note_origin(record, raw),
                always_update=True,
                blocking=False,
                FLNK=hold,
            ),
            choices,
            output=True,
        )

    @property
    def active(self) -> bool:
        """An operation runs (started by a put of 1, not finished yet)."""
        return self._done is not None and not self._done.is_set()

    def _spawn(self, coro: Awaitable[None], what: str) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:  # a failing handler must not leave the put hanging
                logger.exception("%s: %s failed", self.pv.name, what)
                self.finish()

        task = asyncio.get_running_loop().create_task(run(), name=f"{self.pv.name} {what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_put(self, raw: Any) -> None:
        # runs before the hidden record's _hold (both dispatched in that order)
        if self.pv.came_from_set():
            return
        if raw:
            if not self.active:
                self._done = asyncio.Event()
                self._spawn(self._start(), "start")
        else:
            self._spawn(self._stop(), "stop")

    async def _hold(self, _raw: Any) -> None:
        done = self._done
        if done is not None:
            await done.wait()

    def finish(self) -> None:
        """The operation ended: the record goes back to 0, put callbacks complete."""
        if self.pv.value != self.choices[0]:
            self.pv.set(0)
        if self._done is not None:
            self._done.set()

    async def close(self) -> None:
        """Cancel handlers still running; for shutdown."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        self.finish()
