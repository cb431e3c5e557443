"""The live views of the newest frame, made in a worker process.

The histogram and the binned image of the newest frame of each file a worker
follows are computed here, in a thread of their own (the integer loops are
compiled and hold no GIL, so the thread reading and computing statistics
never waits for them), at most once per ``ViewParams.period``, and pushed to
the IOC process as ``LiveViews``: a few kB of histogram and at most
``image_max`` x ``image_max`` numbers, never the frame itself.

A frame offered within a period of the last computation is computed at the
end of that period (the newest one then), so the last frame of an
acquisition always gets its views. Views are kept after the file closes:
new histogram settings recompute them from the frame kept here, until the
IOC process forgets the acquisition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from swmr_roi_ioc.stats import LiveViews, live_views

from ._protocol import ViewParams

log = logging.getLogger(__name__)

#: what the maker does with views made: push them to the IOC process
Push = Callable[[int, LiveViews], None]


@dataclass
class _Views:
    params: ViewParams
    frame: np.ndarray | None = None
    #: a frame or settings not yet shown
    dirty: bool = False
    #: monotonic time of the last computation
    last: float = -1e9


class ViewMaker:
    """One thread making the live views of every file of a worker."""

    def __init__(self, push: Push) -> None:
        self._push = push
        self._cond = threading.Condition()
        self._files: dict[int, _Views] = {}
        self._thread = threading.Thread(target=self._run, name="live-views", daemon=True)
        self._thread.start()

    def configure(self, key: int, params: ViewParams) -> None:
        """Make views of file ``key`` with ``params`` (again, if they changed)."""
        with self._cond:
            views = self._files.get(key)
            if views is None:
                self._files[key] = _Views(params)
            elif views.params != params:
                views.params = params
                views.dirty = views.frame is not None
                views.last = -1e9  # new settings are shown at once
            self._cond.notify()

    def offer(self, key: int, frame: np.ndarray) -> None:
        """The newest frame of file ``key`` (owned by the maker from now on)."""
        with self._cond:
            views = self._files.get(key)
            if views is None:
                return
            views.frame, views.dirty = frame, True
            self._cond.notify()

    def wants(self, key: int) -> bool:
        return key in self._files

    def forget(self, key: int) -> None:
        with self._cond:
            self._files.pop(key, None)

    def _next(self) -> tuple[int, np.ndarray, ViewParams]:
        """Wait for the next file whose views are due; mark them made."""
        with self._cond:
            while True:
                now = time.monotonic()
                due: float | None = None
                for key, views in self._files.items():
                    if not views.dirty or views.frame is None:
                        continue
                    at = views.last + views.params.period
                    if at <= now:
                        views.dirty, views.last = False, now
                        return key, views.frame, views.params
                    due = at if due is None else min(due, at)
                self._cond.wait(None if due is None else due - now)

    def _run(self) -> None:
        while True:
            key, frame, params = self._next()
            try:
                made = live_views(
                    frame, params.bins, params.low, params.high, params.image_max,
                    params.generation,
                )  # fmt: skip
            except Exception:  # a frame it cannot show must not stop the maker
                log.exception("live views of file %d", key)
                continue
            try:
                self._push(key, made)
            except OSError:
                return  # the IOC process is gone: the worker is ending
