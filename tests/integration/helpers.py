"""Shared pieces of the integration tests: configs, clients, ground truth."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401 - compressed frames
import numpy as np
from aioca import DBR_CHAR_STR, caget

from tests.conftest import epics_bin, epics_run_env

STATUS = ["Idle", "Waiting", "Following", "Finished", "Error"]


def write_config(
    path: Path,
    *,
    prefix: str,
    data_root: Path,
    file: str,
    rois: list[dict[str, Any]],
    scan: tuple[int, int] | None = None,
    snake: bool = True,
    timeout: float = 1.0,
    rate_hz: float = 10.0,
    ts_len: int = 2048,
) -> Path:
    lines = [
        "ioc_name: test-ioc",
        f'prefix: "{prefix}"',
        f"data_root: {data_root}",
        "source:",
        f"  file: {file}",
        f"  timeout: {timeout}",
        "scan:",
        f"  shape: {list(scan) if scan else 'null'}",
        f"  snake: {'true' if snake else 'false'}",
        "rois:",
    ]
    for roi in rois:
        lines.append(f"  - name: {roi['name']}")
        for key in ("x", "y", "width", "height", "background_width"):
            if key in roi:
                lines.append(f"    {key}: {roi[key]}")
    lines += [
        "publish:",
        f"  rate_hz: {rate_hz}",
        f"  time_series_length: {ts_len}",
        "pva: false",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def wait_for(pv: str, predicate: Any, timeout: float, **kw: Any) -> Any:
    """Poll a PV with aioca until predicate(value) holds; return the value."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while time.monotonic() < deadline:
        try:
            value = await caget(pv, timeout=2.0, **kw)
        except Exception:  # noqa: BLE001 - not connected yet
            value = None
        if value is not None and predicate(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{pv} never satisfied the condition; last value {value!r}")


async def status_of(prefix: str) -> str:
    return STATUS[int(await caget(f"{prefix}Status_RBV", timeout=5.0))]


async def message_of(prefix: str) -> str:
    return str(await caget(f"{prefix}StatusMessage_RBV", datatype=DBR_CHAR_STR, timeout=5.0))


def caget_program(*args: str, timeout: float = 10.0) -> str:
    """The EPICS base `caget` program; its stdout. Fails the test on error."""
    result = subprocess.run(
        [str(epics_bin("caget")), "-w", "3", *args],
        env=epics_run_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"caget {args} failed: {result.stdout}{result.stderr}"
    return result.stdout


def read_frames(path: Path, dataset: str = "/entry/data/data") -> np.ndarray:
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        dset = f[dataset]
        assert isinstance(dset, h5py.Dataset)
        dset.refresh()
        data = dset[()]
    return data.reshape((-1, *data.shape[-2:]))


def truth(
    frames: np.ndarray, x: int, y: int, w: int, h: int, bgd: int = 0
) -> dict[str, np.ndarray]:
    """Plain numpy ground truth of NDPluginROIStat's numbers for an in-frame ROI."""
    region = frames[:, y : y + h, x : x + w].astype(np.float64)
    total = region.sum(axis=(1, 2))
    out = {
        "total": total,
        "min": region.min(axis=(1, 2)),
        "max": region.max(axis=(1, 2)),
        "mean": total / (w * h),
    }
    if bgd > 0:
        mask = np.zeros((h, w), dtype=bool)
        mask[:bgd, :] = mask[-bgd:, :] = True
        mask[:, :bgd] = mask[:, -bgd:] = True
        bg = region[:, mask].mean(axis=1) * (w * h)
        out["net"] = total - bg
    else:
        out["net"] = total
    return out


def snake_map(values: np.ndarray, rows: int, cols: int, snake: bool = True) -> np.ndarray:
    """values in acquisition order placed on a rows x cols grid; NaN elsewhere."""
    grid = np.full((rows, cols), np.nan)
    for i, v in enumerate(values[: rows * cols]):
        r, c = divmod(i, cols)
        if snake and r % 2 == 1:
            c = cols - 1 - c
        grid[r, c] = v
    return grid
