"""Issue 'live views' acceptance: snake maps, max map, histogram, image,
retroactive ROI changes, the NeXus file. A real writer process, the IOC
process, aioca; ground truth with numpy from the file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from aioca import caget, caput

from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import read_frames, snake_map, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROWS, COLS = 20, 30
SHAPE = (240, 320)
ROI1 = (10, 20, 40, 30)  # x, y, w, h


def _config(path: Path, prefix: str, data: Path, *, ts_len: int = 2048) -> Path:
    x, y, w, h = ROI1
    path.write_text(
        f"""\
ioc_name: test-ioc
prefix: "{prefix}"
data_root: {data}
source: {{file: scan.h5, timeout: 1.0}}
scan: {{shape: [{ROWS}, {COLS}], snake: true}}
rois:
  - {{name: ROI1, x: {x}, y: {y}, width: {w}, height: {h}}}
  - {{name: ROI2, x: 150, y: 100, width: 60, height: 60, background_width: 3}}
publish:
  rate_hz: 10
  time_series_length: {ts_len}
  histogram: {{bins: 64, min: 0, max: 2048}}
  image_max_size: 100
nexus: {{directory: {data / "processed"}}}
pva: false
"""
    )
    return path


def _roi_totals(frames: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    return frames[:, y : y + h, x : x + w].astype(np.int64).sum(axis=(1, 2)).astype(float)


async def _arr(pv: str) -> np.ndarray:
    return np.asarray(await caget(pv, timeout=5))


def _writer(h5: Path, frames: int, rate: float) -> Process:
    return Process(
        swmr_roi_ioc(
            "simulate", str(h5), "--frames", str(frames), "--rate", str(rate),
            "--shape", str(SHAPE[0]), str(SHAPE[1]), "--scan", str(ROWS), str(COLS),
            "--dtype", "uint16",
        )
    )  # fmt: skip


async def test_snake_maps_views_recompute_and_nexus(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    (data / "processed").mkdir(parents=True)
    h5 = data / "scan.h5"
    config = _config(tmp_path / "ioc.yaml", prefix, data)
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    writer = _writer(h5, ROWS * COLS, 100)
    processes.append(writer)

    # while it runs: visited cells have numbers, the rest NaN, growing
    seen_partial = False
    nexus_seen: set[str] = set()
    while writer.proc.poll() is None:
        counter = int(await caget(f"{prefix}ArrayCounter_RBV"))
        grid = await _arr(f"{prefix}1:Map")
        landed = int(np.isfinite(grid).sum())
        if 0 < landed < ROWS * COLS:
            seen_partial = True
            assert landed <= int(await caget(f"{prefix}ArrayCounter_RBV"))
            assert landed >= counter - 100  # published at 10 Hz: at most ~1 s behind
        nexus_seen |= {p.name for p in (data / "processed").iterdir()}
        await asyncio.sleep(0.3)
    assert seen_partial
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    assert not nexus_seen, f"a NeXus file appeared before the acquisition ended: {nexus_seen}"

    frames = read_frames(h5)
    n = len(frames)
    assert n == ROWS * COLS
    truth1 = _roi_totals(frames, *ROI1)
    whole = frames.reshape(n, -1)
    np.testing.assert_array_equal(
        (await _arr(f"{prefix}1:Map")).reshape(ROWS, COLS), snake_map(truth1, ROWS, COLS)
    )
    np.testing.assert_array_equal(
        (await _arr(f"{prefix}Frame:Map")).reshape(ROWS, COLS),
        snake_map(whole.astype(np.int64).sum(axis=1).astype(float), ROWS, COLS),
    )
    np.testing.assert_array_equal(
        (await _arr(f"{prefix}Frame:MaxMap")).reshape(ROWS, COLS),
        snake_map(whole.max(axis=1).astype(float), ROWS, COLS),
    )
    assert await caget(f"{prefix}1:MapMin_RBV") == truth1.min()
    assert await caget(f"{prefix}1:MapMax_RBV") == truth1.max()

    # histogram of the latest frame: bins + below + above = pixel count
    hist = await _arr(f"{prefix}Histogram_RBV")
    size = int(await caget(f"{prefix}HistSize_RBV"))
    below = int(await caget(f"{prefix}HistBelow_RBV"))
    above = int(await caget(f"{prefix}HistAbove_RBV"))
    assert size == 64 and len(hist) >= size
    assert hist[:size].sum() + below + above == SHAPE[0] * SHAPE[1]
    last = frames[-1].ravel().astype(np.int64)
    inside = last[(last >= 0) & (last < 2048)]
    expected = np.bincount(inside * 64 // 2048, minlength=64)  # NDPluginStats' bins
    assert hist[:size].tolist() == expected.astype(float).tolist()
    assert above == int((last >= 2048).sum())
    # the live image: the latest frame binned (f = 4) to 60 x 80, mean of blocks
    rows, cols = (
        int(await caget(f"{prefix}ImageSizeY_RBV")),
        int(await caget(f"{prefix}ImageSizeX_RBV")),
    )
    assert (rows, cols) == (60, 80)
    binned = frames[-1].reshape(60, 4, 80, 4).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal((await _arr(f"{prefix}Image"))[: rows * cols], binned.ravel())

    # the NeXus file: complete, under its final name only, maps equal the PVs
    nxs = data / "processed" / "scan_roi.nxs"
    await _wait_path(nxs, 10)
    assert not list((data / "processed").glob("*.tmp"))
    with h5py.File(nxs, "r") as f:
        entry = f["entry"]
        assert entry.attrs["NX_class"] == "NXentry"
        roi1 = entry["ROI1"]
        assert roi1.attrs["NX_class"] == "NXdata"
        assert roi1.attrs["signal"] == "data"
        assert list(roi1.attrs["axes"]) == ["scan_row", "scan_col"]
        np.testing.assert_array_equal(roi1["data"][()], snake_map(truth1, ROWS, COLS))
        np.testing.assert_array_equal(roi1["total"][()], truth1)
        raw = entry["instrument/detector/data"]
        assert raw.shape == frames.shape

    # new histogram settings after the scan (its file is closed, the NeXus
    # file written): made again from the latest frame the engine keeps
    await caput(f"{prefix}HistSize", 16, wait=True)
    await caput(f"{prefix}HistMax", 1024.0, wait=True)
    inside = last[last < 1024]
    regrouped = np.bincount(inside * 16 // 1024, minlength=16).astype(float).tolist()
    await wait_for(f"{prefix}Histogram_RBV", lambda v: np.asarray(v)[:16].tolist() == regrouped, 10)
    assert int(await caget(f"{prefix}HistAbove_RBV")) == int((last >= 1024).sum())

    # after the scan: move ROI 1; within 10 s every past frame is recomputed
    new_x = 200
    await caput(f"{prefix}1:MinX", new_x, wait=True)
    start = time.monotonic()
    await wait_for(f"{prefix}RecomputeProgress_RBV", lambda v: v == 100, 10)
    moved = _roi_totals(frames, new_x, ROI1[1], ROI1[2], ROI1[3])
    await wait_for(
        f"{prefix}1:TSTotal", lambda v: np.array_equal(np.asarray(v)[:n], moved), 10 - (
            time.monotonic() - start)
    )  # fmt: skip
    assert time.monotonic() - start < 10
    np.testing.assert_array_equal(
        (await _arr(f"{prefix}1:Map")).reshape(ROWS, COLS), snake_map(moved, ROWS, COLS)
    )
    assert await caget(f"{prefix}1:Total_RBV") == moved[-1]
    # the NeXus file is rewritten for the new geometry
    await asyncio.sleep(1.0)
    with h5py.File(nxs, "r") as f:
        np.testing.assert_array_equal(f["entry/ROI1/total"][()], moved)
        assert int(f["entry/ROI1/roi/x"][()]) == new_x


async def _wait_path(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.1)


async def test_roi_change_during_fast_acquisition_keeps_up(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    (data / "processed").mkdir(parents=True)
    h5 = data / "scan.h5"
    config = _config(tmp_path / "ioc.yaml", prefix, data)
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    writer = _writer(h5, 1000, 200)
    processes.append(writer)
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v >= 400, 30)

    await caput(f"{prefix}1:MinX", 220, wait=True)
    backlogs = []
    while writer.proc.poll() is None:
        written = int(await caget(f"{prefix}FramesWritten_RBV"))
        counter = int(await caget(f"{prefix}ArrayCounter_RBV"))
        backlogs.append(written - counter)
        await asyncio.sleep(0.1)
    assert writer.wait(30) == 0
    assert max(backlogs) < 200, backlogs  # never more than 1 s behind at 200 Hz
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    await wait_for(f"{prefix}RecomputeProgress_RBV", lambda v: v == 100, 10)
    frames = read_frames(h5)
    moved = _roi_totals(frames, 220, ROI1[1], ROI1[2], ROI1[3])
    # every frame with the new ROI: the ones before the change recomputed, the rest live
    await wait_for(f"{prefix}1:TSTotal", lambda v: np.array_equal(np.asarray(v)[:1000], moved), 10)


async def test_map_geometry_from_the_files_extra_dimensions(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """No scan.shape in ioc.yaml: the (rows, cols) of a dataset written with
    areaDetector extra dimensions give the map its geometry."""
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    config = tmp_path / "ioc.yaml"
    config.write_text(
        f'ioc_name: test-ioc\nprefix: "{prefix}"\ndata_root: {data}\n'
        "source: {file: scan.h5, timeout: 1.0}\n"
        "rois: [{name: ROI1, x: 10, y: 20, width: 40, height: 30}]\npva: false\n"
    )
    processes.append(Process(swmr_roi_ioc("run", str(config))))
    rows, cols = 6, 7
    writer = Process(
        swmr_roi_ioc(
            "simulate", str(h5), "--frames", str(rows * cols), "--rate", "100",
            "--scan", str(rows), str(cols), "--extra-dims", "--dtype", "uint16",
        )
    )  # fmt: skip
    processes.append(writer)
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    await wait_for(f"{prefix}MapSizeY_RBV", lambda v: v == rows, 10)
    assert await caget(f"{prefix}MapSizeX_RBV") == cols
    frames = read_frames(h5)
    totals = frames[:, 20:50, 10:50].astype(np.int64).sum(axis=(1, 2)).astype(float)
    grid = (await _arr(f"{prefix}1:Map"))[: rows * cols].reshape(rows, cols)
    np.testing.assert_array_equal(grid, snake_map(totals, rows, cols))
