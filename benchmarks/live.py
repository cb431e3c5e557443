"""Live, latency, idle and many-client measurements of issue 5: NOT MEASURED YET.

This is the place for the parts of the benchmark that need the IOC running:

- live: a writer in another process (``python -m swmr_roi_ioc simulate``) at
  100 Hz and at its maximum rate; latency from the writer's flush to the
  statistics computed and to the value arriving at a ``camonitor`` client,
  p50/p99; backlog (``FramesWritten_RBV - ArrayCounter_RBV``); frames skipped;
- idle: CPU of the IOC following a file that stopped growing;
- 50 CA clients monitoring every PV while frames arrive at 500 Hz.

``run(ctx)`` returns rows and targets like ``catchup``; until it is written it
returns "pending" rows so the printed table shows what is still missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Row, Target


@dataclass
class LiveContext:
    """What the live measurements get from ``run.py``."""

    workdir: Path
    shape: tuple[int, int]
    quick: bool


PENDING = [
    ("live100-stats", "live 100 Hz: flush -> stats p50/p99 (ms)"),
    ("live100-camonitor", "live 100 Hz: flush -> camonitor p50/p99 (ms)"),
    ("livemax", "live max rate: skipped frames, backlog"),
    ("idle", "idle: CPU of the IOC on a file that stopped growing"),
    ("clients50", "50 CA clients at 500 Hz: updates/s per client"),
]


def run(ctx: LiveContext) -> tuple[list[Row], list[Target]]:
    """Measure the live parts (to be written); now: pending rows and targets."""
    del ctx
    rows = [
        Row("live (pending)", key, label, "pending", note="not measured yet")
        for key, label in PENDING
    ]
    targets = [
        Target("live 100 Hz: flush -> stats p99 (ms)", None, 10, "<=", "pending"),
        Target("live 100 Hz: flush -> camonitor p99 (ms)", None, 120, "<=", "1/rate_hz + 20"),
        Target("live max rate: frames skipped", None, 0, "<=", "pending"),
        Target("idle: % of one core", None, 1, "<=", "pending"),
        Target("50 clients: updates/s per client / rate_hz", None, 0.9, ">=", "pending"),
    ]
    return rows, targets
