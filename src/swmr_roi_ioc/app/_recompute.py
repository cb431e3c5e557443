"""Retroactive ROI changes: recompute a ROI for every frame already processed.

No areaDetector plugin can do this: they never see past frames. The file can
be read again, so when a ROI setpoint changes, its time series and map are
recomputed from disk in the background, in hops, in another worker process than
the live frames when there is one, while ``P:RecomputeProgress_RBV`` counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from swmr_roi_ioc.engine import RemoteAcquisition, WorkerLostError

from ._acquisition import READ_ERRORS, CurrentAcquisition
from ._state import RecomputeRequest, ServiceState

log = logging.getLogger(__name__)

#: Frames per hop: small, so live frames never wait long behind a recompute.
HOP = 32
#: Tries of a recompute whose worker is lost (killed when stuck, or crashed).
ATTEMPTS = 3
#: How often to look for a new request while idle.
IDLE_S = 0.2


async def recompute_forever(
    state: ServiceState,
    current: CurrentAcquisition,
    on_done: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve recompute requests until cancelled. ``on_done`` runs after a
    recompute of a finished acquisition (e.g. to rewrite its NeXus file)."""
    while True:
        request = state.take_recompute()
        if request is None:
            await asyncio.sleep(IDLE_S)
            continue
        done = await _recompute(state, current, request)
        if not state.recompute_wanted():
            state.set_recompute_progress(100.0)
            if done and current.finished and on_done is not None:
                await on_done()


async def _recompute(
    state: ServiceState, current: CurrentAcquisition, request: RecomputeRequest
) -> bool:
    for _ in range(ATTEMPTS):
        try:
            async with current.reading() as acquisition:
                if acquisition is None:
                    return False
                return await _recompute_from(state, acquisition, request)
        except WorkerLostError as exc:  # its worker was replaced: again, from the start
            log.info("recomputing ROI %d: %s; starting again", request.index + 1, exc)
        except READ_ERRORS as exc:
            log.warning("recomputing ROI %d failed: %s", request.index + 1, exc)
            return False
    return False


async def _recompute_from(
    state: ServiceState, acquisition: RemoteAcquisition, request: RecomputeRequest
) -> bool:
    index = 0
    while state.recompute_current(request):
        target = state.array_counter  # chase the live frames until caught up
        if index >= target:
            return True
        stop = min(target, index + HOP)
        try:
            stats = await acquisition.roi_stats(index, stop, request.roi)
        except WorkerLostError:
            raise
        except READ_ERRORS as exc:
            log.warning("recomputing ROI %d failed at frame %d: %s", request.index + 1, index, exc)
            return False
        if not state.put_recomputed(request, index, stats):
            return False
        index = stop
        state.set_recompute_progress(min(99.9, 100.0 * index / max(target, 1)))
    return False
