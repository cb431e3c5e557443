"""The PVA mirror: every CA PV over PVAccess, read by p4p and by EPICS base pvget/pvput."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from caproto.asyncio.server import Context as CaServer
from p4p.client.asyncio import Context, RemoteError

from swmr_roi_ioc.app._state import ServiceState
from swmr_roi_ioc.config import IocConfig, parse_config
from swmr_roi_ioc.publish import PvaMirror, RoiIoc, Status, build_ioc, map_shape
from swmr_roi_ioc.stats import compute_stats
from tests.conftest import epics_bin, epics_run_env

pytestmark = pytest.mark.integration

ROWS, COLS = 3, 4
H, W = 16, 20
ROIS = [(1, 2, 3, 4), (5, 6, 7, 8)]  # x, y, width, height
PATH = "/data/scan_0001.h5"


def _config(prefix: str) -> IocConfig:
    rois = "".join(
        f"  - {{name: ROI{n + 1}, x: {x}, y: {y}, width: {w}, height: {h}}}\n"
        for n, (x, y, w, h) in enumerate(ROIS)
    )
    return parse_config(
        f'ioc_name: test-ioc\nprefix: "{prefix}"\ndata_root: /data\n'
        f"scan:\n  shape: [{ROWS}, {COLS}]\n  snake: true\n"
        f"publish:\n  time_series_length: 16\nrois:\n{rois}"
    )


def _frames(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, size=(n, H, W)).astype(np.uint16)


def _add(state: ServiceState, start: int, frames: np.ndarray) -> None:
    rois = [r for r in state.rois_for_next_batch() if r is not None]
    roi_stats, frame_stats = compute_stats(frames, rois)
    state.add_batch(start, roi_stats, frame_stats, unique_id=start + len(frames))


@dataclass
class Served:
    prefix: str
    state: ServiceState
    ioc: RoiIoc
    mirror: PvaMirror
    ctx: Context

    def ca(self, suffix: str) -> Any:
        return self.ioc.pvdb[self.prefix + suffix]

    async def get(self, suffix: str) -> Any:
        return await self.ctx.get(self.prefix + suffix)

    async def put(self, suffix: str, value: Any) -> None:
        await self.ctx.put(self.prefix + suffix, value)

    async def publish(self) -> None:
        await self.ioc.publish(self.state.snapshot())
        await self.mirror.sync()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def served(prefix: str) -> AsyncIterator[Served]:
    """The mirror of a real IOC (state + caproto PVs), isolated, and a p4p client."""
    config = _config(prefix)
    state = ServiceState(config)
    ioc = build_ioc(config, controller=state)
    mirror = PvaMirror(ioc, map_shape(config))
    task = asyncio.create_task(mirror.serve(isolate=True))
    try:
        conf = await asyncio.wait_for(mirror.wait_serving(), 10)
        with Context("pva", conf=conf, useenv=False) as ctx:
            yield Served(prefix, state, ioc, mirror, ctx)
    finally:
        await _stop(task)


def _expected_map(frames: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """Totals placed by snake scan position, NaN where no frame landed (plain numpy)."""
    totals = frames[:, y : y + h, x : x + w].astype(np.float64).sum(axis=(1, 2))
    grid = np.full((ROWS, COLS), np.nan)
    for i, total in enumerate(totals):
        row, col = divmod(i, COLS)
        grid[row, col if row % 2 == 0 else COLS - 1 - col] = total
    return grid


async def test_values_alarms_and_shapes_equal_the_ca_side(served: Served) -> None:
    frames = _frames(6)
    served.state.start_acquisition(PATH, (H, W))
    served.state.set_status(Status.FOLLOWING, f"Following {PATH}")
    _add(served.state, 0, frames)
    await served.publish()

    x, y, w, h = ROIS[0]
    totals = frames[:, y : y + h, x : x + w].astype(np.float64).sum(axis=(1, 2))
    for suffix in ("1:Total_RBV", "1:MeanValue_RBV", "Frame:MaxValue_RBV", "ArrayCounter_RBV"):
        value = await served.get(suffix)
        chan = served.ca(suffix)
        assert value == chan.value, suffix
        assert value.severity == chan.alarm.severity, suffix
        assert value.timestamp == pytest.approx(chan.timestamp, abs=1e-6), suffix
    assert await served.get("1:Total_RBV") == totals[-1]
    assert await served.get("ArrayCounter_RBV") == len(frames)
    assert await served.get("UniqueId_RBV") == len(frames)

    rate: Any = await served.ctx.get(served.prefix + "ArrayRate_RBV", request="field()")
    assert rate.raw["display.units"] == "Hz"
    assert rate.raw["display.precision"] == 1

    status = await served.get("Status_RBV")
    assert (int(status), status.choice) == (2, "Following")
    assert list(status.raw["value.choices"]) == list(served.ca("Status_RBV").enum_strings)
    use = await served.get("1:Use")
    assert (use.choice, list(use.raw["value.choices"])) == ("Yes", ["No", "Yes"])
    assert await served.get("StatusMessage_RBV") == f"Following {PATH}"
    assert await served.get("FilePath_RBV") == PATH
    assert await served.get("1:Name") == "ROI1"
    assert await served.get("Frame:Name") == "Frame"

    series = await served.get("1:TSTotal")
    assert series.shape == (16,)
    np.testing.assert_array_equal(series[: len(frames)], totals)
    assert np.isnan(series[len(frames) :]).all()

    for n, roi in ((1, ROIS[0]), (2, ROIS[1])):
        image = await served.get(f"{n}:Map")
        assert image.raw.getID() == "epics:nt/NTNDArray:1.0"
        assert [d["size"] for d in image.raw["dimension"]] == [COLS, ROWS]  # x first
        assert image.shape == (ROWS, COLS)
        np.testing.assert_array_equal(image, _expected_map(frames, *roi))  # NaN == NaN
    whole = await served.get("Frame:Map")
    assert whole.shape == (ROWS, COLS)
    assert whole[0, 0] == frames[0].astype(np.float64).sum()


async def test_only_changes_are_posted(served: Served) -> None:
    served.state.start_acquisition(PATH, (H, W))
    await served.publish()
    updates: asyncio.Queue[Any] = asyncio.Queue()
    sub = served.ctx.monitor(served.prefix + "1:Map", updates.put)
    try:
        first = await asyncio.wait_for(updates.get(), 5)
        assert np.isnan(first).all()
        await served.publish()  # nothing changed
        await served.mirror.sync()
        await asyncio.sleep(0.3)
        assert updates.empty()
        _add(served.state, 0, _frames(2))
        await served.publish()
        second = await asyncio.wait_for(updates.get(), 5)
        assert np.isfinite(second[0, :2]).all()
        assert np.isnan(second[0, 2:]).all()
    finally:
        sub.close()


async def test_setpoint_put_goes_through_caproto_and_the_controller(served: Served) -> None:
    served.state.start_acquisition(PATH, (H, W))
    await served.publish()

    await served.put("1:MinX", 7)
    assert served.ca("1:MinX").value == 7
    first = served.state.rois_for_next_batch()[0]
    assert first is not None
    assert first.x == 7
    assert await served.get("1:MinX") == 7  # posted at once, before the next sync
    await served.publish()
    assert await served.get("1:MinX_RBV") == 7

    await served.put("1:Use", 0)
    assert served.ca("1:Use").value == "No"
    assert served.state.rois_for_next_batch()[0] is None
    await served.put("1:Use", 1)
    await served.put("1:Name", "Beam")
    assert served.ca("1:Name").value == "Beam"
    assert await served.get("1:Name") == "Beam"


async def test_bad_put_is_refused_with_the_reason_and_changes_nothing(served: Served) -> None:
    await served.publish()
    before = served.state.rois_for_next_batch()

    with pytest.raises(RemoteError, match=r"MinX: -5 is outside 0\.\.\d+"):
        await served.put("1:MinX", -5)
    assert served.ca("1:MinX").value == ROIS[0][0]
    assert served.state.rois_for_next_batch() == before
    assert await served.get("1:MinX") == ROIS[0][0]

    with pytest.raises(RemoteError, match="Name: must be 1..39 characters"):
        await served.put("1:Name", "x" * 50)
    assert served.ca("1:Name").value == "ROI1"

    total = served.ca("1:Total_RBV").value
    with pytest.raises(RemoteError, match="1:Total_RBV is read-only"):
        await served.put("1:Total_RBV", 5.0)
    assert served.ca("1:Total_RBV").value == total
    with pytest.raises(RemoteError, match="read-only"):
        await served.put("Status_RBV", 0)


async def test_reset_put_clears_the_maps(served: Served) -> None:
    served.state.start_acquisition(PATH, (H, W))
    _add(served.state, 0, _frames(3))
    await served.publish()
    assert np.isfinite(await served.get("1:Map")).sum() == 3

    await served.put("Reset", 1)
    assert served.ca("Reset").value == "Done"
    await served.publish()
    assert np.isnan(await served.get("1:Map")).all()
    assert np.isnan(await served.get("Frame:TSTotal")).all()


# -- real EPICS base programs, the server on the environment's test ports ----------


async def _program(name: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(epics_bin(name)),
        "-w",
        "5",
        *args,
        env=epics_run_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_pvget_pvput_and_caget_programs(prefix: str) -> None:
    config = _config(prefix)
    state = ServiceState(config)
    ioc = build_ioc(config, controller=state)
    mirror = PvaMirror(ioc, map_shape(config))
    frames = _frames(5, seed=7)
    state.start_acquisition(PATH, (H, W))
    _add(state, 0, frames)
    await ioc.publish(state.snapshot())
    await mirror.sync()  # before serve: the PVs open with these values

    tasks = [
        asyncio.create_task(mirror.serve(), name="pva"),
        asyncio.create_task(CaServer(ioc.pvdb, ["127.0.0.1"]).run(), name="ca"),
    ]
    try:
        await asyncio.wait_for(mirror.wait_serving(), 10)

        code, out = await _program("pvget", f"{prefix}1:Total_RBV")
        assert code == 0, out
        number = float(out.split()[-1])
        assert number == ioc.pvdb[f"{prefix}1:Total_RBV"].value
        x, y, w, h = ROIS[0]
        assert number == frames[-1, y : y + h, x : x + w].astype(np.float64).sum()

        code, out = await _program("pvget", f"{prefix}1:Map")
        assert code == 0, out
        assert "epics:nt/NTNDArray:1.0" in out
        assert re.findall(r"int size (\d+)", out) == [str(COLS), str(ROWS)]
        shown = re.search(r"double\[\]\s+\[([^\]]*)\]", out)
        assert shown is not None, out
        values = [float(v) for v in shown.group(1).split(",")]
        np.testing.assert_array_equal(values, _expected_map(frames, *ROIS[0]).ravel())
        assert math.isnan(values[-1])

        code, out = await _program("pvput", f"{prefix}1:MinX", "9")
        assert code == 0, out
        assert ioc.pvdb[f"{prefix}1:MinX"].value == 9
        code, out = await _program("caget", f"{prefix}1:MinX")
        assert code == 0, out
        assert out.split() == [f"{prefix}1:MinX", "9"]

        code, out = await _program("pvput", f"{prefix}1:SizeX", "0")
        assert code != 0
        assert "SizeX: 0 is outside 1.." in out
        assert ioc.pvdb[f"{prefix}1:SizeX"].value == ROIS[0][2]
    finally:
        for task in tasks:
            await _stop(task)
