"""ophyd-async against the IOC: our device, and ophyd-async's own NDROIStatNIO
(the NDPluginROIStat layout) read unchanged, both equal to caget."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd_async.core import init_devices
from ophyd_async.epics.adcore import NDROIStatNIO

from swmr_roi_ioc.ophyd import IocStatus, SwmrRoiIoc
from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import caget_program, read_frames, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROIS = [
    {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30},
    {"name": "ROI2", "x": 100, "y": 40, "width": 50, "height": 60, "background_width": 2},
]


def _ca(pv: str) -> float:
    return float(caget_program("-t", "-g", "17", pv).strip())


async def test_ndroistatnio_and_our_device_read_what_caget_reads(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=ROIS,
        scan=(4, 5), timeout=0.5,
    )  # fmt: skip
    processes.append(Process(swmr_roi_ioc("--log-level", "WARNING", "run", str(config))))
    writer = Process(
        swmr_roi_ioc("simulate", str(h5), "--frames", "20", "--rate", "0", "--scan", "4", "5")
    )
    processes.append(writer)
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)

    # ophyd-async's own NDPluginROIStat device, unchanged (in 0.21.3 it is a plain
    # EpicsDevice without read(): every one of its signals is read)
    for n in (1, 2):
        roi = NDROIStatNIO(f"{prefix}{n}:", name=f"roi{n}")
        await roi.connect(timeout=10)
        reading = {}
        for _, signal in roi.children():
            reading.update(await signal.read())  # type: ignore[attr-defined]
        assert reading[f"roi{n}-total"]["value"] == _ca(f"{prefix}{n}:Total_RBV")
        assert reading[f"roi{n}-min_value"]["value"] == _ca(f"{prefix}{n}:MinValue_RBV")
        assert reading[f"roi{n}-max_value"]["value"] == _ca(f"{prefix}{n}:MaxValue_RBV")
        assert reading[f"roi{n}-mean_value"]["value"] == _ca(f"{prefix}{n}:MeanValue_RBV")
        assert await roi.min_x.get_value() == ROIS[n - 1]["x"]
        assert await roi.size_y.get_value() == ROIS[n - 1]["height"]
        assert await roi.use.get_value() is True
        assert await roi.name_.get_value() == ROIS[n - 1]["name"]

    # our device: statistics readable, geometry settable, maps and counters
    ioc = SwmrRoiIoc(prefix, num_rois=2, name="roiioc")
    await ioc.connect(timeout=10)
    assert await ioc.status.get_value() == IocStatus.FINISHED
    assert await ioc.array_counter.get_value() == 20
    assert await ioc.file_path.get_value() == str(h5.resolve())
    reading = await ioc.read()
    assert reading["roiioc-rois-1-total"]["value"] == _ca(f"{prefix}1:Total_RBV")
    assert reading["roiioc-frame-total"]["value"] == _ca(f"{prefix}Frame:Total_RBV")
    config_reading = await ioc.read_configuration()
    assert config_reading["roiioc-rois-2-bgd_width"]["value"] == 2
    frames = read_frames(h5)
    totals = frames[:, 20:50, 10:50].astype(np.int64).sum(axis=(1, 2))
    np.testing.assert_array_equal((await ioc.rois[1].ts_total.get_value())[:20], totals)
    assert np.isfinite(await ioc.rois[1].map.get_value()).sum() == 20

    await ioc.rois[1].min_x.set(12)
    assert _ca(f"{prefix}1:MinX") == 12
    await wait_for(f"{prefix}RecomputeProgress_RBV", lambda v: v == 100, 10)
    moved = frames[:, 20:50, 12:52].astype(np.int64).sum(axis=(1, 2))
    await wait_for(f"{prefix}1:TSTotal", lambda v: np.array_equal(np.asarray(v)[:20], moved), 10)
    await ioc.reset.trigger()
    await wait_for(f"{prefix}1:Total_RBV", lambda v: v == 0, 10)


def test_mv_then_count_reads_the_new_geometry(
    tmp_path: Path,
    prefix: str,
    processes: list[Process],
    RE: RunEngine,  # noqa: N803
) -> None:
    """bps.mv of a geometry signal completes once its readback shows the value
    (clamped to the frame as the IOC applies it), so a count right after
    records the new geometry; the statistics follow the recompute."""
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=ROIS,
        timeout=0.5, rate_hz=2.0,  # slow publishing: a readback that lags would show
    )  # fmt: skip
    processes.append(Process(swmr_roi_ioc("--log-level", "WARNING", "run", str(config))))
    writer = Process(
        swmr_roi_ioc("simulate", str(h5), "--frames", "10", "--rate", "0", "--shape", "240", "320")
    )
    processes.append(writer)
    assert writer.wait(60) == 0
    deadline = time.monotonic() + 60
    while True:  # the IOC up, and done with the file
        try:
            if caget_program("-t", f"{prefix}Status_RBV").strip() == "Finished":
                break
        except AssertionError:
            pass  # not serving yet
        assert time.monotonic() < deadline, "the IOC never finished the file"
        time.sleep(0.3)
    with init_devices():  # connects in the RunEngine's loop, as a beamline startup does
        roiioc = SwmrRoiIoc(prefix, num_rois=2)

    docs: list[tuple[str, dict]] = []
    roi = roiioc.rois[1]
    for x, shown in [(107, 107), (18, 18), (1000, 319)]:  # 1000: clamped to the frame
        RE(bps.mv(roi.min_x, x, roi.size_y, 20))
        assert call_in_bluesky_event_loop(roi.min_x.get_value()) == shown
        docs.clear()
        RE(bp.count([roiioc]), lambda name, doc: docs.append((name, doc)))
        descriptor = next(d for n, d in docs if n == "descriptor")
        recorded = descriptor["configuration"]["roiioc"]["data"]
        assert recorded["roiioc-rois-1-min_x"] == shown, recorded
        assert recorded["roiioc-rois-1-size_y"] == 20
    # ... and the statistics, once the recompute is done
    frame = read_frames(h5)[-1]
    width = min(ROIS[0]["width"], 320 - 319)
    expected = float(frame[20:40, 319 : 319 + width].astype(np.int64).sum())
    deadline = time.monotonic() + 20
    while call_in_bluesky_event_loop(roi.total.get_value()) != expected:
        assert time.monotonic() < deadline, "statistics never followed the geometry"
        time.sleep(0.2)


def test_readme_runengine_example_runs_as_written(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """README's RunEngine example, with only the prefix changed, in a fresh
    Python process against a running IOC."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## In bluesky plans", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'SwmrRoiIoc("BL01C-DI-DCAM-01:ROI:", num_rois=3)' in code
    code = code.replace("BL01C-DI-DCAM-01:ROI:", prefix)
    data = tmp_path / "data"
    data.mkdir()
    rois = [*ROIS, {"name": "ROI3", "x": 200, "y": 100, "width": 60, "height": 60}]
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5", rois=rois,
        timeout=0.5,
    )  # fmt: skip
    processes.append(Process(swmr_roi_ioc("--log-level", "WARNING", "run", str(config))))
    writer = Process(
        swmr_roi_ioc("simulate", str(data / "scan.h5"), "--frames", "10", "--rate", "0",
                     "--shape", "240", "320")
    )  # fmt: skip
    processes.append(writer)
    assert writer.wait(60) == 0
    deadline = time.monotonic() + 60
    while True:
        try:
            if caget_program("-t", f"{prefix}Status_RBV").strip() == "Finished":
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.3)
    example = Process([sys.executable, "-c", code])
    processes.append(example)
    assert example.wait(120) == 0, example.text
    assert "descriptor" in example.text and "'roiioc-rois-1-min_x': 107" in example.text
    assert _ca(f"{prefix}1:MinX_RBV") == 107
    last = example.text.strip().splitlines()[-1]
    assert float(last) > 0, example.text[-2000:]  # ROI 1's total, read outside a plan
