"""What the IOC computes, without I/O: the ROI statistics kernel and the publish snapshot.

``python -m benchmarks.compute [--quick]`` (also part of ``python -m benchmarks``):

- ROI statistics, ms per frame, frames already in memory in blocks of 3 (as
  the catch-up stream's 8 MB blocks of 1216 x 1936 uint8; 15 distinct frames
  cycled, 35 MB, more than the L3 cache, so each frame comes from memory),
  3, 4 and 64 ROIs + the frame, uint8 and uint16: ``compute_stats`` (the
  compiled kernel for integer frames) against its numpy path. Target: 64
  ROIs cost at most 1.2 x what 4 cost.
- The publish snapshot: ``ServiceState.snapshot()`` with 64 ROIs, a 256 x 256
  map and 2048-point time series, at 100 frames/s and 10 publishes/s (10
  frames between snapshots), at frame 100 and past the map's 65,536 cells;
  its event-loop time is the cost of a publish before the publishers
  convert the arrays. Target: at most 5 ms. The frames' side (``add_batch``,
  on the reader thread, which also pays the copy-on-write of each map the
  publishers hold) is shown too.

- The whole publish, in a real IOC (``benchmarks/publish_cost.py``, its own
  process): the snapshot plus every softioc record set and p4p post, with
  the live views, 4 and 64 ROIs, 256 x 256 maps. Target: at most 5 ms of
  event-loop time (wall) with 64 ROIs.

Times are CPU time of the measuring thread (``time.thread_time``): on a
machine shared with other work, wall time mostly measures the others.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np

from benchmarks.catchup import rois_for
from benchmarks.report import Row, Target, live_table, targets_table
from swmr_roi_ioc.app import ServiceState
from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.stats import FrameStats, _roi, compute_stats

SNAPSHOT_TARGET_MS = 5.0
ROI_COUNT_TARGET = 1.2
GROUP_STATS = "ROI statistics"
GROUP_SNAPSHOT = "publish snapshot"
GROUP_PUBLISH = "whole publish"


def _median_ms(fn: Callable[[], Any], calls: int, repeats: int) -> float:
    """Median over ``repeats`` rounds of the mean CPU ms per call of ``calls`` calls."""
    fn()  # warm up (compiles or loads the kernel)
    rounds = []
    for _ in range(repeats):
        t0 = time.thread_time()
        for _ in range(calls):
            fn()
        rounds.append((time.thread_time() - t0) / calls * 1e3)
    return statistics.median(rounds)


def stats_rows(
    shape: tuple[int, int], quick: bool
) -> tuple[list[Row], list[Target]]:  # fmt: skip
    rng = np.random.default_rng(0)
    calls, repeats = (20, 3) if quick else (60, 5)
    block = 3
    rows: list[Row] = []
    kernel_ms: dict[tuple[str, int], float] = {}
    for dtype in ("uint8", "uint16"):
        high = np.iinfo(dtype).max
        frames = rng.integers(0, high, (5 * block, *shape), dtype=dtype)
        for count in (3, 4, 64):
            rois = rois_for(count, shape)
            i = iter(range(10**12))

            def one(frames: np.ndarray = frames, rois: Any = rois, i: Any = i) -> None:
                first = next(i) % 5 * block
                compute_stats(frames[first : first + block], rois)

            fast = _median_ms(one, calls, repeats) / block
            with mock.patch.object(_roi, "USE_KERNEL", False):
                slow = _median_ms(one, max(calls // 4, 5), repeats) / block
            kernel_ms[dtype, count] = fast
            rows.append(
                Row(
                    GROUP_STATS,
                    f"{dtype}_{count}",
                    f"compute_stats {dtype}, {count} ROIs + frame",
                    "live",
                    text=f"{fast:.3f} ms/frame (numpy path {slow:.3f}: {slow / fast:.1f}x)",
                    values={"kernel_ms": fast, "numpy_ms": slow},
                )  # fmt: skip
            )
    targets = []
    for dtype in ("uint8", "uint16"):
        ratio = kernel_ms[dtype, 64] / kernel_ms[dtype, 4]
        targets.append(
            Target(
                f"ROI statistics {dtype}: cost of 64 ROIs / cost of 4 (in memory)",
                ratio,
                ROI_COUNT_TARGET,
                "<=",
                f"= {ratio / ROI_COUNT_TARGET:.2f} x the limit",
            )  # fmt: skip
        )
    return rows, targets


def _config(rois: int) -> str:
    lines = [
        "ioc_name: bench",
        'prefix: "BENCH:"',
        "data_root: /data",
        "scan: {shape: [256, 256], snake: true}",
        "publish: {time_series_length: 2048}",
        "rois:",
    ]
    lines += [f"  - {{name: R{k}, x: {k}, y: 0, width: 8, height: 8}}" for k in range(rois)]
    return "\n".join(lines) + "\n"


def _stats(start: int, n: int) -> FrameStats:
    total = (np.arange(start, start + n) % 1000).astype(np.float64)
    return FrameStats(total, total - 0.5, total % 7, total + 3, total / 64)


def _snapshot_case(rois: int, at: int, rounds: int) -> tuple[float, float, float]:
    """(snapshot ms median, fastest, add_batch ms per 10 frames median) with
    ``rois`` ROIs from frame ``at`` on: 10 frames, one snapshot, repeated."""
    state = ServiceState(parse_config(_config(rois)))
    state.start_acquisition("/data/bench.h5", (64, 80))
    block = 10_000
    for start in range(0, at, block):  # the history, in large batches (a catch-up)
        n = min(block, at - start)
        state.add_batch(start, [_stats(start, n)] * rois, _stats(start, n), start + n)
    state.snapshot()
    snaps, adds = [], []
    count = at
    for _ in range(rounds):
        t0 = time.thread_time()
        state.add_batch(count, [_stats(count, 10)] * rois, _stats(count, 10), count + 10)
        t1 = time.thread_time()
        snap = state.snapshot()
        t2 = time.thread_time()
        count += 10
        adds.append((t1 - t0) * 1e3)
        snaps.append((t2 - t1) * 1e3)
    assert snap.array_counter == count and len(snap.rois) == rois
    return statistics.median(snaps), min(snaps), statistics.median(adds)


def snapshot_rows(quick: bool) -> tuple[list[Row], list[Target]]:
    rounds = 30 if quick else 100
    rows: list[Row] = []
    worst = 0.0
    for rois, at in [(4, 100), (64, 100), (64, 100_000)]:
        snap_ms, fastest, add_ms = _snapshot_case(rois, at, rounds)
        if rois == 64:
            worst = max(worst, snap_ms)
        rows.append(
            Row(
                GROUP_SNAPSHOT,
                f"snapshot_{rois}_{at}",
                f"{rois} ROIs, 256x256 maps, 2048-point series, from frame {at:,}",
                "live",
                text=f"snapshot {snap_ms:.2f} ms (fastest {fastest:.2f}; event loop); "
                f"add_batch of 10 frames {add_ms:.2f} ms (reader thread)",
                values={
                    "snapshot_ms": snap_ms,
                    "snapshot_fastest_ms": fastest,
                    "add_batch_ms": add_ms,
                },
            )  # fmt: skip
        )
    target = Target("publish snapshot, 64 ROIs + 256x256 map: ms of event loop", worst,
                    SNAPSHOT_TARGET_MS, "<=",
                    f"= {worst / SNAPSHOT_TARGET_MS:.2f} x the target")  # fmt: skip
    return rows, [target]


def publish_rows(quick: bool) -> tuple[list[Row], list[Target]]:
    """The whole publish (snapshot + every record set and PVA post) in a real
    IOC, in its own process (``benchmarks/publish_cost.py``)."""
    rows: list[Row] = []
    worst: float | None = None
    for rois in (4, 64):
        cmd = [sys.executable, "-m", "benchmarks.publish_cost", "--rois", str(rois),
               "--rounds", "30" if quick else "100"]  # fmt: skip
        label = f"{rois} ROIs, 256x256 maps, 2048-point series, the live views, from frame 100,000"
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError, OSError) as exc:
            rows.append(Row(GROUP_PUBLISH, f"publish_{rois}", label, "live", text="failed",
                            note=f"{type(exc).__name__}: {exc}"))  # fmt: skip
            continue
        if rois == 64:
            worst = got["wall_ms_median"]
        rows.append(Row(
            GROUP_PUBLISH, f"publish_{rois}", label, "live",
            text=f"wall {got['wall_ms_median']:.1f} ms (p99 {got['wall_ms_p99']:.1f}); "
                 f"CPU {got['cpu_ms_median']:.1f} ms (p99 {got['cpu_ms_p99']:.1f})",
            values=got, note="CA records + PVA posts, 1 camonitor client of the maps and series",
        ))  # fmt: skip
    target = Target("a whole publish, 64 ROIs + 256x256 map: ms of event loop (median)", worst,
                    SNAPSHOT_TARGET_MS, "<=", "snapshot + record sets + PVA posts")  # fmt: skip
    return rows, [target]


def run(shape: tuple[int, int], quick: bool) -> tuple[list[Row], list[Target]]:
    """The three parts: their rows (printed here) and targets."""
    rows, targets = stats_rows(shape, quick)
    for part in (snapshot_rows, publish_rows):
        more_rows, more_targets = part(quick)
        rows += more_rows
        targets += more_targets
    print()
    print("Computation without I/O (medians of CPU time of the measuring thread)")
    print()
    print(live_table(rows))
    return rows, targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compute", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--shape", type=int, nargs=2, default=(1216, 1936), metavar=("H", "W"))
    args = parser.parse_args(argv)
    _, targets = run((int(args.shape[0]), int(args.shape[1])), args.quick)
    print()
    print(targets_table(targets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
