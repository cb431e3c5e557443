"""The forms of the screens, described as pvi Devices and laid out by pvi.

pvi is what ibek, FastCS and pandablocks-ioc generate their Phoebus screens
with: Signals (read, write, read/write pairs) in Groups, formatted by
``DLSFormatter`` into labelled, aligned rows. Each form here is one pvi Group;
:func:`render` lets pvi lay it out and returns its widgets, which the screen
builders place on their displays beside the hand-written parts (images and
plots, which pvi cannot describe with data sizes, X PVs and several axes).

pvi writes CA PV names as given (no ``ca://`` prefix; only its Table widget
adds ``pva://``, which is not used here).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from pvi._format.dls import DLSFormatter
from pvi.device import (
    ButtonPanel,
    ComboBox,
    ComponentUnion,
    Device,
    Grid,
    Group,
    ProgressBar,
    Row,
    SignalR,
    SignalRW,
    SignalW,
    SubScreen,
    TextFormat,
    TextRead,
)

from swmr_roi_ioc.config import IocConfig

from ._pvtable import GEOMETRY_PVS
from ._screens_bob import GROUP_INSET, Element, bounds, set_prop, shift

#: What the Reset button writes: state 1 of the Reset enum ("write 1"), by
#: its name. Phoebus' write-PV action puts its value as a string (DBR_STRING);
#: the IOC's bo record takes a state's name as well as its number.
RESET_VALUE = "Reset"

#: Columns of the ROI table, in order; RW columns hold setpoint | readback.
ROI_COLUMNS = ("Name", "Use", *GEOMETRY_PVS, "Total", "Net", "Min", "Max", "Mean")
#: Statistic column -> (PV suffix, how it is shown)
_STATS = {
    "Total": ("Total_RBV", TextRead(format=TextFormat.exponential, precision=4)),
    "Net": ("Net_RBV", TextRead(format=TextFormat.exponential, precision=4)),
    "Min": ("MinValue_RBV", TextRead(precision=1)),
    "Max": ("MaxValue_RBV", TextRead(precision=1)),
    "Mean": ("MeanValue_RBV", TextRead(precision=2)),
}


@dataclass(frozen=True)
class Form:
    """Widgets laid out by pvi, relative to (0, 0), and the size they need."""

    widgets: list[Element]
    width: int
    height: int

    def place(self, parent: Element, x: int, y: int) -> None:
        """Move the widgets into ``parent`` with their origin at (x, y)."""
        for node in self.widgets:
            shift(node, x, y)
            parent.append(node)


def render(group: Group, *, label_width: int, widget_width: int, height: int = 20) -> Form:
    """Lay out one pvi Group with pvi's DLS formatter and return its widgets.

    The group goes in as the only child of a SubScreen, which is how pvi lays
    out a screen of its own: rows keep their full width instead of being
    squeezed into one column."""
    device = Device(label="", children=[Group(name="Form", layout=SubScreen(), children=[group])])
    formatter = DLSFormatter(
        label_width=label_width,
        widget_width=widget_width,
        widget_height=height,
        max_height=100_000,  # one column, however many ROIs
    )
    with tempfile.TemporaryDirectory(prefix="swmr-roi-screens-") as tmp:
        path = Path(tmp) / "form.bob"
        formatter.format(device, path)
        root = etree.parse(str(path), etree.XMLParser(remove_blank_text=True)).getroot()
    widgets = [child for child in root if child.tag == "widget"]
    for node in widgets:
        if node.get("type") == "group":
            _fit_group(node)
    for node in root.iter("widget"):
        if node.get("type") == "action_button":
            _fix_write_button(node)
    x0 = min(bounds(node)[0] for node in widgets)
    y0 = min(bounds(node)[1] for node in widgets)
    for node in widgets:
        shift(node, -x0, -y0)
    extents = [bounds(node) for node in widgets]
    return Form(widgets, max(x + w for x, _, w, _ in extents), max(y + h for _, y, _, h in extents))


def render_to_width(group: Group, *, label_width: int, width: int, start: int = 100) -> Form:
    """:func:`render` with the widget column widened until the form is ``width`` wide."""
    form = render(group, label_width=label_width, widget_width=start)
    if form.width >= width:
        return form
    return render(group, label_width=label_width, widget_width=start + width - form.width)


def _fix_write_button(node: Element) -> None:
    """pvi 0.14 fills in the write action's PV but leaves the button's own
    ``pv_name`` at its template's placeholder ("SignalX"), a PV Phoebus would
    try to connect to; make it the PV the button writes, and describe the
    action by the button's text instead of ``$(name)``."""
    action = node.find("actions/action[@type='write_pv']")
    if action is None:
        return
    set_prop(node, "pv_name", action.findtext("pv_name") or "")
    set_prop(action, "description", node.findtext("text") or "")


