"""The demo: one command, a writer and the IOC; caget's numbers match the file."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pytest

from swmr_roi_ioc.config import load_config
from tests.conftest import Process, _free_port, swmr_roi_ioc
from tests.integration.helpers import caget_program

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]
ROOT = Path(__file__).parents[2]


def _frame_roi_sum(path: Path, index: int, x: int, y: int, w: int, h: int) -> int:
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        dset = f["/entry/data/data"]
        assert isinstance(dset, h5py.Dataset)
        dset.refresh()
        frame = dset[index]
    return int(frame[y : y + h, x : x + w].astype(np.int64).sum())


async def test_demo_counter_climbs_and_total_matches_file(
    tmp_path: Path, processes: list[Process]
) -> None:
    config = load_config(ROOT / "ioc" / "ioc.yaml")
    prefix = config.prefix
    roi = config.rois[0]
    web_port = _free_port()
    demo = Process(
        swmr_roi_ioc(
            "--log-level", "WARNING", "demo", "--dir", str(tmp_path), "--rate", "20",
            "--frames", "60", "--web-port", str(web_port),
        ),
    )  # fmt: skip
    processes.append(demo)

    counters: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(set(counters)) < 3:
        try:
            counters.append(int(caget_program("-t", f"{prefix}ArrayCounter_RBV").strip()))
        except AssertionError:
            pass  # not serving yet
        await asyncio.sleep(0.5)
    assert len(set(counters)) >= 3 and counters == sorted(counters), counters
    assert f"caget {prefix}ArrayCounter_RBV" in demo.text
    url = f"http://127.0.0.1:{web_port}/"
    assert f"live page {url}" in demo.text
    with urllib.request.urlopen(url, timeout=30) as page:  # served by the demo itself
        assert "/static/js/bokeh" in page.read().decode()

    # Total_RBV of ROI 1 is numpy's sum over ROI 1 of frame ArrayCounter - 1 of
    # the file followed. Read counter, total, file, counter; retry until no
    # frame landed between.
    for _ in range(100):
        out = caget_program(
            "-t", "-f", "0",
            f"{prefix}ArrayCounter_RBV", f"{prefix}1:Total_RBV", f"{prefix}ArrayCounter_RBV",
        )  # fmt: skip
        path = caget_program("-t", "-S", f"{prefix}FilePath_RBV").strip()
        again = caget_program("-t", f"{prefix}ArrayCounter_RBV").strip()
        before, total, after = (int(float(v)) for v in out.split())
        if before == after == int(again) and before > 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("ArrayCounter never stood still")
    h5 = Path(path)
    assert h5.parent == tmp_path.resolve()
    assert total == _frame_roi_sum(h5, before - 1, roi.x, roi.y, roi.width, roi.height)


async def test_demo_keeps_the_last_acquisitions_and_says_how_to_look(
    tmp_path: Path, processes: list[Process]
) -> None:
    """After 5 acquisitions only the last 3 are on disk (raw + NeXus); progress
    is logged at INFO; caget, camonitor and pvget lines are printed."""
    demo = Process(
        swmr_roi_ioc(
            "demo", "--dir", str(tmp_path), "--rate", "50", "--frames", "12",
            "--pause", "0.5", "--keep", "3", "--web-port", str(_free_port()),
        ),
    )  # fmt: skip
    processes.append(demo)
    deadline = time.monotonic() + 180
    while "demo: acquisition 5 written" not in demo.text:
        assert time.monotonic() < deadline, demo.text[-3000:]
        assert demo.proc.poll() is None, demo.text[-3000:]
        await asyncio.sleep(0.5)
    # the plugin numbers files from 000: the 5th acquisition wrote demo_004.h5
    raw = sorted(p.name for p in tmp_path.glob("demo_*.h5"))
    assert raw == ["demo_002.h5", "demo_003.h5", "demo_004.h5"], raw
    nexus = sorted(p.name for p in tmp_path.glob("*_roi.nxs"))
    # (the newest NeXus file may still be on its way)
    assert nexus[:2] == ["demo_002_roi.nxs", "demo_003_roi.nxs"], nexus
    assert set(nexus) <= {"demo_002_roi.nxs", "demo_003_roi.nxs", "demo_004_roi.nxs"}, nexus
    one = (tmp_path / "demo_004.h5").stat().st_size
    used = sum(p.stat().st_size for p in tmp_path.iterdir() if p.is_file())
    assert used < 4 * one + 2**20, (used, one)  # 3 acquisitions and their NeXus files
    progress = [line for line in demo.text.splitlines() if "demo: acquisition" in line]
    assert len(progress) >= 5 and all(" INFO " in line for line in progress), progress
    assert "WARNING swmr_roi_ioc" not in demo.text, demo.text[-3000:]
    prefix = load_config(ROOT / "ioc" / "ioc.yaml").prefix
    for tool in ("caget", "camonitor", "pvget"):
        assert f"{tool} {prefix}" in demo.text, demo.text[:2000]


@pytest.mark.timeout(240)
def test_demo_bluesky_follows_the_run_engines_scans(
    tmp_path: Path, processes: list[Process]
) -> None:
    prefix = load_config(ROOT / "ioc" / "ioc.yaml").prefix
    demo = Process(
        swmr_roi_ioc(
            "--log-level", "WARNING", "demo", "--bluesky", "--dir", str(tmp_path),
            "--rate", "50", "--frames", "100",
        ),
    )  # fmt: skip
    processes.append(demo)
    deadline = time.monotonic() + 180
    state: list[str] = []
    while time.monotonic() < deadline:
        try:
            state = caget_program(
                "-t", "-S", f"{prefix}Status_RBV", f"{prefix}PlanName_RBV",
                f"{prefix}ArrayCounter_RBV", f"{prefix}MapSizeX_RBV", f"{prefix}MapSizeY_RBV",
            ).split()  # fmt: skip
        except AssertionError:
            pass  # not serving yet
        if state[:3] == ["Finished", "demo_snake_fly", "80"]:
            break
        time.sleep(0.5)
    # the default config's 40 columns, rows from --frames (2 x 40): the map's
    # shape comes from the run's scan_spec
    assert state == ["Finished", "demo_snake_fly", "80", "40", "2"], (state, demo.text[-2000:])
    path = Path(caget_program("-t", "-S", f"{prefix}FilePath_RBV").strip())
    assert path.parent == tmp_path.resolve() and path.name.startswith("demo")
    assert "RunUid_RBV" in demo.text
