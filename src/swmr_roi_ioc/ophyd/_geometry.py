"""ROI geometry setpoints whose ``set`` completes once the readback shows it.

The IOC applies a put at once but publishes readbacks at its publish rate, so
a plain ``epics_signal_rw_rbv`` set (the CA put's callback) returns while the
readback still shows the old value: a plan that moves a ROI and then counts
would read the old geometry. Here ``set`` also waits for the readback to show
the value as the IOC applies it: clamped to the frame as NDPluginROIStat does
(``MaxSizeX_RBV`` / ``MaxSizeY_RBV`` give the frame; 0 while none is known).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ophyd_async.core import (
    CALCULATE_TIMEOUT,
    AsyncStatus,
    CalculatableTimeout,
    SignalR,
    SignalRW,
    wait_for_value,
)
from ophyd_async.epics.core import CaSignalBackend

#: Seconds the readback is given to show a value once the put completed
#: (the IOC publishes at least once a second).
SETTLE_S = 5.0

Expected = Callable[[int], Awaitable[int]]


class SettledSignalRW(SignalRW[int]):
    """``PV`` / ``PV_RBV`` as an int SignalRW; ``set`` returns once ``PV_RBV``
    equals ``expected(value)``."""

    def __init__(self, write_pv: str, expected: Expected, name: str = "") -> None:
        super().__init__(CaSignalBackend(int, write_pv + "_RBV", write_pv), name=name)
        self._expected = expected

    @AsyncStatus.wrap
    async def set(self, value: int, timeout: CalculatableTimeout = CALCULATE_TIMEOUT) -> None:
        await super().set(value, timeout=timeout)
        await wait_for_value(self, await self._expected(int(value)), timeout=SETTLE_S)


def clamp_offset(value: int, size: int) -> int:
    """MinX/MinY as the readback shows it in a frame ``size`` wide (0: unknown)."""
    value = max(value, 0)
    return min(value, size - 1) if size > 0 else value


def clamp_size(value: int, offset: int, size: int) -> int:
    """SizeX/SizeY as the readback shows it at ``offset`` in a frame ``size`` wide."""
    value = max(value, 1)
    return min(value, size - offset) if size > 0 else value


async def current(signal: SignalR[int]) -> int:
    return int(await signal.get_value())