def _fit_group(node: Element) -> None:
    """Size a group box so Phoebus' insets leave room for all its children
    (pvi allows 26 px where Phoebus takes 2 x 21 for a 16 pt title)."""
    children = [bounds(child) for child in node.iterfind("widget")]
    if children:
        set_prop(node, "width", max(x + w for x, _, w, _ in children) + 2 * GROUP_INSET)
        set_prop(node, "height", max(y + h for _, y, _, h in children) + 2 * GROUP_INSET)


def _read(name: str, label: str, pv: str, doc: str, widget: TextRead | None = None) -> SignalR:
    return SignalR(
        name=name, label=label, read_pv=pv, description=doc, read_widget=widget or TextRead()
    )


def status_group(config: IocConfig) -> Group:
    """State, message, file and the progress of a recompute."""
    p = config.prefix
    text = TextRead(format=TextFormat.string)
    return Group(
        name="Status",
        label="Status",
        layout=Grid(),
        children=[
            _read("Status", "State", f"{p}Status_RBV", "Idle, Waiting, Following, Finished, Error"),
            _read("Message", "Message", f"{p}StatusMessage_RBV", "what it does or waits for", text),
            _read("File", "File", f"{p}FilePath_RBV", "the HDF5 file followed now", text),
            SignalR(
                name="Recompute",
                label="Recompute",
                read_pv=f"{p}RecomputeProgress_RBV",
                description="a ROI change applied to past frames, 0..100 %",
                read_widget=ProgressBar(),
            ),
            _read("PutError", "Last refused put", f"{p}PutError_RBV", "why it was refused", text),
            _read("Run", "Run", f"{p}RunUid_RBV", "bluesky source: the run's uid", text),
            _read("Plan", "Plan", f"{p}PlanName_RBV", "bluesky source: the run's plan", text),
            SignalR(
                name="RunProgress",
                label="Run progress",
                read_pv=f"{p}RunProgress_RBV",
                description="bluesky source: frames declared / frames expected, %",
                read_widget=ProgressBar(),
            ),
        ],
    )


def acquisition_group(config: IocConfig) -> Group:
    """Counters, rate and the Reset button."""
    p = config.prefix
    return Group(
        name="Acquisition",
        label="Acquisition",
        layout=Grid(),
        children=[
            _read("Processed", "Frames processed", f"{p}ArrayCounter_RBV", "ArrayCounter_RBV"),
            _read("Written", "Frames written", f"{p}FramesWritten_RBV", "complete in the file"),
            _read("UniqueId", "Last unique ID", f"{p}UniqueId_RBV", "NDArrayUniqueId"),
            _read("Rate", "Rate", f"{p}ArrayRate_RBV", "frames/s processed", TextRead(precision=1)),
            _read("Uptime", "Uptime", f"{p}Uptime_RBV", "seconds since the IOC started"),
            SignalW(
                name="Reset",
                label="Clear",
                write_pv=f"{p}Reset",
                description="Reset: clear statistics, maps and time series",
                write_widget=ButtonPanel(actions={"Reset": RESET_VALUE}),
            ),
        ],
    )


