"""One browser's live page: Bokeh models filled from :class:`PageData`.

The maps (ROIs and the whole frame), the latest binned image with the ROI
rectangles over it, the histogram, and a status strip. With editing allowed,
the rectangles can be moved and resized (Bokeh's editable ``BoxAnnotation``);
when a drag has been still for :data:`SETTLE_MS`, the new geometry goes
through the put path exactly as ``caput P:n:MinX ...`` would.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from bokeh.document import Document
from bokeh.layouts import column, row
from bokeh.models import (
    BoxAnnotation,
    Button,
    ColorBar,
    ColumnDataSource,
    Div,
    Label,
    LinearColorMapper,
    Range1d,
)
from bokeh.palettes import Greys256, Viridis256
from bokeh.plotting import figure

from swmr_roi_ioc.publish import GEOMETRY_PVS, PutRefusedError, Severity

from ._feed import ImageView, MapView, PageData, PutPath, RoiBox

log = logging.getLogger(__name__)

#: A drag is applied once the rectangle has been still this long (ms).
SETTLE_MS = 400
#: Map cells where nothing has landed show the plot's background through.
MAP_BACKGROUND = "#eeeeee"
TRANSPARENT = (0, 0, 0, 0.0)
#: Outline colours of ROI 1, 2, ... on the image (cycled).
ROI_COLOURS = ["#ff3030", "#30d030", "#3090ff", "#ffb000", "#ff40ff", "#00d0d0"]
_SEVERITY_COLOUR = {
    Severity.NO_ALARM: "#1a7f37",
    Severity.MINOR: "#b08800",
    Severity.MAJOR: "#cf222e",
    Severity.INVALID: "#8250df",
}
MAP_WIDTH = 300
IMAGE_WIDTH = 520
#: the setpoints a dragged box writes (the PV table's, but BgdWidth): (suffix, field)
_GEOMETRY = tuple((s, f) for s, (f, _low) in GEOMETRY_PVS.items() if f != "background_width")


def _frame_height(width: int, rows: int, cols: int, low: int, high: int) -> int:
    return int(min(high, max(low, round(width * rows / max(cols, 1)))))


def _colour_bar(mapper: LinearColorMapper) -> ColorBar:
    """Below the plot: its labels, whatever their width, never move the plots."""
    return ColorBar(color_mapper=mapper, orientation="horizontal", height=8, padding=4)


def _fmt(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.5g}"


class _MapPlot:
    """One map: an image glyph over a plain background, its colour bar."""

    def __init__(self, name: str, rows: int, cols: int) -> None:
        self.name = name
        self.shape = (rows, cols)
        self.mapper = LinearColorMapper(palette=Viridis256, nan_color=TRANSPARENT, low=0, high=1)
        self.fig: Any = figure(
            name=f"map-{name}",
            title=name,
            frame_width=MAP_WIDTH,
            frame_height=_frame_height(MAP_WIDTH, rows, cols, 120, 360),
            x_range=Range1d(start=0, end=cols),
            y_range=Range1d(start=rows, end=0),  # row 0 at the top, as the scan starts
            tools="hover",
            tooltips=[("row", "$y{0}"), ("col", "$x{0}"), ("total", "@image")],
            toolbar_location=None,
            background_fill_color=MAP_BACKGROUND,
        )
        self.fig.xaxis.axis_label = "column"
        self.fig.yaxis.axis_label = "row"
        self.fig.grid.visible = False
        self.source = ColumnDataSource(
            {"image": [np.full((rows, cols), np.nan)], "dw": [cols], "dh": [rows]}
        )
        self.fig.image(
            image="image", x=0, y=0, dw="dw", dh="dh", color_mapper=self.mapper, source=self.source
        )
        self.fig.add_layout(_colour_bar(self.mapper), "below")

    def show(self, view: MapView) -> None:
        rows, cols = view.grid.shape
        if (rows, cols) != self.shape:
            self.shape = (rows, cols)
            self.fig.x_range.update(start=0, end=cols)
            self.fig.y_range.update(start=rows, end=0)
            self.fig.frame_height = _frame_height(MAP_WIDTH, rows, cols, 120, 360)
        self.source.data = {"image": [view.grid], "dw": [cols], "dh": [rows]}
        if math.isfinite(view.low):
            high = view.high if view.high > view.low else view.low + 1.0
            self.mapper.update(low=view.low, high=high)
        self.fig.title.text = f"{view.name}   {_fmt(view.low)} … {_fmt(view.high)}"


class LivePage:
    """The models of one session's document and how they follow the data."""

    def __init__(
        self,
        doc: Document,
        *,
        title: str,
        roi_names: list[str],
        map_shape: tuple[int, int],
        put: PutPath | None,
        client_host: str,
        latest: Callable[[], PageData | None],
        period_ms: int,
    ) -> None:
        self._doc = doc
        self._put = put
        self._host = client_host
        self._latest = latest
        self._shown: PageData | None = None
        self._maps_generation = -1
        self._image_generation = -1
        self._frame_shape = (0, 0)
        self._readbacks: dict[int, RoiBox] = {}
        self._timers: dict[int, Any] = {}
        self._updating = False
        self._status = Div(name="status", text="Connecting…", width=1200, height=66)
        self._edit = Div(name="edit-message", text="", width=900, height=30)
        self._maps = [_MapPlot(name, *map_shape) for name in [*roi_names, "Frame"]]
        self._image_fig, self._image_source, self._image_mapper = self._image_plot()
        self._boxes, self._labels = self._roi_boxes(roi_names, editable=put is not None)
        self._hist_fig, self._hist_source, self._hist_bars = self._histogram_plot()
        header = Div(text=f"<h2 style='margin:4px 0'>{html.escape(title)}</h2>")
        controls: list[Any] = []
        if put is not None:
            reset = Button(name="reset", label="Reset statistics", button_type="warning", width=160)
            reset.on_click(self._reset)
            controls.append(reset)
        controls.append(self._edit)
        doc.title = title
        doc.add_root(
            column(
                header,
                self._status,
                row(*controls),
                row(*(m.fig for m in self._maps)),
                row(self._image_fig, self._hist_fig),
            )
        )
        doc.add_periodic_callback(self.refresh, period_ms)

    # -- layout ----------------------------------------------------------------

    def _image_plot(self) -> tuple[Any, ColumnDataSource, LinearColorMapper]:
        mapper = LinearColorMapper(palette=Greys256, nan_color=TRANSPARENT, low=0, high=1)
        fig: Any = figure(
            name="image",
            title="Latest frame (binned) and the ROIs",
            frame_width=IMAGE_WIDTH,
            frame_height=IMAGE_WIDTH * 3 // 4,
            x_range=Range1d(start=0, end=320),
            y_range=Range1d(start=240, end=0),  # row 0 at the top, as detectors show it
            tools="",
            toolbar_location=None,
        )
        fig.grid.visible = False
        fig.xaxis.axis_label = "x (pixels)"
        fig.yaxis.axis_label = "y (pixels)"
        source = ColumnDataSource({"image": [np.zeros((1, 1), np.float32)], "dw": [1], "dh": [1]})
        fig.image(image="image", x=0, y=0, dw="dw", dh="dh", color_mapper=mapper, source=source)
        fig.add_layout(_colour_bar(mapper), "below")
        return fig, source, mapper

    def _roi_boxes(
        self, names: list[str], *, editable: bool
    ) -> tuple[list[BoxAnnotation], list[Label]]:
        boxes: list[BoxAnnotation] = []
        labels: list[Label] = []
        for n, name in enumerate(names):
            colour = ROI_COLOURS[n % len(ROI_COLOURS)]
            box = BoxAnnotation(
                name=f"roi-{n + 1}",
                left=0, right=1, top=0, bottom=1, visible=False,
                editable=editable, min_width=1, min_height=1,
                fill_color=colour, fill_alpha=0.08, line_color=colour, line_alpha=1.0, line_width=2,
            )  # fmt: skip
            for attr in ("left", "right", "top", "bottom"):
                box.on_change(attr, self._edited(n))
            label = Label(
                x=0, y=0, text=name, text_color=colour, text_font_size="11px",
                text_baseline="bottom", visible=False,
            )  # fmt: skip
            self._image_fig.add_layout(box)
            self._image_fig.add_layout(label)
            boxes.append(box)
            labels.append(label)
        return boxes, labels

    def _histogram_plot(self) -> tuple[Any, ColumnDataSource, Any]:
        fig: Any = figure(
            name="histogram",
            title="Histogram of the latest frame",
            frame_width=420,
            frame_height=300,
            tools="",
            toolbar_location=None,
        )
        fig.xaxis.axis_label = "pixel value"
        fig.yaxis.axis_label = "pixels"
        source = ColumnDataSource({"x": np.zeros(0), "top": np.zeros(0)})
        bars = fig.vbar(x="x", top="top", width=1.0, source=source, color="#3a6ea5")
        return fig, source, bars

    # -- following the data -----------------------------------------------------

    def refresh(self) -> None:
        """Copy what changed since the last refresh into the models."""
        data = self._latest()
        if data is None or data is self._shown:
            return
        self._shown = data
        self._status.text = _status_html(data)
        if data.frame_shape != self._frame_shape and data.frame_shape[0] > 0:
            self._frame_shape = data.frame_shape
            height, width = data.frame_shape
            self._image_fig.x_range.update(start=0, end=width)
            self._image_fig.y_range.update(start=height, end=0)
            self._image_fig.frame_height = _frame_height(IMAGE_WIDTH, height, width, 160, 640)
        self._show_boxes(data.boxes)
        if data.maps_generation != self._maps_generation:
            self._maps_generation = data.maps_generation
            for plot, view in zip(self._maps, data.maps, strict=False):
                plot.show(view)
        if data.image is not None and data.image.generation != self._image_generation:
            self._image_generation = data.image.generation
            self._show_image(data.image)

    def _show_boxes(self, boxes: list[RoiBox]) -> None:
        self._updating = True
        try:
            for n, rb in enumerate(boxes):
                self._readbacks[n] = rb
                if n in self._timers:
                    continue  # being dragged: the readback comes after the put
                box, label = self._boxes[n], self._labels[n]
                lrtb = {"left": rb.x, "right": rb.x + rb.width, "top": rb.y,
                        "bottom": rb.y + rb.height}  # fmt: skip
                if any(getattr(box, k) != v for k, v in lrtb.items()) or box.visible != rb.use:
                    box.update(**lrtb, visible=rb.use)
                if (label.x, label.y, label.visible) != (rb.x, rb.y, rb.use):
                    label.update(x=rb.x, y=rb.y, visible=rb.use)
        finally:
            self._updating = False

    def _show_image(self, view: ImageView) -> None:
        height, width = self._frame_shape if self._frame_shape[0] else view.image.shape
        self._image_source.data = {"image": [view.image], "dw": [width], "dh": [height]}
        if math.isfinite(view.low):
            high = view.high if view.high > view.low else view.low + 1.0
            self._image_mapper.update(low=view.low, high=high)
        self._hist_source.data = {"x": view.hist_centres, "top": view.hist_counts}
        self._hist_bars.glyph.width = view.hist_width
        self._hist_fig.title.text = (
            f"Histogram of the latest frame   below {view.below}, above {view.above}"
        )

    # -- edits --------------------------------------------------------------------

    def _edited(self, index: int) -> Callable[[str, Any, Any], None]:
        def changed(attr: str, old: Any, new: Any) -> None:
            if self._updating or self._put is None:
                return
            timer = self._timers.pop(index, None)
            if timer is not None:
                self._doc.remove_timeout_callback(timer)
            self._timers[index] = self._doc.add_timeout_callback(
                lambda: self._apply(index), SETTLE_MS
            )

        return changed

    def _apply(self, index: int) -> None:
        """The rectangle has settled: put its geometry as a CA client would."""
        self._timers.pop(index, None)
        rb = self._readbacks.get(index)
        box = self._boxes[index]
        if rb is None or self._put is None:
            return
        left, right = sorted((float(box.left), float(box.right)))  # type: ignore[arg-type]
        top, bottom = sorted((float(box.top), float(box.bottom)))  # type: ignore[arg-type]
        wanted = {
            "x": round(left),
            "y": round(top),
            "width": max(1, round(right - left)),
            "height": max(1, round(bottom - top)),
        }
        puts = [(s, wanted[f]) for s, f in _GEOMETRY if wanted[f] != getattr(rb, f)]
        if not puts:
            self._restore(index)
            return
        done: list[str] = []
        try:
            for suffix, value in puts:
                self._put.put(f"{index + 1}:{suffix}", value, host=self._host, user="")
                done.append(f"{suffix} {value}")
        except PutRefusedError as exc:
            self._say(f"Refused: {exc}", error=True)
            self._restore(index)
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, logged
            log.exception("page edit of ROI %d failed", index + 1)
            self._say(f"Failed: {exc}", error=True)
            self._restore(index)
            return
        self._say(f"{rb.name}: {', '.join(done)} set; past frames are recomputed (see Recompute).")

    def _restore(self, index: int) -> None:
        """Put the rectangles back where the readbacks say the ROIs are."""
        self._timers.pop(index, None)
        self._show_boxes([self._readbacks[n] for n in sorted(self._readbacks)])

    def _reset(self) -> None:
        if self._put is None:
            return
        try:
            self._put.put("Reset", 1, host=self._host, user="")
        except PutRefusedError as exc:
            self._say(f"Refused: {exc}", error=True)
            return
        self._say("Statistics, maps and time series cleared.")

    def _say(self, text: str, *, error: bool = False) -> None:
        colour = "#cf222e" if error else "#1a7f37"
        self._edit.text = f"<span style='color:{colour}'>{html.escape(text)}</span>"


def _status_html(data: PageData) -> str:
    colour = _SEVERITY_COLOUR.get(data.severity, "#000")
    cells = [
        f"<b>Status</b> <span style='color:{colour};font-weight:bold'>{data.status}</span>",
        f"<b>Frames</b> {data.array_counter} processed / {data.frames_written} written",
        f"<b>UniqueId</b> {data.unique_id}",
        f"<b>Rate</b> {data.array_rate:.1f} Hz",
        f"<b>Recompute</b> <progress max='100' value='{data.recompute_progress:.0f}'></progress>"
        f" {data.recompute_progress:.0f} %",
    ]
    return (
        "<div style='font-family:sans-serif;font-size:13px;line-height:1.6'>"
        + " &nbsp;·&nbsp; ".join(cells)
        + f"<br><b>Message</b> {html.escape(data.message)}"
        + f"<br><b>File</b> <code>{html.escape(data.file_path or '–')}</code></div>"
    )
