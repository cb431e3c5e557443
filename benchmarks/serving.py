"""Serving: many clients monitoring every PV of one IOC while frames arrive.

    python -m benchmarks --serving

Two parts, each with its own IOC (the shipped config: 3 ROIs, 2048-point
series, the live image; here a 100 x 100 map), frames of 256 x 320 uint8
written at 500 Hz:

- 50 Channel Access clients (``benchmarks.live_client``: libca through
  ctypes, one context per process, DBR_TIME monitors of every PV, whole arrays);
- 10 PVAccess clients (``benchmarks.pva_client``: p4p, one context per process).

Each client counts the updates/s of ``ArrayCounter_RBV`` and ``1:Total_RBV``
(they change with every frame, so each should arrive ``publish.rate_hz``
times a second). Printed: min and median per client, the IOC's CPU (cores)
and its memory growth from before the clients connected to the end.
Targets: CA min >= 0.95 x rate_hz, PVA min >= 0.9 x rate_hz, growth <= 100 MB.
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.epics_env import epics_bin, loopback_env
from benchmarks.live import (
    CLIENT_RATE_HZ,
    CLIENT_SHAPE,
    PREFIX,
    REPO,
    _config,
    _cpu_seconds,
    _flushes,
    _processes,
    _start_ioc,
    _writer_args,
    _writer_rate,
)
from benchmarks.report import Row, Target

WINDOW_S = 30.0
MAP_SHAPE = [100, 100]
MEMORY_MB = 100.0
PARTS = (
    ("50 CA clients", "benchmarks.live_client", 50, 0.95),
    ("10 PVA clients", "benchmarks.pva_client", 10, 0.9),
)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _part(data: Path, env: dict[str, str], group: str, module: str, clients: int,
          target: float, window: float) -> tuple[list[Row], list[Target]]:  # fmt: skip
    from swmr_roi_ioc.config import load_config
    from swmr_roi_ioc.publish import pv_names

    stem = module.rsplit(".", 1)[-1]
    config, doc = _config(data, f"{stem}.h5")
    doc["scan"]["shape"] = MAP_SHAPE
    doc["pva"] = True
    config.write_text(json.dumps(doc, indent=2) + "\n")
    rate_hz = float(doc["publish"]["rate_hz"])
    counted = [f"{PREFIX}ArrayCounter_RBV", f"{PREFIX}1:Total_RBV"]
    names = pv_names(load_config(config))
    pvs = counted + [n for n in names if n not in counted]
    frames = int(CLIENT_RATE_HZ * (window + 4))
    log, flush_log = data / f"{stem}.log", data / f"{stem}.flush"
    results: list[dict[str, Any]] = []
    with _processes(env) as procs:
        ioc = _start_ioc(procs, config, log)
        rss0 = _rss_mb(ioc.pid)
        started = [
            procs.start([sys.executable, "-m", module, *pvs], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=None, text=True, cwd=REPO)
            for _ in range(clients)
        ]  # fmt: skip
        for client in started:
            assert client.stdout is not None
            line = client.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a client did not connect: {line!r}")
        cpu0, t0 = _cpu_seconds(ioc.pid), time.monotonic()
        writer = procs.start(
            _writer_args(data / f"{stem}.h5", frames, CLIENT_RATE_HZ, CLIENT_SHAPE, flush_log)
        )
        try:
            writer.wait(timeout=window + 4)
        except subprocess.TimeoutExpired:
            writer.send_signal(signal.SIGINT)
            writer.wait(timeout=120)
        cores = (_cpu_seconds(ioc.pid) - cpu0) / (time.monotonic() - t0)
        growth = _rss_mb(ioc.pid) - rss0
        time.sleep(0.5)
        for client in started:
            assert client.stdin is not None
            client.stdin.write("stop\n")
            client.stdin.flush()
        for client in started:
            assert client.stdout is not None
            line = client.stdout.readline()
            results.append(json.loads(line) if line.strip() else {})
        traceback = "Traceback" in log.read_text(errors="replace")
    flush = _flushes(flush_log)
    start, stop = flush[1] + 2.0, flush[-1] - 0.5
    span = stop - start
    rows: list[Row] = []
    targets: list[Target] = []
    for pv in counted:
        rates = []
        for result in results:
            times = np.asarray(result.get("arrivals", {}).get(pv, []))
            rates.append(float(np.count_nonzero((times >= start) & (times < stop))) / span)
        low = min(rates) if len(rates) == clients else 0.0
        med = statistics.median(rates) if rates else 0.0
        short = pv[len(PREFIX) :]
        rows.append(Row(group, f"{stem}_{short}", f"updates/s of {short} per client: min / median",
                        "serving", text=f"{low:.2f} / {med:.2f} /s",
                        values={"min": low, "median": med, "rate_hz": rate_hz},
                        note=f"{len(rates)} clients, window {span:.1f} s"))  # fmt: skip
        targets.append(Target(f"{group}: min updates/s of {short} / rate_hz", low / rate_hz,
                              target, ">="))  # fmt: skip
    writer_rate = _writer_rate(flush)
    rows.append(Row(group, f"{stem}_ioc", "IOC CPU (cores) / memory growth (MB)", "serving",
                    text=f"{cores:.2f} / {growth:+.0f} MB",
                    values={"cores": cores, "growth_mb": growth, "rss0_mb": rss0},
                    note=f"{len(pvs)} PVs per client; writer {writer_rate:.0f} frames/s; "
                         f"traceback in the IOC log: {traceback}"))  # fmt: skip
    targets.append(Target(f"{group}: IOC memory growth (MB)", growth, MEMORY_MB, "<="))
    return rows, targets


def run(window: float = WINDOW_S) -> tuple[list[Row], list[Target], bool]:
    """Both parts; (rows, targets, every part ran)."""
    parent = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    rows: list[Row] = []
    targets: list[Target] = []
    ran = True
    for group, module, clients, target in PARTS:
        env = loopback_env()  # ports of its own: nothing of the other part answers
        quiet = subprocess.DEVNULL
        repeater = subprocess.Popen([epics_bin("caRepeater")], env=env, stdout=quiet, stderr=quiet)
        try:
            data = Path(tempfile.mkdtemp(prefix="swmr-serving-", dir=parent))
            print(f"  serving: {group} ...", file=sys.stderr, flush=True)
            try:
                got_rows, got_targets = _part(data, env, group, module, clients, target, window)
            except Exception as exc:  # noqa: BLE001 - report it, run the other part
                ran = False
                got_rows = [Row(group, group, group, "serving", text="failed",
                                note=f"{type(exc).__name__}: {exc}")]  # fmt: skip
                got_targets = []
            finally:
                for path in data.iterdir():
                    path.unlink()
                data.rmdir()
        finally:
            repeater.terminate()
            repeater.wait(timeout=10)
        rows += got_rows
        targets += got_targets
        for row in got_rows:
            print(f"  serving: {row.group:<15} {row.label:<48} {row.text}   {row.note}",
                  file=sys.stderr, flush=True)  # fmt: skip
    return rows, targets, ran