def geometry_group(config: IocConfig) -> Group:
    """Frame, map and live-image sizes, and the number of ROIs."""
    p = config.prefix
    return Group(
        name="Geometry",
        label="Geometry",
        layout=Grid(),
        children=[
            _read("FrameWidth", "Frame width", f"{p}Frame:MaxSizeX_RBV", "pixels"),
            _read("FrameHeight", "Frame height", f"{p}Frame:MaxSizeY_RBV", "pixels"),
            _read("MapColumns", "Map columns", f"{p}MapSizeX_RBV", "MapSizeX_RBV"),
            _read("MapRows", "Map rows", f"{p}MapSizeY_RBV", "MapSizeY_RBV"),
            _read("ImageColumns", "Image columns", f"{p}ImageSizeX_RBV", "live image, binned"),
            _read("ImageRows", "Image rows", f"{p}ImageSizeY_RBV", "live image, binned"),
            _read("Rois", "ROIs", f"{p}NumROIs_RBV", "NumROIs_RBV"),
        ],
    )


def histogram_group(config: IocConfig) -> Group:
    """HistSize/HistMin/HistMax setpoints and readbacks, pixels outside."""
    p = config.prefix

    def pair(name: str, label: str, suffix: str, doc: str) -> SignalRW:
        return SignalRW(
            name=name,
            label=label,
            write_pv=f"{p}{suffix}",
            read_pv=f"{p}{suffix}_RBV",
            description=doc,
        )

    return Group(
        name="Histogram",
        label="Histogram",
        layout=Grid(),
        children=[
            pair("Bins", "Bins", "HistSize", "HistSize"),
            pair("Low", "Low edge", "HistMin", "HistMin: lower edge of the first bin"),
            pair("High", "High edge", "HistMax", "HistMax: upper edge of the last bin"),
            _read("Below", "Below low", f"{p}HistBelow_RBV", "pixels below HistMin"),
            _read("Above", "At/above high", f"{p}HistAbove_RBV", "pixels at or above HistMax"),
        ],
    )


def _blank(name: str) -> SignalR:
    """An empty cell that keeps a table's columns aligned (no widget is drawn)."""
    return SignalR(name=name, read_pv="", read_widget=None)


def _stats(prefix: str) -> list[ComponentUnion]:
    return [
        SignalR(name=column, read_pv=f"{prefix}{suffix}", read_widget=widget)
        for column, (suffix, widget) in _STATS.items()
    ]


def roi_table(config: IocConfig) -> Group:
    """One row per ROI: Name, Use and geometry (setpoint | readback), the
    statistics; a last row for the whole frame (its size under SizeX/SizeY)."""
    p = config.prefix
    rows: list[Group] = []
    for n in range(1, len(config.rois) + 1):
        r = f"{p}{n}:"
        geometry: list[ComponentUnion] = [
            SignalRW(name=suffix, write_pv=f"{r}{suffix}", read_pv=f"{r}{suffix}_RBV")
            for suffix in GEOMETRY_PVS
        ]
        cells: Sequence[ComponentUnion] = [
            SignalRW(name="Name", write_pv=f"{r}Name"),
            SignalRW(
                name="Use", write_pv=f"{r}Use", read_pv=f"{r}Use_RBV", write_widget=ComboBox()
            ),
            *geometry,
            *_stats(r),
        ]
        rows.append(Group(name=f"Roi{n}", label=f"ROI {n}", layout=Row(), children=cells))
    f = f"{p}Frame:"
    frame: Sequence[ComponentUnion] = [
        _read("Name", "Name", f"{f}Name", "whole frame"),
        _blank("Use"),
        _blank("MinX"),
        _blank("MinY"),
        _read("SizeX", "SizeX", f"{f}MaxSizeX_RBV", "frame width"),
        _read("SizeY", "SizeY", f"{f}MaxSizeY_RBV", "frame height"),
        _blank("BgdWidth"),
        *_stats(f),
    ]
    rows.append(Group(name="Frame", label="Frame", layout=Row(), children=frame))
    rows[0] = rows[0].model_copy(update={"layout": Row(header=list(ROI_COLUMNS))})
    return Group(name="Regions", label="Regions", layout=Grid(), children=rows)
