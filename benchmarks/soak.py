"""Soak: follow a writer at 100 Hz for a long time with 10 monitoring clients.

    python -m benchmarks.soak --minutes 30 [--rate 100] [--shape 64 80]
                              [--clients 10] [--json out.json]

Everything runs on loopback with private ports: the simulated writer and the
IOC in their own processes, 10 EPICS base ``camonitor`` clients on counters,
statistics and a map. Every 5 s it samples the IOC's RSS and the backlog
(FramesWritten_RBV - ArrayCounter_RBV, read in one ``caget``, the counter
first, so a backlog is never under-reported; a sample whose caget failed is
marked, not counted as 0). At the end: frames lost (written but never
counted; must be 0), RSS growth after a 30 s warm-up (target: at most 20 MB
over 30 minutes), the largest backlog and the RSS curve (one point a minute).
Not run in CI.

A higher ``--rate`` with the same ``--minutes`` reaches a long acquisition's
frame count sooner (e.g. ``--minutes 3 --rate 1000`` = 180,000 frames); the
IOC's environment is this process's (e.g. ``MALLOC_ARENA_MAX`` or caproto's
``CAPROTO_MAX_SUBSCRIPTION_BACKLOG`` to compare settings).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.epics_env import epics_bin, loopback_env

PREFIX = "SOAK:ROI:"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _caget(pvs: list[str], env: dict[str, str]) -> list[float] | None:
    """The values of ``pvs`` read in this order by one caget; None if any failed."""
    out = subprocess.run(
        [epics_bin("caget"), "-w", "2", "-t", *pvs], env=env, capture_output=True, text=True
    )
    try:
        values = [float(v) for v in out.stdout.split()]
    except ValueError:
        return None
    return values if len(values) == len(pvs) else None


def _curve(samples: list[dict[str, float]], every: float = 60.0) -> list[list[float]]:
    """[t, counter, rss_mb] about every ``every`` seconds, and the last sample."""
    out: list[list[float]] = []
    next_t = 0.0
    for s in samples:
        if s["t"] >= next_t:
            out.append([s["t"], s["counter"], s["rss_mb"]])
            next_t = s["t"] + every - 2.5
    if samples and out[-1][0] != samples[-1]["t"]:
        last = samples[-1]
        out.append([last["t"], last["counter"], last["rss_mb"]])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--shape", type=int, nargs=2, default=(64, 80), metavar=("H", "W"))
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    env = loopback_env()
    frames = int(args.minutes * 60 * args.rate)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        data = Path(tmp)
        config = data / "ioc.yaml"
        config.write_text(
            f'ioc_name: soak\nprefix: "{PREFIX}"\ndata_root: {data}\n'
            "source: {file: soak.h5, timeout: 10}\n"
            "rois:\n  - {name: ROI1, x: 5, y: 5, width: 20, height: 20}\n"
            "  - {name: ROI2, x: 30, y: 10, width: 20, height: 30, background_width: 2}\n"
            "  - {name: ROI3, x: 50, y: 40, width: 20, height: 20}\n"
            "scan: {shape: [100, 100]}\npva: true\n"
        )
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        py = sys.executable
        try:
            procs.append(subprocess.Popen([epics_bin("caRepeater")], env=env, **quiet))
            ioc = subprocess.Popen(
                [py, "-m", "swmr_roi_ioc", "--log-level", "WARNING", "run", str(config)],
                env=env, **quiet,
            )  # fmt: skip
            procs.append(ioc)
            time.sleep(3)
            names = ["ArrayCounter_RBV", "1:Total_RBV", "2:Net_RBV", "Frame:MaxValue_RBV",
                     "1:Map", "Status_RBV"]  # fmt: skip
            pvs = [PREFIX + name for name in names]
            for _ in range(args.clients):
                procs.append(subprocess.Popen([epics_bin("camonitor"), *pvs], env=env, **quiet))
            writer = subprocess.Popen(
                [py, "-m", "swmr_roi_ioc", "simulate", str(data / "soak.h5"), "--frames",
                 str(frames), "--rate", str(args.rate), "--shape", *map(str, args.shape)],
                env=env, **quiet,
            )  # fmt: skip
            procs.append(writer)
            start = time.monotonic()
            samples: list[dict[str, float]] = []
            failed = 0
            counters = [f"{PREFIX}ArrayCounter_RBV", f"{PREFIX}FramesWritten_RBV"]
            while writer.poll() is None:
                time.sleep(5)
                read = _caget(counters, env)
                rss = round(_rss_mb(ioc.pid), 1)
                if read is None:  # the IOC did not answer in 2 s: say so, keep going
                    failed += 1
                    print(json.dumps({"t": round(time.monotonic() - start, 1),
                                      "rss_mb": rss, "caget": "failed"}), flush=True)  # fmt: skip
                    continue
                counter, written = read
                sample = {
                    "t": round(time.monotonic() - start, 1),
                    "rss_mb": rss,
                    "backlog": written - counter,
                    "counter": counter,
                }
                samples.append(sample)
                print(json.dumps(sample), flush=True)
            deadline = time.monotonic() + 60
            counter = 0.0
            while time.monotonic() < deadline:
                read = _caget(counters[:1], env)
                counter = read[0] if read else 0.0
                if counter >= frames:
                    break
                time.sleep(1)
            warm = [s for s in samples if s["t"] >= 30] or samples
            result = {
                "minutes": args.minutes,
                "rate_hz": args.rate,
                "shape": list(args.shape),
                "clients": args.clients,
                "frames_written": frames,
                "frames_counted": counter,
                "frames_lost": frames - counter,
                "rss_start_mb": warm[0]["rss_mb"] if warm else None,
                "rss_end_mb": samples[-1]["rss_mb"] if samples else None,
                "rss_growth_mb": round(warm[-1]["rss_mb"] - warm[0]["rss_mb"], 1) if warm else None,
                "max_backlog": max((s["backlog"] for s in samples), default=None),
                "failed_cagets": failed,
                "writer_exit": writer.returncode,
                "rss_curve_t_frames_mb": _curve(samples),
            }
            curve = result.pop("rss_curve_t_frames_mb")
            print(json.dumps(result, indent=2))
            print("RSS curve (s, frames counted, MB):")
            for point in curve:
                print(f"  {point[0]:7.1f} {point[1]:9.0f} {point[2]:7.1f}")
            result["rss_curve_t_frames_mb"] = curve
            if args.json:
                args.json.write_text(json.dumps({"result": result, "samples": samples}, indent=2))
            return 0 if result["frames_lost"] == 0 else 1
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
