"""The event-loop time of one whole publish, in a real IOC.

``python -m benchmarks.publish_cost [--rois 64] [--at 100000] [--rounds 100]``
(run by ``benchmarks/compute.py`` in a process of its own: an EPICS IOC
starts once per process). It builds the IOC of a config with ``--rois``
ROIs, a 256 x 256 snake map and 2048-point series: the softioc records
(EPICS base RSRV serving CA) and the p4p PVA server, on loopback with
private ports, with one ``camonitor`` client of every ROI's map and series
so that the posts reach a subscriber. The state gets ``--at`` frames of
history, then each round adds 10 frames (100 Hz frames, 10 Hz publishing),
new live views (a 512 x 512 image and a 256-bin histogram, as the engine
pushes them) and times what the publisher task does on the event loop:
``state.snapshot()`` and ``publisher.publish(snapshot, views)`` (every
record set and PVA post). It prints one JSON line: medians and 99th
percentiles of wall and CPU milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time

import numpy as np

from benchmarks.epics_env import epics_bin, loopback_env

MAP = (256, 256)


def _config(rois: int) -> str:
    lines = [
        "ioc_name: bench",
        'prefix: "PUB:"',
        "data_root: /data",
        f"scan: {{shape: [{MAP[0]}, {MAP[1]}], snake: true}}",
        "publish: {time_series_length: 2048, rate_hz: 10}",
        "pva: true",
        "rois:",
    ]
    lines += [f"  - {{name: R{k}, x: {k}, y: 0, width: 8, height: 8}}" for k in range(rois)]
    return "\n".join(lines) + "\n"


async def _measure(rois: int, at: int, rounds: int) -> dict[str, float]:
    from swmr_roi_ioc.app import ServiceState
    from swmr_roi_ioc.config import parse_config
    from swmr_roi_ioc.publish import Ioc
    from swmr_roi_ioc.stats import FrameStats, live_views

    def stats(start: int, n: int) -> FrameStats:
        total = (np.arange(start, start + n) % 1000).astype(np.float64)
        return FrameStats(total, total - 0.5, total % 7, total + 3, total / 64)

    config = parse_config(_config(rois))
    state = ServiceState(config)
    ioc = Ioc(config, controller=state)
    ioc.start(asyncio.get_running_loop())
    pva = asyncio.create_task(ioc.serve_pva())
    state.start_acquisition("/data/bench.h5", (1216, 1936))
    for start in range(0, at, 10_000):  # the history, in large batches (a catch-up)
        n = min(10_000, at - start)
        state.add_batch(start, [stats(start, n)] * rois, stats(start, n), start + n)
    names = [f"PUB:R{k}:{pv}" for k in range(rois) for pv in ("Map", "TSTotal", "Total_RBV")]
    monitor = subprocess.Popen(
        [epics_bin("camonitor"), "-m", "va", "-#", "0", *names],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    frame = np.random.default_rng(0).integers(0, 255, size=(1216, 1936), dtype=np.uint8)
    views = live_views(frame, 256, 0, 256, 512)
    publisher = ioc.publisher
    try:
        await asyncio.sleep(3.0)  # the client connected and subscribed
        publisher.publish(state.snapshot(), None)
        count = at
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(rounds):
            state.add_batch(count, [stats(count, 10)] * rois, stats(count, 10), count + 10)
            state.set_live_views(views)
            count += 10
            w0, c0 = time.perf_counter(), time.thread_time()
            publisher.publish(state.snapshot(), state.live_views())
            wall.append((time.perf_counter() - w0) * 1e3)
            cpu.append((time.thread_time() - c0) * 1e3)
            await asyncio.sleep(0.1)  # 10 Hz: the servers send meanwhile
    finally:
        monitor.terminate()
        monitor.wait(10)
        pva.cancel()
    return {
        "rois": rois, "at": at, "rounds": rounds,
        "wall_ms_median": statistics.median(wall), "wall_ms_p99": float(np.percentile(wall, 99)),
        "cpu_ms_median": statistics.median(cpu), "cpu_ms_p99": float(np.percentile(cpu, 99)),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publish_cost", description=__doc__)
    parser.add_argument("--rois", type=int, default=64)
    parser.add_argument("--at", type=int, default=100_000, help="frames of history")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.update(loopback_env())  # before softioc reads it
    result = asyncio.run(_measure(args.rois, args.at, args.rounds))
    print(json.dumps(result))
    os._exit(0)  # the IOC's threads do not stop by themselves


if __name__ == "__main__":
    raise SystemExit(main())
