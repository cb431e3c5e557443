"""A real browser on the live page: Playwright driving Debian's chromium.

Screen positions come from the page's own Bokeh views (the plot frame's
scales), so the tests sample and drag exactly where a data point is drawn.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from bokeh.palettes import Viridis256
from PIL import Image
from playwright.async_api import Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--force-color-profile=srgb",
]

#: data coordinates (x, y) of a named figure -> page pixels
_TO_PAGE = """([name, points]) => {
  const view = Bokeh.index.query_one((v) => v.model.name === name);
  const box = view.canvas_view.el.getBoundingClientRect();
  const {x_scale, y_scale} = view.frame;
  return points.map(([x, y]) => [box.left + x_scale.compute(x), box.top + y_scale.compute(y)]);
}"""
_READY = """() => window.Bokeh !== undefined && Bokeh.index !== undefined
  && Bokeh.index.query_one((v) => v.model.name === 'image') != null
  && Bokeh.documents[0].get_model_by_name('status').text.includes('Status')"""
_MODEL = """([name, attr]) => Bokeh.documents[0].get_model_by_name(name)[attr]"""


@dataclass
class Browser:
    page: Page
    #: every URL the page requested (documents, scripts, websockets, ...)
    requests: list[str] = field(default_factory=list)

    async def open(self, url: str) -> None:
        await self.page.goto(url)
        await self.page.wait_for_function(_READY, timeout=30_000)

    async def to_page(self, figure: str, points: list[tuple[float, float]]) -> np.ndarray:
        return np.asarray(await self.page.evaluate(_TO_PAGE, [figure, points]))

    async def model(self, name: str, attr: str) -> Any:
        return await self.page.evaluate(_MODEL, [name, attr])

    async def screenshot(
        self, path: Path | None = None, *, height: int | None = None
    ) -> np.ndarray:
        """The page (its top ``height`` pixels) as an RGB array (rows, cols, 3),
        1 pixel per CSS pixel."""
        clip = None if height is None else {"x": 0, "y": 0, "width": 1400, "height": height}
        png = await self.page.screenshot(path=path, clip=clip)  # type: ignore[arg-type]
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)

    async def drag(self, start: np.ndarray, end: np.ndarray) -> None:
        mouse = self.page.mouse
        await mouse.move(float(start[0]), float(start[1]))
        await mouse.down()
        await mouse.move(float(end[0]), float(end[1]), steps=12)
        await mouse.up()

    async def text(self, name: str) -> str:
        return str(await self.model(name, "text"))

    def hosts(self) -> set[str]:
        return {urlsplit(url).hostname or "" for url in self.requests}


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    """Chromium (the Debian package, no download), one page, every request recorded."""
    assert CHROMIUM.exists(), "the tests need Debian's chromium (apt-get install chromium)"
    async with async_playwright() as pw:
        chrome = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = await chrome.new_context(
                viewport={"width": 1400, "height": 1000}, device_scale_factor=1
            )
            page = await context.new_page()
            seen = Browser(page)
            page.on("request", lambda request: seen.requests.append(request.url))
            page.on("websocket", lambda ws: seen.requests.append(ws.url))
            yield seen
        finally:
            await chrome.close()


_VIRIDIS = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in Viridis256])


def palette_index(rgb: np.ndarray) -> np.ndarray:
    """Index into Viridis256 of each pixel (nearest entry), shape (..., 3) -> (...)."""
    flat = rgb.reshape(-1, 3)
    dist = ((flat[:, None, :] - _VIRIDIS[None, :, :]) ** 2).sum(axis=2)
    return dist.argmin(axis=1).reshape(rgb.shape[:-1])


def mapper_index(values: np.ndarray, low: float, high: float, n: int = 256) -> np.ndarray:
    """Bokeh's LinearColorMapper: which of n palette entries a value gets."""
    index = np.floor((values - low) / (high - low) * n).astype(int)
    return np.clip(index, 0, n - 1)


def cells_centres(rows: int, cols: int) -> list[tuple[float, float]]:
    """Data coordinates (x, y) of every map cell's centre, row-major."""
    return [(c + 0.5, r + 0.5) for r in range(rows) for c in range(cols)]


def snake_order(rows: int, cols: int, snake: bool = True) -> list[tuple[int, int]]:
    """(row, col) of frames 0, 1, 2, ... in acquisition order."""
    out = []
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        out.append((r, cols - 1 - c if snake and r % 2 else c))
    return out


def pixels_at(shot: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The screenshot's RGB at page points (x, y), shape (n, 3)."""
    xs = np.floor(points[:, 0]).astype(int)
    ys = np.floor(points[:, 1]).astype(int)
    return shot[ys, xs]


def near_colour(shot: np.ndarray, point: np.ndarray, predicate: Any, radius: int = 3) -> bool:
    """Some pixel within ``radius`` of ``point`` satisfies ``predicate(rgb)``."""
    x, y = int(point[0]), int(point[1])
    patch = shot[y - radius : y + radius + 1, x - radius : x + radius + 1].reshape(-1, 3)
    return any(predicate(p) for p in patch)
