"""The caproto subscription bug, reproduced deterministically at its mechanism:
a subscription update yields while being sent, a client drops meanwhile, and
stock caproto 1.3.0 raises 'deque mutated during iteration' (which ends the
server's subscription task); SafeContext goes on and skips the dropped one."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from typing import Any

import pytest
from caproto.asyncio.server import Context

from swmr_roi_ioc.publish._ca_context import SafeContext

SPEC = "spec"


def _context(cls: type[Context]) -> tuple[Any, list[str]]:
    ctx: Any = cls.__new__(cls)  # no sockets: only the subscription bookkeeping
    ctx.subscriptions = defaultdict(deque)
    ctx.subscriptions[SPEC].extend(["client1", "client2", "client3"])
    sent: list[str] = []

    async def send(sub_spec: Any, sub: Any, **kwargs: Any) -> None:
        sent.append(sub)
        if sub == "client1":
            # the client's queue is full: the send waits, and meanwhile
            # client2 disconnects and its circuit removes its subscription
            await asyncio.sleep(0)
            ctx.subscriptions[SPEC].remove("client2")

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
