"""A caproto server Context that survives many subscriptions closing at once.

caproto 1.3.0, ``caproto/server/common.py``, ``Context._subscription_queue_iteration``::

    for sub_spec in sub_specs:
        for sub in self.subscriptions[sub_spec]:          # a deque
            await self._subscription_queue_send(...)       # yields to the loop

While it awaits, a client that disconnects has its circuit torn down, which
removes that client's subscriptions from the very deque being iterated.
Python then raises ``RuntimeError: deque mutated during iteration`` in the
server's one subscription task, the task dies, and from then on no monitor
update reaches any client (gets and puts still work, so it looks alive).

The fix, ready for upstream: iterate over a snapshot of the deque and skip
subscriptions that were removed meanwhile; and never let one bad update end
the subscription loop. ``tests/integration/test_ca_load.py`` reproduces the
failure with the stock Context and shows this one surviving.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from caproto.asyncio.server import Context

log = logging.getLogger(__name__)


class SafeContext(Context):
    """caproto's asyncio server Context with the subscription fix above."""

    async def _subscription_queue_iteration(
        self, sub_specs: Any, metadata: Any, values: Any, flags: int, sub: Any
    ) -> None:
        if sub is not None:
            await super()._subscription_queue_iteration(sub_specs, metadata, values, flags, sub)
            return
        for sub_spec in sub_specs:
            current = self.subscriptions[sub_spec]
            for each in tuple(current):  # a snapshot: closing circuits mutate the deque
                if each not in current:
                    continue  # its client went away while we were sending
                await self._subscription_queue_send(
                    sub_spec, each, metadata=metadata, values=values, flags=flags
                )

    async def subscription_queue_loop(self) -> NoReturn:
        """The stock loop (it never returns), restarted if an update ever raises:
        one bad update must not silence every monitor of the IOC."""
        while True:
            try:
                await super().subscription_queue_loop()
            except RuntimeError as exc:
                log.error("subscription update failed, continuing: %s", exc)
