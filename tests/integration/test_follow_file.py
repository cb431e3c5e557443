"""Issue 'Core' acceptance: a real writer process, the IOC process, real clients."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from aioca import FORMAT_TIME, caget, caput

from tests.conftest import Process, swmr_roi_ioc
from tests.integration.helpers import (
    caget_program,
    message_of,
    read_frames,
    snake_map,
    status_of,
    truth,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROIS = [
    {"name": "ROI1", "x": 10, "y": 20, "width": 40, "height": 30},
    {
        "name": "ROI2",
        "x": 100,
        "y": 40,
        "width": 50,
        "height": 60,
        "background_width": 2,
    },
    {"name": "ROI3", "x": 200, "y": 100, "width": 60, "height": 60},
]
ROWS, COLS = 15, 20


def _start_ioc(processes: list[Process], config: Path) -> Process:
    ioc = Process(swmr_roi_ioc("--log-level", "WARNING", "run", str(config)))
    processes.append(ioc)
    return ioc


async def test_300_frame_snake_scan_uint16_at_200hz(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "scan.h5"
    config = write_config(
        tmp_path / "ioc.yaml",
        prefix=prefix,
        data_root=data,
        file="scan.h5",
        rois=ROIS,
        scan=(ROWS, COLS),
        timeout=1.0,
    )
    _start_ioc(processes, config)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)  # Waiting
    assert "Waiting" in await message_of(prefix)

    writer = Process(
        swmr_roi_ioc(
            "simulate",
            str(h5),
            "--frames",
            "300",
            "--rate",
            "200",
            "--shape",
            "240",
            "320",
            "--scan",
            str(ROWS),
            str(COLS),
            "--dtype",
            "uint16",
        )
    )
    processes.append(writer)
    # live: the IOC follows while the file grows
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 2, 30)
    assert writer.wait(timeout=60) == 0, writer.text
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)  # Finished

    frames = read_frames(h5)
    assert frames.shape == (300, 240, 320)
    assert int(await caget(f"{prefix}ArrayCounter_RBV")) == 300
    assert int(await caget(f"{prefix}FramesWritten_RBV")) == 300
    assert int(await caget(f"{prefix}UniqueId_RBV")) == 300
    assert await caget(f"{prefix}MapSizeX_RBV") == COLS
    assert await caget(f"{prefix}MapSizeY_RBV") == ROWS

    regions = [
        (
            f"{n + 1}:",
            truth(
                frames,
                r["x"],
                r["y"],
                r["width"],
                r["height"],
                r.get("background_width", 0),
            ),
        )
        for n, r in enumerate(ROIS)
    ]
    whole = frames.reshape(300, -1).astype(np.float64)
    regions.append(
        (
            "Frame:",
            {
                "total": whole.sum(axis=1),
                "net": whole.sum(axis=1),
                "min": whole.min(axis=1),
                "max": whole.max(axis=1),
                "mean": whole.mean(axis=1),
            },
        )
    )
    for sub, expected in regions:
        for pv, key in [
            ("TSTotal", "total"),
            ("TSNet", "net"),
            ("TSMinValue", "min"),
            ("TSMaxValue", "max"),
            ("TSMeanValue", "mean"),
        ]:
            series = np.asarray(await caget(f"{prefix}{sub}{pv}"))
            np.testing.assert_allclose(
                series[:300], expected[key], rtol=1e-12, err_msg=f"{sub}{pv}"
            )
            assert np.isnan(series[300:]).all()
        # integer frames: totals exact
        assert np.array_equal(
            np.asarray(await caget(f"{prefix}{sub}TSTotal"))[:300], expected["total"]
        )
        got_map = np.asarray(await caget(f"{prefix}{sub}Map")).reshape(ROWS, COLS)
        np.testing.assert_array_equal(got_map, snake_map(expected["total"], ROWS, COLS))
        assert await caget(f"{prefix}{sub}Total_RBV") == expected["total"][-1]
        assert await caget(f"{prefix}{sub}MaxValue_RBV") == expected["max"][-1]

    # the EPICS base caget program agrees
    out = caget_program("-t", "-f", "0", f"{prefix}1:Total_RBV", f"{prefix}ArrayCounter_RBV")
    total, counter = (float(v) for v in out.split())
    assert counter == 300
    assert total == regions[0][1]["total"][-1]
    path = caget_program("-t", "-S", f"{prefix}FilePath_RBV").strip()
    assert path == str(h5.resolve())


async def test_replaced_file_starts_over_and_roi_put_applies(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "a.h5"
    config = write_config(
        tmp_path / "ioc.yaml",
        prefix=prefix,
        data_root=data,
        file="a.h5",
        rois=ROIS[:1],
        scan=(4, 10),
        timeout=0.5,
    )
    _start_ioc(processes, config)
    first = Process(
        swmr_roi_ioc(
            "simulate",
            str(h5),
            "--frames",
            "40",
            "--rate",
            "0",
            "--scan",
            "4",
            "10",
            "--dtype",
            "uint8",
        )
    )
    processes.append(first)
    assert first.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    assert await caget(f"{prefix}ArrayCounter_RBV") == 40

    # a run-time ROI change; readbacks are clamped to the frame (256 x 320)
    await caput(f"{prefix}1:MinX", 300, wait=True)
    await caput(f"{prefix}1:SizeX", 100, wait=True)
    await wait_for(f"{prefix}1:SizeX_RBV", lambda v: v == 20, 10)
    assert await caget(f"{prefix}1:MinX_RBV") == 300
    # a bad put is refused and changes nothing
    with pytest.raises(Exception):  # noqa: B017 - aioca raises CANothing
        await caput(f"{prefix}1:SizeX", -4, wait=True)
    assert await caget(f"{prefix}1:SizeX") == 100

    # a new file at the same path (new inode): counters start over
    h5.unlink()
    second = Process(
        swmr_roi_ioc(
            "simulate",
            str(h5),
            "--frames",
            "25",
            "--rate",
            "0",
            "--scan",
            "4",
            "10",
            "--dtype",
            "uint8",
            "--seed",
            "7",
        )
    )
    processes.append(second)
    assert second.wait(60) == 0
    await wait_for(f"{prefix}ArrayCounter_RBV", lambda v: v == 25, 30)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    frames = read_frames(h5)
    # ROI 1: MinX 300 (SizeX 100 clamped to 20), MinY 20, SizeY 30
    expected = frames[:, 20:50, 300:320].astype(np.int64).sum(axis=(1, 2))
    series = np.asarray(await caget(f"{prefix}1:TSTotal"))
    np.testing.assert_array_equal(series[:25], expected)

    # Reset clears statistics, maps and time series
    await caput(f"{prefix}Reset", 1, wait=True)
    await wait_for(f"{prefix}1:Total_RBV", lambda v: v == 0, 10)
    assert np.isnan(np.asarray(await caget(f"{prefix}1:Map"))).all()


async def test_waits_for_file_and_refuses_paths_outside_data_root(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "secret.h5"
    (data / "link.h5").symlink_to(outside)
    config = write_config(
        tmp_path / "ioc.yaml",
        prefix=prefix,
        data_root=data,
        file="link.h5",
        rois=ROIS[:1],
    )
    _start_ioc(processes, config)
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 4, 30)  # Error
    assert "outside data_root" in await message_of(prefix)
    # each PV has its own alarm: Status MAJOR, stale statistics INVALID,
    # setpoints and counters untouched (caproto shares one alarm per group by default)
    await asyncio.sleep(0.5)  # a few publish cycles writing other PVs
    assert (await caget(f"{prefix}Status_RBV", format=FORMAT_TIME)).severity == 2
    assert (await caget(f"{prefix}1:Total_RBV", format=FORMAT_TIME)).severity == 3
    assert (await caget(f"{prefix}1:MinX", format=FORMAT_TIME)).severity == 0
    assert (await caget(f"{prefix}ArrayCounter_RBV", format=FORMAT_TIME)).severity == 0
    start = time.monotonic()
    while time.monotonic() - start < 1:
        assert await status_of(prefix) == "Error"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("compression", ["lz4", "bslz4", "blosc"])
async def test_compressed_frames_are_followed_exactly(
    tmp_path: Path, prefix: str, processes: list[Process], compression: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    h5 = data / "c.h5"
    config = write_config(
        tmp_path / "ioc.yaml", prefix=prefix, data_root=data, file="c.h5", rois=ROIS[:1],
        scan=(5, 6), timeout=0.5,
    )  # fmt: skip
    _start_ioc(processes, config)
    writer = Process(swmr_roi_ioc("simulate", str(h5), "--frames", "30", "--rate", "100",
                                  "--compression", compression, "--dtype", "uint16"))  # fmt: skip
    processes.append(writer)
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    assert await caget(f"{prefix}ArrayCounter_RBV") == 30
    frames = read_frames(h5)
    expected = frames[:, 20:50, 10:50].astype(np.int64).sum(axis=(1, 2))
    np.testing.assert_array_equal(np.asarray(await caget(f"{prefix}1:TSTotal"))[:30], expected)
