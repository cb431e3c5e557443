"""The caproto subscription bug, at its mechanism (the real load is in
tests/integration/test_load.py).

caproto 1.3.0 sends every monitor update from one Context task, which awaits
``circuit.subscription_queue.put`` per subscriber. On asyncio that put waits
while the client's queue is full; meanwhile clients come and go, and the
stock Context then raises 'deque mutated during iteration' (ending the
server) or, if the full client is gone, waits for ever. SafeContext's
circuits never wait in put, and its iteration skips clients gone meanwhile."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict, deque
from types import SimpleNamespace
from typing import Any

import caproto as ca
import pytest
from caproto.asyncio.server import Context, VirtualCircuit

from swmr_roi_ioc.publish._ca_context import SafeCircuit, SafeContext

SPEC = "spec"


def _sub(name: str) -> Any:
    return SimpleNamespace(name=name, circuit=SimpleNamespace(connected=True))


def _context(cls: type[Context]) -> tuple[Any, list[str]]:
    ctx: Any = cls.__new__(cls)  # no sockets: only the subscription bookkeeping
    ctx.subscriptions = defaultdict(deque)
    subs = [_sub("client1"), _sub("client2"), _sub("client3")]
    ctx.subscriptions[SPEC].extend(subs)
    sent: list[str] = []

    async def send(sub_spec: Any, sub: Any, **kwargs: Any) -> None:
        sent.append(sub.name)
        if sub.name == "client1":
            # client1's queue is full: the send waits, and meanwhile client2
            # disconnects and its circuit removes its subscription
            await asyncio.sleep(0)
            subs[1].circuit.connected = False
            ctx.subscriptions[SPEC].remove(subs[1])

    ctx._subscription_queue_send = send
    return ctx, sent


async def test_stock_caproto_breaks_when_a_client_drops_during_an_update() -> None:
    ctx, _ = _context(Context)
    with pytest.raises(RuntimeError, match="deque mutated during iteration"):
        await ctx._subscription_queue_iteration((SPEC,), None, [1.0], 0, None)


async def test_safe_context_skips_the_dropped_client_and_serves_the_rest() -> None:
    ctx, sent = _context(SafeContext)
    await ctx._subscription_queue_iteration((SPEC,), None, [1.0], 0, None)
    assert sent == ["client1", "client3"]


def _circuit(cls: type[VirtualCircuit]) -> Any:
    client = SimpleNamespace(getsockname=lambda: ("127.0.0.1", 5064))
    return cls(ca.VirtualCircuit(ca.SERVER, ("127.0.0.1", 40000), None), client, None)


async def test_stock_circuit_queue_makes_the_context_wait_when_full() -> None:
    queue = _circuit(VirtualCircuit).subscription_queue
    for i in range(queue.maxsize):
        queue.put_nowait(i)
    with pytest.raises(TimeoutError):  # the one Context task would hang here
        await asyncio.wait_for(queue.put("one more"), 0.2)


async def test_safe_circuit_queue_refuses_at_once_and_clears() -> None:
    circuit = _circuit(SafeCircuit)
    queue = circuit.subscription_queue
    assert queue.maxsize == ca.MAX_TOTAL_SUBSCRIPTION_BACKLOG
    for i in range(queue.maxsize):
        await queue.put(i)
    with pytest.raises(circuit.QueueFull):  # caproto's branch: drop this backlog
        await asyncio.wait_for(queue.put("one more"), 0.2)
    queue.clear()
    assert queue.empty()
    await queue.put("next")
    assert await circuit.get_from_sub_queue(timeout=0.1) == "next"
    assert await circuit.get_from_sub_queue(timeout=0.05) is None


async def test_safe_circuit_update_task_obeys_cancellation() -> None:
    """caproto's asyncio.wait_for (Python 3.11) can swallow a cancellation when
    the item arrives at the same time; the circuit's task then never ends."""
    circuit = _circuit(SafeCircuit)
    task = asyncio.create_task(circuit.get_from_sub_queue(timeout=10.0))
    await asyncio.sleep(0)
    circuit.subscription_queue.put_nowait("item")  # arrives ...
    task.cancel()  # ... as the client goes
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for was rewritten in 3.12")
async def test_stock_circuit_update_task_swallows_that_cancellation() -> None:
    circuit = _circuit(VirtualCircuit)
    task = asyncio.create_task(circuit.get_from_sub_queue(timeout=10.0))
    await asyncio.sleep(0)
    circuit.subscription_queue.put_nowait("item")
    task.cancel()
    assert await task == "item"  # not cancelled: the task would go on
