"""A caproto server Context that keeps serving monitors when clients stall and drop.

caproto 1.3.0 sends every monitor update from ONE task of the Context
(``caproto/server/common.py``, ``Context._subscription_queue_iteration``)::

    for sub_spec in sub_specs:
        for sub in self.subscriptions[sub_spec]:          # a deque
            await self._subscription_queue_send(...)
                # -> await circuit.subscription_queue.put(weakref(command))

Each circuit (client connection) has a bounded queue of outgoing updates
(``MAX_TOTAL_SUBSCRIPTION_BACKLOG``, 10000), drained by the circuit's own task,
which waits in ``writer.drain()`` when the client does not read. The code
under ``except circuit.QueueFull`` shows the intent: when a client's queue is
full, drop that client's backlog. But on asyncio ``Queue.put`` never raises
``QueueFull``: it *waits* for room. So one client that stops reading (a hung
screen, a slow link) fills its queue and then stalls the Context's task, and
with it every monitor of every client. Two ways it never recovers, both seen
with 20 clients that monitor every PV, stop reading and drop at once while a
writer runs (``tests/integration/test_load.py``):

- The stalled client's connection dies (reset): its circuit task is
  cancelled, nothing ever makes room in its queue, and the Context waits in
  ``put`` for ever. No error is logged; caget and caput still work, so the
  IOC looks alive, but no monitor update is sent again, to anyone.
- The stalled client drains a little (it is slow, not dead), ``put``
  returns, and meanwhile other clients connected or dropped, which added or
  removed their subscriptions in the deque being iterated: the next step
  raises ``RuntimeError: deque mutated during iteration``, the Context's
  task ends, and ``Context.run`` ends the server.

The fix, ready for upstream:

1. A circuit's subscription queue whose ``put`` never waits: when full it
   raises ``QueueFull`` at once, so caproto's own branch drops that client's
   queued updates (it gets the next ones) and the Context moves on to the
   other clients. ``put`` then never suspends, so nothing can change the
   deque during the iteration.
2. Independently, iterate over a snapshot of the deque and skip the
   subscriptions of clients gone meanwhile (a subscription cancelled
   meanwhile needs no check: the circuit's task drops updates of cancelled
   subscriptions before sending), and restart the subscription loop if an
   update ever raises: one bad update must not silence every monitor.
3. When a client goes, caproto cancels the circuit's update task and awaits
   it (``_TaskHandler.cancel``). Under this load that await raised
   ``RuntimeError: await wasn't used with future`` in the connection's
   handler (we did not trace why), which then never removed the circuit from
   ``Context.circuits``: 57 of 60 dropped clients stayed there, each with its
   queue, and each logged an "exception was never retrieved" traceback. Here
   the task is cancelled and not awaited. And it waits for updates with
   ``asyncio.timeout`` instead of ``asyncio.wait_for``, which on Python 3.11
   returns the item instead of raising when a cancellation and an item arrive
   together (the unit test shows it): the cancelled task then went on waiting
   for ever ("Task was destroyed but it is pending").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NoReturn

from caproto.asyncio.server import Context, VirtualCircuit

log = logging.getLogger(__name__)


class _NoWaitQueue(asyncio.Queue[Any]):
    """A circuit's queue of outgoing updates: ``put`` raises ``QueueFull``
    instead of waiting (what caproto's ``except circuit.QueueFull`` expects),
    and ``clear`` (which that branch calls) empties it."""

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def clear(self) -> None:
        while not self.empty():
            self.get_nowait()


class SafeCircuit(VirtualCircuit):
    """caproto's asyncio circuit whose full update queue drops, never blocks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stock: asyncio.Queue[Any] = self.subscription_queue
        self.subscription_queue = _NoWaitQueue(stock.maxsize)

    async def get_from_sub_queue(self, timeout: float | None = None) -> Any:
        """The next queued update, or None after timeout s; unlike caproto's
        ``asyncio.wait_for`` (Python 3.11), never swallows a cancellation."""
        try:
            async with asyncio.timeout(timeout):
                return await self.subscription_queue.get()
        except TimeoutError:
            return None

    async def _on_disconnect(self) -> None:
        """caproto's, except that the circuit's update task is cancelled, not
        awaited (see the module's docstring, item 3)."""
        task: asyncio.Task[Any] | None = self._sub_task
        self._sub_task = None  # caproto's _on_disconnect then leaves it alone
        await super()._on_disconnect()
        if task is not None and task is not asyncio.current_task():
            task.cancel()


class SafeContext(Context):
    """caproto's asyncio server Context with the fixes above."""

    CircuitClass = SafeCircuit

    async def _subscription_queue_iteration(
        self, sub_specs: Any, metadata: Any, values: Any, flags: int, sub: Any
    ) -> None:
        if sub is not None:
            await super()._subscription_queue_iteration(sub_specs, metadata, values, flags, sub)
            return
        for sub_spec in sub_specs:
            for each in tuple(self.subscriptions[sub_spec]):  # a snapshot
                if not each.circuit.connected:
                    continue  # its client went away meanwhile
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
