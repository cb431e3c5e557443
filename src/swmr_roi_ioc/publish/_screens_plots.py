"""The hand-written content of the screens: maps, time series, live image.

Each function builds its widgets from ``top`` down and returns them, to be
appended to a display (which is then sized to fit them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from swmr_roi_ioc.config import IocConfig

from . import _screens_bob as bob
from ._screens_pvi import Form

MARGIN, GAP = bob.MARGIN, bob.GAP
#: inner width of a map panel; its image keeps the map's aspect ratio
MAP_W = 360
#: room an Image widget needs besides the picture: colour bar, axes
_BAR = 30 + 16
_AXES_W, _AXES_H = 48, 40
PLOT_W, PLOT_H = 600, 280
LIVE_W = 560


@dataclass(frozen=True)
class _Region:
    """A region of the screens: its PV prefix and how it is titled."""

    prefix: str
    title: str
    is_roi: bool


def regions(config: IocConfig) -> list[_Region]:
    """ROIs 1..N, then the whole frame."""
    p = config.prefix
    out = [
        _Region(f"{p}{n}:", f"ROI {n} \u00b7 {roi.name}", True)
        for n, roi in enumerate(config.rois, start=1)
    ]
    out.append(_Region(f"{p}Frame:", "Frame", False))
    return out


def _grid(count: int) -> int:
    """Columns for ``count`` panels: near-square, at most 4 wide."""
    return max(1, min(4, math.ceil(math.sqrt(count))))


def _picture_height(width: int, rows: int, cols: int, low: int = 60, high: int = 360) -> int:
    """Height that shows a rows x cols array ``width`` pixels wide without distortion,
    within [low, high] (a 1 x 2048 line is stretched to ``low``)."""
    return max(low, min(high, round(width * rows / cols)))


def map_panels(
    config: IocConfig, shape: tuple[int, int], dynamic: bool, top: int
) -> list[bob.Element]:
    """One group per map: ROI maps, the frame's Total map and its MaxMap.

    ``dynamic``: the map geometry is only known at run time; the images then
    follow MapSizeX_RBV/MapSizeY_RBV and hide their axes."""
    rows, cols = shape
    p = config.prefix
    axes = not dynamic
    image_h = _picture_height(MAP_W - _BAR - (_AXES_W if axes else 0), rows, cols)
    image_h += _AXES_H if axes else 8
    panels: list[tuple[str, str | None, str, str]] = []  # title, name pv, map, range prefix
    for region in regions(config):
        if region.is_roi:
            panels.append((region.title, f"{region.prefix}Name", f"{region.prefix}Map", "Map"))
        else:
            panels.append(("Frame \u00b7 Total", None, f"{region.prefix}Map", "Map"))
            panels.append(("Frame \u00b7 maximum pixel", None, f"{region.prefix}MaxMap", "MaxMap"))
    columns = _grid(len(panels))
    inner_h = 24 + image_h + 4 + 20
    outer_w, outer_h = MAP_W + 2 * bob.GROUP_INSET, inner_h + 2 * bob.GROUP_INSET
    scratch = bob.scratch()
    for index, (title, name_pv, map_pv, rng) in enumerate(panels):
        row, col = divmod(index, columns)
        x, y = MARGIN + col * (outer_w + GAP), top + row * (outer_h + GAP)
        box = bob.group(scratch, title, x, y, outer_w, outer_h)
        if name_pv is not None:
            bob.text_update(box, name_pv, 0, 0, MAP_W)
        else:
            what = "Total" if rng == "Map" else "largest pixel"
            text = f"{what} of each frame, placed by scan position"
            bob.label(box, text, 0, 0, MAP_W, 20, size=12, colour=bob.MUTED, align=1)
        spec = bob.ImageSpec(
            pv=map_pv,
            data_width=cols,
            data_height=rows,
            axes=axes,
            width_pv=f"{p}MapSizeX_RBV" if dynamic else None,
            height_pv=f"{p}MapSizeY_RBV" if dynamic else None,
        )
        bob.image(box, f"{title} map", spec, 0, 24, MAP_W, image_h)
        y_range = 24 + image_h + 4
        base = map_pv.rsplit(":", 1)[0] + ":"
        bob.label(box, "min", 0, y_range, 40, 20, size=12, colour=bob.MUTED, align=2)
        bob.text_update(box, f"{base}{rng}Min_RBV", 44, y_range, 130, precision=2)
        bob.label(box, "max", 186, y_range, 40, 20, size=12, colour=bob.MUTED, align=2)
        bob.text_update(box, f"{base}{rng}Max_RBV", 230, y_range, 130, precision=2)
    return list(scratch)


def series_plots(config: IocConfig, top: int) -> list[bob.Element]:
    """The Mean of every region in one plot, then one plot per region:
    Total and Net on the left axis, Min, Max and Mean on the right."""
    scratch = bob.scratch()
    x_title = "frame (oldest first)"
    every = [bob.Trace(r.title, f"{r.prefix}TSMeanValue") for r in regions(config)]
    plots = [("Mean of every region", every, ["mean per pixel"])]
    for region in regions(config):
        r = region.prefix
        traces = [
            bob.Trace("Total", f"{r}TSTotal"),
            bob.Trace("Net", f"{r}TSNet"),
            bob.Trace("Min", f"{r}TSMinValue", axis=1),
            bob.Trace("Max", f"{r}TSMaxValue", axis=1),
            bob.Trace("Mean", f"{r}TSMeanValue", axis=1),
        ]
        plots.append((region.title, traces, ["Total, Net", "Min, Max, Mean"]))
    for index, (title, traces, y_titles) in enumerate(plots):
        row, col = divmod(index, 2)
        x, y = MARGIN + col * (PLOT_W + GAP), top + row * (PLOT_H + GAP)
        bob.xyplot(
            scratch,
            title,
            traces,
            x,
            y,
            PLOT_W,
            PLOT_H,
            x_title=x_title,
            y_titles=y_titles,
            title=title,
        )
    return list(scratch)


def live_view(
    config: IocConfig, size: tuple[int, int], top: int, histogram: Form
) -> list[bob.Element]:
    """The binned live frame (left) and the histogram plot and form (right)."""
    p = config.prefix
    rows, cols = size
    scratch = bob.scratch()
    image_h = _picture_height(LIVE_W - _BAR, rows, cols, 120, 600) + 8
    inner_h = image_h + 4 + 20
    outer_w, outer_h = LIVE_W + 2 * bob.GROUP_INSET, inner_h + 2 * bob.GROUP_INSET
    box = bob.group(scratch, "Live image (binned)", MARGIN, top, outer_w, outer_h)
    spec = bob.ImageSpec(
        pv=f"{p}Image",
        data_width=cols,
        data_height=rows,
        colour_map="GRAY",
        axes=False,
        width_pv=f"{p}ImageSizeX_RBV",
        height_pv=f"{p}ImageSizeY_RBV",
        interpolation=2,
    )
    bob.image(box, "Image", spec, 0, 0, LIVE_W, image_h)
    y = image_h + 4
    bob.label(box, "columns", 0, y, 70, 20, size=12, colour=bob.MUTED, align=2)
    bob.text_update(box, f"{p}ImageSizeX_RBV", 74, y, 90)
    bob.label(box, "rows", 170, y, 50, 20, size=12, colour=bob.MUTED, align=2)
    bob.text_update(box, f"{p}ImageSizeY_RBV", 224, y, 90)
    bob.label(box, "frame", 320, y, 60, 20, size=12, colour=bob.MUTED, align=2)
    bob.text_update(box, f"{p}Frame:MaxSizeX_RBV", 384, y, 84)
    bob.text_update(box, f"{p}Frame:MaxSizeY_RBV", 476, y, 84)
    # the plot lines up with the group box drawn below it (half an inset in)
    x = MARGIN + outer_w + GAP
    inset = bob.GROUP_INSET // 2
    trace = bob.Trace("pixels", f"{p}Histogram_RBV", x_pv=f"{p}HistogramX_RBV", step=True)
    bob.xyplot(
        scratch,
        "Histogram",
        [trace],
        x + inset,
        top + inset,
        histogram.width - 2 * inset,
        PLOT_H,
        x_title="pixel value (bin centre)",
        y_titles=["pixels"],
        title="Histogram of the latest frame",
        legend=False,
    )
    histogram.place(scratch, x, top + inset + PLOT_H + GAP)
    return list(scratch)
