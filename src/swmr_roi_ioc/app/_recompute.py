"""Retroactive ROI changes: recompute a ROI for every frame already processed.

No areaDetector plugin can do this: they never see past frames. The file can
be read again, so when a ROI setpoint changes, its time series and map are
recomputed from disk in the background while ``P:RecomputeProgress_RBV``
counts. Every engine worker takes part: hops of frames are handed out in
order, one per worker at a time (the worker following live reads its share
between live frames), and applied in frame order as they come back. The
hops chase the live counter until they catch it up; frames processed live
after the change already have the new geometry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from swmr_roi_ioc.engine import RemoteAcquisition, WorkerLostError
from swmr_roi_ioc.stats import FrameStats

from ._acquisition import READ_ERRORS, CurrentAcquisition
from ._state import RecomputeRequest, ServiceState

log = logging.getLogger(__name__)

#: Tries of a recompute whose worker is lost (killed when stuck, or crashed)
#: or whose file was closed under it (the acquisition finished meanwhile).
ATTEMPTS = 3
#: How often to look for a new request while idle.
IDLE_S = 0.2


class _StaleError(Exception):
    """A newer change of the ROI (or a new file) made the request void."""


async def recompute_forever(
    state: ServiceState,
    current: CurrentAcquisition,
    workers: int,
    on_done: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve recompute requests until cancelled, with ``workers`` engine
    workers in parallel. ``on_done`` runs after a recompute of a finished
    acquisition (e.g. to rewrite its NeXus file)."""
    while True:
        request = state.take_recompute()
        if request is None:
            await asyncio.sleep(IDLE_S)
            continue
        done = await _recompute(state, current, request, workers)
        if not state.recompute_wanted():
            state.set_recompute_progress(100.0)
            if done and current.finished and on_done is not None:
                await on_done()


async def _recompute(
    state: ServiceState, current: CurrentAcquisition, request: RecomputeRequest, workers: int
) -> bool:
    job = _Recompute(state, request, workers)
    for _ in range(ATTEMPTS):
        acquisition: RemoteAcquisition | None = None
        try:
            async with current.reading() as acquisition:
                if acquisition is None:
                    return False
                return await job.run(acquisition)
        except _StaleError:
            return False
        except WorkerLostError as exc:  # its worker was replaced: on from where it was
            log.info("recomputing ROI %d: %s; going on", request.index + 1, exc)
        except READ_ERRORS as exc:
            if not state.recompute_current(request):
                return False  # a newer change, or a new file (the old one closed)
            if acquisition is not None and acquisition.closed and current.finished:
                continue  # finished meanwhile (its file closed): opened again
            log.warning(
                "recomputing ROI %d failed at frame %d: %s", request.index + 1, job.applied, exc
            )
            return False
    return False


class _Recompute:
    """One request: hops handed out in order to every worker, applied in order."""

    def __init__(self, state: ServiceState, request: RecomputeRequest, workers: int) -> None:
        self._state = state
        self._request = request
        self._workers = max(1, workers)
        #: frames applied (in order) and handed out
        self.applied = 0
        self._claimed = 0
        self._results: dict[int, FrameStats] = {}
        self._failed = False

    async def run(self, acquisition: RemoteAcquisition) -> bool:
        """Recompute from the first frame not yet applied; True when caught up."""
        self._claimed, self._results, self._failed = self.applied, {}, False
        hop = acquisition.reread_hop
        # no cancellation: a call cancelled in flight costs its worker
        parts = [self._part(acquisition, i, hop) for i in range(self._workers)]
        outcomes = await asyncio.gather(*parts, return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        for error in errors:  # a void request first, then a lost worker
            if isinstance(error, _StaleError):
                raise error
        if errors:
            raise errors[0]
        return True

    async def _part(self, acquisition: RemoteAcquisition, part: int, hop: int) -> None:
        state, request = self._state, self._request
        while not self._failed:
            if not state.recompute_current(request):
                raise _StaleError
            target = state.array_counter  # chase the live frames until caught up
            if self._claimed >= target:
                return
            start = self._claimed
            stop = self._claimed = min(target, start + hop)
            try:
                self._results[start] = await acquisition.roi_stats(
                    start, stop, request.roi, part=part
                )
            except BaseException:
                self._failed = True  # the others stop; the next run goes on from applied
                raise
            self._apply(target)

    def _apply(self, target: int) -> None:
        while (stats := self._results.pop(self.applied, None)) is not None:
            if not self._state.put_recomputed(self._request, self.applied, stats):
                raise _StaleError
            self.applied += len(stats.total)
        self._state.set_recompute_progress(min(99.9, 100.0 * self.applied / max(target, 1)))
