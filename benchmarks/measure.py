"""Timing one pass of a pipeline, and how busy the rest of the machine was meanwhile."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

#: A pipeline: reads ``frames`` frames, returns the whole-frame total of each
#: (used to check every pipeline computed the same numbers).
Pipeline = Callable[[], NDArray[np.float64] | None]


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, steal) jiffies of the whole machine from /proc/stat, or None."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, steal


@dataclass
class Sample:
    """One timed pass."""

    seconds: float
    frames: int
    #: CPU cores used meanwhile by other processes (and the hypervisor's steal).
    other_cores: float | None
    #: CPU seconds this process used (all its threads).
    cpu_seconds: float = 0.0
    totals: NDArray[np.float64] | None = field(default=None, repr=False)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def time_once(pipeline: Pipeline, frames: int) -> Sample:
    """Run ``pipeline`` once; wall time and the machine's other CPU load."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    before = _cpu_jiffies()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    totals = pipeline()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    after = _cpu_jiffies()
    other = None
    if before is not None and after is not None and seconds > 0:
        busy = (after[0] - before[0]) / ticks
        other = max(0.0, busy - cpu) / seconds
    return Sample(seconds, frames, other, cpu, totals)


def median_fps(samples: list[Sample]) -> float:
    return statistics.median(s.fps for s in samples)


def median_cpu_ms(samples: list[Sample]) -> float:
    """Median CPU milliseconds per frame (all threads of this process)."""
    return statistics.median(1e3 * s.cpu_seconds / max(s.frames, 1) for s in samples)


def median_other(samples: list[Sample]) -> float | None:
    values = [s.other_cores for s in samples if s.other_cores is not None]
    return statistics.median(values) if values else None
