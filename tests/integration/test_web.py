"""The live page in a real browser: chromium (Playwright) on the IOC process
following a 20 x 30 snake scan written by another process. What the screen
shows is compared with numpy's ground truth from the file; edits made by
dragging are read back with EPICS base's caget."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from aioca import caget

from tests.conftest import Process, _free_port, swmr_roi_ioc
from tests.integration.helpers import caget_program, read_frames, snake_map, wait_for
from tests.integration.helpers_web import (
    Browser,
    browser,
    cells_centres,
    mapper_index,
    near_colour,
    palette_index,
    pixels_at,
    snake_order,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aioca_cleanup")]

ROWS, COLS = 20, 30
SHAPE = (240, 320)
ROI1 = (10, 20, 40, 30)  # x, y, w, h
ROI2 = (150, 100, 60, 60)
MAP_BACKGROUND = np.array([0xEE, 0xEE, 0xEE])


def _config(path: Path, prefix: str, data: Path, port: int, *, edit: bool, hosts: str = "[]"):
    path.write_text(
        f"""\
ioc_name: test-ioc
prefix: "{prefix}"
data_root: {data}
source: {{file: scan.h5, timeout: 1.0}}
scan: {{shape: [{ROWS}, {COLS}], snake: true}}
rois:
  - {{name: ROI1, x: {ROI1[0]}, y: {ROI1[1]}, width: {ROI1[2]}, height: {ROI1[3]}}}
  - {{name: ROI2, x: {ROI2[0]}, y: {ROI2[1]}, width: {ROI2[2]}, height: {ROI2[3]}}}
publish:
  rate_hz: 10
  histogram: {{bins: 64, min: 0, max: 2048}}
  image_max_size: 100
web: {{enabled: true, host: 127.0.0.1, port: {port}, allow_edit: {str(edit).lower()}}}
access: {{write_hosts: {hosts}}}
pva: false
"""
    )
    return path


def _writer(h5: Path, rate: float) -> Process:
    return Process(
        swmr_roi_ioc(
            "simulate", str(h5), "--frames", str(ROWS * COLS), "--rate", str(rate),
            "--shape", str(SHAPE[0]), str(SHAPE[1]), "--scan", str(ROWS), str(COLS),
            "--dtype", "uint16",
        )
    )  # fmt: skip


async def _start_ioc(tmp_path: Path, prefix: str, processes: list[Process], **kw: object):
    data = tmp_path / "data"
    data.mkdir()
    port = _free_port()
    config = _config(tmp_path / "ioc.yaml", prefix, data, port, **kw)  # type: ignore[arg-type]
    processes.append(Process(swmr_roi_ioc("--log-level", "INFO", "run", str(config))))
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 1, 30)
    return data / "scan.h5", f"http://127.0.0.1:{port}/"


def _totals(frames: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    return frames[:, y : y + h, x : x + w].astype(np.int64).sum(axis=(1, 2)).astype(float)


def _coloured(shot: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Which map cells show a colour (not the plot's background through NaN)."""
    rgb = pixels_at(shot, centres)
    return np.abs(rgb - MAP_BACKGROUND).sum(axis=1) > 6


def _is_red(p: np.ndarray) -> bool:
    return p[0] > 180 and p[1] < 110 and p[2] < 110


def _is_green(p: np.ndarray) -> bool:
    return p[1] > 150 and p[0] < 120 and p[2] < 120


async def _rbv(prefix: str, name: str) -> int:
    return int(float(caget_program("-t", f"{prefix}1:{name}_RBV").strip()))


async def _roi_drawn_at(web: Browser, x: int, y: int, timeout: float = 20) -> None:
    """The page's ROI 1 rectangle stands at (x, y)."""
    deadline = time.monotonic() + timeout
    while (await web.model("roi-1", "left"), await web.model("roi-1", "top")) != (x, y):
        assert time.monotonic() < deadline, "ROI 1's rectangle never showed its readback"
        await asyncio.sleep(0.2)


