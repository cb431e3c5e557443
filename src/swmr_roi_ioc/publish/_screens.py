"""Phoebus screens for one config: ``write_screens(config, directory)``.

Five displays, linked by a row of buttons at the top of each:

``index.bob``   Overview: status, message, file, recompute progress;
                counters, rate, uptime and Reset; frame, map and image sizes
``rois.bob``    ROIs: one row per ROI (Name, Use, geometry setpoint |
                readback, Total, Net, Min, Max, Mean) and one for the frame
``maps.bob``    Maps: every ROI's map, the frame's and its maximum map
``series.bob``  Time series: the Mean of every region in one plot, then
                Total/Net and Min/Max/Mean per region
``live.bob``    Live image: the binned frame, its histogram and settings

The forms come from pvi (``_screens_pvi``); images and plots are written
by hand (``_screens_bob``, ``_screens_plots``), because pvi has no
``data_width``/``data_height`` for images, no X PV and no second Y axis.

PV names are written with areaDetector's macros, ``$(P)$(R)1:Total_RBV``:
each display defines ``P`` and ``R`` from the configured prefix (split as
areaDetector splits ``BL01C-DI-DCAM-01:`` + ``ROI:``) as defaults, so the same
files serve another instance when opened with other P and R. Fonts are
Phoebus' named fonts (Default, Default Bold, Header 1, ...), so a site's
font definitions apply.

Sizes of arrays, where the screens must state them:

* maps: ``scan.shape`` (rows x cols) when configured. Without it the map
  geometry is only known at run time (from the plugin's ExtraDimSize PVs or
  the file), so the images start with the IOC's startup shape, one row of
  ``time_series_length`` columns (``map_shape``), Phoebus rules set
  ``data_width``/``data_height`` from ``MapSizeX_RBV``/``MapSizeY_RBV``
  whenever those are > 0, and the axes are hidden (their range is unknown).
* live image: the binned size of a typical 1936 x 1216 camera frame
  (``stats.bin_factor`` with ``publish.image_max_size``: 484 x 304 for 512),
  and rules that follow ``ImageSizeX_RBV``/``ImageSizeY_RBV``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.stats import bin_factor

from . import _screens_bob as bob
from . import _screens_pvi as forms
from ._pvtable import map_shape
from ._screens_bob import GAP, MARGIN
from ._screens_plots import live_view, map_panels, series_plots

#: (file, button text, title) of every display, in the order of the buttons.
SCREENS = (
    ("index.bob", "Overview", "Overview"),
    ("rois.bob", "ROIs", "Regions of interest"),
    ("maps.bob", "Maps", "Scan maps"),
    ("series.bob", "Time series", "Time series"),
    ("live.bob", "Live image", "Live image"),
)
#: A typical camera frame (rows, cols) for the live image's static size.
TYPICAL_FRAME = (1216, 1936)
#: Where the content of every display starts (below title and buttons).
TOP = 104
#: width of the histogram plot and of its form below it
HISTOGRAM_W = 440
_TITLE_Y, _SUBTITLE_Y = 8, 38
_NAV_W, _NAV_Y = 120, 64


#: The PV name prefix every screen uses, areaDetector's macros.
MACRO_PREFIX = "$(P)$(R)"


def split_prefix(prefix: str) -> tuple[str, str]:
    """areaDetector's P and R of a prefix: 'BL01C-DI-DCAM-01:ROI:' ->
    ('BL01C-DI-DCAM-01:', 'ROI:'); a single field is all P: 'T:' -> ('T:', '')."""
    head = prefix.rstrip(":").rpartition(":")[0]
    if not head:
        return prefix, ""
    return head + ":", prefix[len(head) + 1 :]


def _page(config: IocConfig, file: str, macros: tuple[str, str]) -> bob.Element:
    """A display with its P/R macros, its title, prefix/description line and
    the buttons to the other displays."""
    title = next(full for name, _button, full in SCREENS if name == file)
    root = bob.display(f"{config.ioc_name}: {title}", 100, 100)
    bob.macros(root, {"P": macros[0], "R": macros[1]})
    heading = f"{title} \u2014 {config.ioc_name}"
    bob.label(root, heading, MARGIN, _TITLE_Y, 100, 30, size=22, bold=True)
    sub = f"PV prefix {config.prefix}"
    if config.description:
        sub += f"   \u00b7   {config.description}"
    bob.label(root, sub, MARGIN, _SUBTITLE_Y, 100, 18, size=12, colour=bob.MUTED)
    x = MARGIN
    for other, button, _full in SCREENS:
        if other != file:
            bob.open_button(root, button, other, x, _NAV_Y, _NAV_W, 28)
            x += _NAV_W + 6
    return root


def _finish(root: bob.Element, path: Path) -> Path:
    """Size the display to its widgets, stretch the title lines, write it."""
    widgets = list(root.iterfind("widget"))
    titles = widgets[:2]
    extents = [bob.bounds(node) for node in widgets[2:]]
    width = max(600, max(x + w for x, _, w, _ in extents)) + MARGIN
    height = max(y + h for _, y, _, h in extents) + MARGIN
    bob.set_prop(root, "width", width)
    bob.set_prop(root, "height", height)
    for node in titles:
        bob.set_prop(node, "width", width - 2 * MARGIN)
    return bob.write(root, path)


def _index(config: IocConfig, path: Path, macros: tuple[str, str]) -> Path:
    root = _page(config, path.name, macros)
    acquisition = forms.render(forms.acquisition_group(config), label_width=150, widget_width=130)
    geometry = forms.render(forms.geometry_group(config), label_width=150, widget_width=130)
    both = acquisition.width + GAP + geometry.width
    form = forms.render_to_width(forms.status_group(config), label_width=110, width=both)
    form.place(root, MARGIN, TOP)
    y = TOP + form.height + GAP
    acquisition.place(root, MARGIN, y)
    geometry.place(root, MARGIN + acquisition.width + GAP, y)
    return _finish(root, path)


def _rois(config: IocConfig, path: Path, macros: tuple[str, str]) -> Path:
    root = _page(config, path.name, macros)
    table = forms.render(forms.roi_table(config), label_width=64, widget_width=100)
    table.place(root, MARGIN, TOP)
    note = (
        "Left half of a geometry column: setpoint (applies from the next frames, and "
        "is recomputed over past frames: see Recompute on the Overview); right half: "
        "readback, clamped to the frame as NDPluginROIStat clamps."
    )
    y = TOP + table.height + 4
    node = bob.label(root, note, MARGIN, y, table.width, 36, size=12, colour=bob.MUTED)
    bob.prop(node, "wrap_words", True)
    return _finish(root, path)


def _maps(config: IocConfig, path: Path, macros: tuple[str, str]) -> Path:
    root = _page(config, path.name, macros)
    dynamic = config.scan.shape is None
    root.extend(map_panels(config, map_shape(config), dynamic, TOP))
    return _finish(root, path)


def _series(config: IocConfig, path: Path, macros: tuple[str, str]) -> Path:
    root = _page(config, path.name, macros)
    root.extend(series_plots(config, TOP))
    return _finish(root, path)


def live_image_size(config: IocConfig) -> tuple[int, int]:
    """(rows, cols) of the live image for a typical frame (see the module doc)."""
    factor = bin_factor(TYPICAL_FRAME, config.publish.image_max_size)
    return (TYPICAL_FRAME[0] // factor, TYPICAL_FRAME[1] // factor)


def _live(config: IocConfig, path: Path, macros: tuple[str, str]) -> Path:
    root = _page(config, path.name, macros)
    histogram = forms.render_to_width(
        forms.histogram_group(config), label_width=120, width=HISTOGRAM_W
    )
    root.extend(live_view(config, live_image_size(config), TOP, histogram))
    return _finish(root, path)


_BUILDERS: dict[str, Callable[[IocConfig, Path, tuple[str, str]], Path]] = {
    "index.bob": _index,
    "rois.bob": _rois,
    "maps.bob": _maps,
    "series.bob": _series,
    "live.bob": _live,
}


def write_screens(config: IocConfig, directory: Path) -> list[Path]:
    """Write the Phoebus screens for ``config`` into ``directory`` (created if
    missing; each file is replaced atomically). Open ``index.bob``.

    Returns the paths written, ``index.bob`` first."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    macros = split_prefix(config.prefix)
    # the builders write PV names from config.prefix: make it the macros
    # (model_copy does not validate: '$(P)$(R)' is no PV name of its own)
    generic = config.model_copy(update={"prefix": MACRO_PREFIX})
    return [_BUILDERS[file](generic, directory / file, macros) for file, _button, _title in SCREENS]
