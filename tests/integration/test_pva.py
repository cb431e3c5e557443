"""PVAccess: every CA PV over PVA too, read by p4p and by EPICS base pvget/pvput,
from a real IOC process following a real file (ground truth: numpy on the file)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aioca import DBR_CHAR_STR, FORMAT_TIME, caget
from p4p.client.asyncio import Context, RemoteError

from tests.conftest import Process, epics_bin, epics_run_env, swmr_roi_ioc
from tests.integration.helpers import read_frames, wait_for, write_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROWS, COLS = 3, 4
H, W = 16, 20
FRAMES = 6
ROIS = [(1, 2, 3, 4), (5, 6, 7, 8)]  # x, y, width, height


@dataclass
class Served:
    prefix: str
    h5: Path
    ctx: Context

    async def get(self, suffix: str, **kw: Any) -> Any:
        return await self.ctx.get(self.prefix + suffix, **kw)

    async def put(self, suffix: str, value: Any) -> None:
        await self.ctx.put(self.prefix + suffix, value)

    async def ca(self, suffix: str, **kw: Any) -> Any:
        return await caget(self.prefix + suffix, timeout=5.0, **kw)

    async def pva_until(self, suffix: str, predicate: Any, timeout: float = 10.0) -> Any:
        value: Any = None
        for _ in range(int(timeout / 0.1)):
            value = await self.get(suffix)
            if predicate(value):
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"{suffix} never satisfied the condition; last {value!r}")


@pytest.fixture
async def served(tmp_path: Path, prefix: str, processes: list[Process]) -> AsyncIterator[Served]:
    """The IOC process (pva: true) after following a 6-frame file of a 3 x 4 snake scan."""
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    writer = Process(swmr_roi_ioc(
        "simulate", str(h5), "--frames", str(FRAMES), "--rate", "100", "--shape", str(H), str(W),
        "--scan", str(ROWS), str(COLS), "--dtype", "uint16",
    ))  # fmt: skip
    processes.append(writer)
    assert writer.wait(timeout=60) == 0, writer.text
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="scan.h5",
        rois=[{"name": f"ROI{n + 1}", "x": x, "y": y, "width": w, "height": h}
              for n, (x, y, w, h) in enumerate(ROIS)],
        scan=(ROWS, COLS), timeout=0.5, ts_len=16,
    )  # fmt: skip
    config.write_text(config.read_text().replace("pva: false", "pva: true"))
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 60)  # Finished
    with Context("pva") as ctx:
        served = Served(prefix, h5, ctx)
        await served.pva_until("Status_RBV", lambda v: int(v) == 3)
        yield served


def _expected_map(frames: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """Totals placed by snake scan position, NaN where no frame landed (plain numpy)."""
    totals = frames[:, y : y + h, x : x + w].astype(np.float64).sum(axis=(1, 2))
    grid = np.full((ROWS, COLS), np.nan)
    for i, total in enumerate(totals):
        row, col = divmod(i, COLS)
        grid[row, col if row % 2 == 0 else COLS - 1 - col] = total
    return grid


async def test_values_alarms_and_shapes_equal_the_ca_side(served: Served) -> None:
    frames = read_frames(served.h5)
    assert frames.shape == (FRAMES, H, W)
    x, y, w, h = ROIS[0]
    totals = frames[:, y : y + h, x : x + w].astype(np.float64).sum(axis=(1, 2))
    for suffix in ("1:Total_RBV", "1:MeanValue_RBV", "Frame:MaxValue_RBV", "ArrayCounter_RBV"):
        value = await served.get(suffix)
        ca = await served.ca(suffix, format=FORMAT_TIME)
        assert value == ca, suffix
        assert value.severity == ca.severity, suffix
        assert value.timestamp == pytest.approx(ca.timestamp, abs=1e-6), suffix
    assert await served.get("1:Total_RBV") == totals[-1]
    assert await served.get("ArrayCounter_RBV") == FRAMES
    assert await served.get("UniqueId_RBV") == FRAMES

    rate: Any = await served.get("ArrayRate_RBV", request="field()")
    assert rate.raw["display.units"] == "Hz"
    assert rate.raw["display.precision"] == 1

    status = await served.get("Status_RBV")
    assert (int(status), status.choice) == (3, "Finished")
    assert list(status.raw["value.choices"]) == [
        "Idle", "Waiting", "Following", "Finished", "Error"
    ]  # fmt: skip
    use = await served.get("1:Use")
    assert (use.choice, list(use.raw["value.choices"])) == ("Yes", ["No", "Yes"])
    message = str(await served.ca("StatusMessage_RBV", datatype=DBR_CHAR_STR))
    assert await served.get("StatusMessage_RBV") == message
    assert await served.get("FilePath_RBV") == str(served.h5)
    assert await served.get("1:Name") == "ROI1"
    assert await served.get("Frame:Name") == "Frame"
    assert await served.get("PutError_RBV") == ""

    series = await served.get("1:TSTotal")
    assert series.shape == (16,)
    np.testing.assert_array_equal(series[:FRAMES], totals)
    assert np.isnan(series[FRAMES:]).all()

    for n, roi in ((1, ROIS[0]), (2, ROIS[1])):
        image = await served.get(f"{n}:Map")
        assert image.raw.getID() == "epics:nt/NTNDArray:1.0"
        union = image.raw.type()["value"]  # the value union, as NDPluginPva's
        assert union[0] == "U" and ("doubleValue", "ad") in union[2]
        assert image.dtype == np.float64
        assert [d["size"] for d in image.raw["dimension"]] == [COLS, ROWS]  # x first
        assert image.shape == (ROWS, COLS)
        assert image.raw["uniqueId"] > 0
        np.testing.assert_array_equal(image, _expected_map(frames, *roi))  # NaN == NaN
    whole = await served.get("Frame:Map")
    assert whole.shape == (ROWS, COLS)
    assert whole[0, 0] == frames[0].astype(np.float64).sum()
    picture = await served.get("Image")
    assert picture.shape == (H, W)  # the latest frame, smaller than image_max_size
    np.testing.assert_array_equal(picture, frames[-1].astype(np.float64))


async def test_only_changes_are_posted(served: Served) -> None:
    updates: asyncio.Queue[Any] = asyncio.Queue()
    sub = served.ctx.monitor(served.prefix + "1:Map", updates.put)
    try:
        first = await asyncio.wait_for(updates.get(), 5)
        assert np.isfinite(first).sum() == FRAMES
        await asyncio.sleep(1.0)  # the IOC keeps publishing its clock: no map update
        assert updates.empty()
        await served.put("Reset", 1)
        second = await asyncio.wait_for(updates.get(), 5)
        assert np.isnan(second).all()
    finally:
        sub.close()


async def test_setpoint_put_goes_to_the_state_and_to_ca(served: Served) -> None:
    await served.put("1:MinX", 7)
    assert await served.ca("1:MinX") == 7
    assert await served.get("1:MinX") == 7
    await wait_for(f"{served.prefix}1:MinX_RBV", lambda v: v == 7, 10)
    assert await served.get("1:MinX_RBV") == 7

    await served.put("1:Use", 0)
    assert int(await served.ca("1:Use")) == 0
    await wait_for(f"{served.prefix}1:Use_RBV", lambda v: int(v) == 0, 10)
    await served.put("1:Use", 1)
    await served.put("1:Name", "Beam")
    assert await served.ca("1:Name") == "Beam"
    assert await served.get("1:Name") == "Beam"


async def test_bad_put_is_refused_with_the_reason_and_changes_nothing(served: Served) -> None:
    with pytest.raises(RemoteError, match=r"MinX: -5 is outside 0\.\.\d+"):
        await served.put("1:MinX", -5)
    assert await served.ca("1:MinX") == ROIS[0][0]
    assert await served.get("1:MinX") == ROIS[0][0]
    assert "MinX: -5 is outside" in await served.get("PutError_RBV")
    reason = str(await served.ca("PutError_RBV", datatype=DBR_CHAR_STR))
    assert "MinX: -5 is outside" in reason

    with pytest.raises(RemoteError, match="Name: must be 1..39 characters"):
        await served.put("1:Name", "x" * 50)
    assert await served.ca("1:Name") == "ROI1"

    with pytest.raises(RemoteError, match=r"HistMax \(-1\) must be greater than HistMin"):
        await served.put("HistMax", -1.0)
    assert await served.ca("HistMax") == 256

    total = await served.ca("1:Total_RBV")
    with pytest.raises(RemoteError, match="1:Total_RBV is read-only"):
        await served.put("1:Total_RBV", 5.0)
    assert await served.ca("1:Total_RBV") == total
    with pytest.raises(RemoteError, match="read-only"):
        await served.put("Status_RBV", 0)


async def test_reset_put_clears_the_maps(served: Served) -> None:
    assert np.isfinite(await served.get("1:Map")).sum() == FRAMES
    await served.put("Reset", 1)
    assert await served.get("Reset") == 0
    assert int(await served.ca("Reset")) == 0
    await served.pva_until("1:Map", lambda v: np.isnan(v).all())
    await served.pva_until("Frame:TSTotal", lambda v: np.isnan(v).all())


# -- real EPICS base programs ----------------------------------------------------


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


async def test_pvget_pvput_and_caget_programs(served: Served) -> None:
    prefix = served.prefix
    frames = read_frames(served.h5)
    code, out = await _program("pvget", f"{prefix}1:Total_RBV")
    assert code == 0, out
    number = float(out.split()[-1])
    assert number == await served.ca("1:Total_RBV")
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
    code, out = await _program("caget", f"{prefix}1:MinX")
    assert code == 0, out
    assert out.split() == [f"{prefix}1:MinX", "9"]

    code, out = await _program("pvput", f"{prefix}1:SizeX", "0")
    assert code != 0
    assert "SizeX: 0 is outside 1.." in out
    assert await served.ca("1:SizeX") == ROIS[0][2]