async def test_page_follows_the_snake_scan_and_refuses_drags_without_allow_edit(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    h5, url = await _start_ioc(tmp_path, prefix, processes, edit=False)
    async with browser() as web:
        await web.open(url)
        order = snake_order(ROWS, COLS)
        roi_cells = await web.to_page("map-ROI1", cells_centres(ROWS, COLS))
        frame_cells = await web.to_page("map-Frame", cells_centres(ROWS, COLS))
        grid_index = {cell: i for i, cell in enumerate(order)}
        position = np.array([grid_index[(r, c)] for r in range(ROWS) for c in range(COLS)])

        maps_bottom = int(max(roi_cells[:, 1].max(), frame_cells[:, 1].max())) + 10
        writer = _writer(h5, 12)  # slow enough for several screenshots on a busy machine
        processes.append(writer)
        landed: list[int] = []
        while writer.proc.poll() is None:
            shot = await web.screenshot(height=maps_bottom)
            for cells in (roi_cells, frame_cells):
                coloured = _coloured(shot, cells)
                m = int(coloured.sum())
                # exactly the first m frames of the snake are coloured
                np.testing.assert_array_equal(coloured, position < m)
            landed.append(m)
            await asyncio.sleep(0.2)
        assert writer.wait(30) == 0
        partial = [m for m in landed if 0 < m < ROWS * COLS]
        assert len(set(partial)) >= 4, landed  # seen growing
        assert landed == sorted(landed), landed
        # some screenshot caught an odd (backwards) row half done
        assert any((m // COLS) % 2 == 1 and m % COLS for m in partial), landed
        await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)

        frames = read_frames(h5)
        truth = {
            "ROI1": snake_map(_totals(frames, *ROI1), ROWS, COLS).ravel(),
            "Frame": snake_map(
                frames.reshape(len(frames), -1).astype(np.int64).sum(axis=1).astype(float),
                ROWS, COLS,
            ).ravel(),
        }  # fmt: skip
        deadline = time.monotonic() + 15
        while True:  # the last frames reach the page within a publish period or two
            shot = await web.screenshot(tmp_path / "finished.png")
            if _coloured(shot, roi_cells).all() and _coloured(shot, frame_cells).all():
                break
            assert time.monotonic() < deadline, "the maps never filled"
            await asyncio.sleep(0.3)
        for name, cells in (("ROI1", roi_cells), ("Frame", frame_cells)):
            values = truth[name]
            shown = palette_index(pixels_at(shot, cells))
            expected = mapper_index(values, values.min(), values.max())
            # each cell's colour is the one its numpy value maps to (brighter = larger)
            assert np.abs(shown - expected).max() <= 1, name
            assert np.corrcoef(shown, values)[0, 1] > 0.99, name

        # the image shows ROI 1 (red) and ROI 2 (green) where they are
        x, y, w, h = ROI1
        edges1 = await web.to_page("image", [(x, y + h / 2), (x + w, y + h / 2), (x + w / 2, y)])
        assert all(near_colour(shot, p, _is_red) for p in edges1)
        x2, y2, w2, h2 = ROI2
        edges2 = await web.to_page("image", [(x2, y2 + h2 / 2), (x2 + w2 / 2, y2 + h2)])
        assert all(near_colour(shot, p, _is_green) for p in edges2)
        inside = await web.to_page("image", [(x + 3 * w / 4, y + h / 4)])
        assert not near_colour(shot, inside[0], _is_red, radius=1)

        # no request left 127.0.0.1 (scripts from the IOC itself, no CDN)
        assert web.requests and web.hosts() == {"127.0.0.1"}, web.requests
        assert any("bokeh" in u and u.endswith(".js") or ".js?" in u for u in web.requests)

        # allow_edit false: dragging ROI 1 changes nothing
        start, end = await web.to_page("image", [(x + w / 2, y + h / 2), (x + w / 2 + 100, y + h)])
        await web.drag(start, end)
        await asyncio.sleep(2.0)
        assert await _rbv(prefix, "MinX") == x and await _rbv(prefix, "MinY") == y
        assert await web.model("roi-1", "left") == x


async def test_dragging_roi1_moves_it_and_recomputes_its_map(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    h5, url = await _start_ioc(tmp_path, prefix, processes, edit=True)
    writer = _writer(h5, 200)
    processes.append(writer)
    assert writer.wait(60) == 0
    await wait_for(f"{prefix}Status_RBV", lambda v: int(v) == 3, 30)
    frames = read_frames(h5)
    x, y, w, h = ROI1
    async with browser() as web:
        await web.open(url)
        await _roi_drawn_at(web, x, y)
        centre = (x + w / 2, y + h / 2)
        start, end = await web.to_page("image", [centre, (centre[0] + 100, centre[1] + 12)])
        await web.drag(start, end)

        deadline = time.monotonic() + 20
        while (new_x := await _rbv(prefix, "MinX")) == x:
            assert time.monotonic() < deadline, "P:1:MinX_RBV never moved"
            await asyncio.sleep(0.2)
        new_y = await _rbv(prefix, "MinY")
        assert abs(new_x - (x + 100)) <= 2 and abs(new_y - (y + 12)) <= 2, (new_x, new_y)
        assert (await _rbv(prefix, "SizeX"), await _rbv(prefix, "SizeY")) == (w, h)
        await wait_for(f"{prefix}RecomputeProgress_RBV", lambda v: v == 100, 20)
        moved = snake_map(_totals(frames, new_x, new_y, w, h), ROWS, COLS).ravel()
        await wait_for(
            f"{prefix}1:Map", lambda v: np.array_equal(np.asarray(v)[: ROWS * COLS], moved), 10
        )
        assert "MinX" in await web.text("edit-message")
        await _roi_drawn_at(web, new_x, new_y)  # the rectangle shows the readback
        shown = np.asarray(await caget(f"{prefix}1:Map"))[: ROWS * COLS]
        np.testing.assert_array_equal(shown, moved)


async def test_a_refused_drag_says_why_on_the_page(
    tmp_path: Path, prefix: str, processes: list[Process]
) -> None:
    """access.write_hosts names another host: the browser's edit is refused
    like a CA put from 127.0.0.1 would be, and the page says so."""
    _, url = await _start_ioc(tmp_path, prefix, processes, edit=True, hosts="[ws-elsewhere]")
    x, y, w, h = ROI1
    async with browser() as web:
        await web.open(url)
        await _roi_drawn_at(web, x, y)
        start, end = await web.to_page("image", [(x + w / 2, y + h / 2), (x + w / 2 + 60, y + h)])
        await web.drag(start, end)
        deadline = time.monotonic() + 10
        while "Refused" not in (message := await web.text("edit-message")):
            assert time.monotonic() < deadline, f"no refusal shown: {message!r}"
            await asyncio.sleep(0.2)
        assert "write access denied" in message and "127.0.0.1" in message, message
        await _roi_drawn_at(web, x, y)  # put back where the ROI is
        assert await _rbv(prefix, "MinX") == x
