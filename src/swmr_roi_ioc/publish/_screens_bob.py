"""Phoebus ``.bob`` XML written by hand, for what pvi cannot express.

pvi (see ``_screens_pvi``) lays out the forms; this module writes the
display around them and the widgets pvi has no words for: Image widgets with
``data_width``/``data_height`` (and rules that follow the size PVs), XY plots
with an X PV and several Y axes, and the navigation buttons. Property names
and widget versions are those of Phoebus' display model (``ImageWidget``,
``XYPlotWidget``, ``PlotWidgetProperties``, ``RulesWidgetProperty``); colours
are pvi's ``dls.bob`` theme so both halves look alike; fonts are Phoebus'
named fonts, in both halves (``write`` names pvi's too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from lxml.etree import _Element as Element

Rgb = tuple[int, int, int]

BACKGROUND: Rgb = (245, 247, 250)
TEXT: Rgb = (15, 23, 42)
MUTED: Rgb = (100, 116, 139)
ACCENT: Rgb = (37, 99, 235)
BUTTON: Rgb = (241, 245, 249)
BORDER: Rgb = (203, 213, 225)
#: Trace colours (Tableau 10: distinguishable, colour-blind friendlier).
TRACE_COLOURS: tuple[Rgb, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
)

#: space around a display's content, and between its panels
MARGIN, GAP = 12, 10

#: Phoebus' named fonts (``NamedWidgetFonts``) by (size, style), with the
#: attributes Phoebus gives them by default (written as the fallback).
NAMED_FONTS: dict[tuple[float, str], str] = {
    (14.0, "REGULAR"): "Default",
    (14.0, "BOLD"): "Default Bold",
    (22.0, "BOLD"): "Header 1",
    (18.0, "BOLD"): "Header 2",
    (16.0, "BOLD"): "Header 3",
    (14.0, "ITALIC"): "Comment",
    (12.0, "REGULAR"): "Fine Print",
}
FONT = "Liberation Sans"
#: Phoebus draws a group box's children inside an inset of 2 + 1.2 * font size
#: on every side (GroupRepresentation, style GROUP).
GROUP_FONT_SIZE = 16
GROUP_INSET = 2 + int(1.2 * GROUP_FONT_SIZE)

#: Widget versions Phoebus writes today for the types used here.
VERSIONS = {
    "action_button": "3.0.0",
    "group": "3.0.0",
    "image": "2.0.0",
    "label": "2.0.0",
    "textupdate": "2.0.0",
    "xyplot": "3.0.0",
}


def prop(parent: Element, tag: str, value: str | int | float | bool) -> Element:
    """Append the simple property ``<tag>value</tag>`` (booleans as true/false)."""
    child = etree.SubElement(parent, tag)
    if isinstance(value, bool):
        child.text = "true" if value else "false"
    else:
        child.text = str(value)
    return child


def _color(parent: Element, tag: str, rgb: Rgb) -> Element:
    holder = etree.SubElement(parent, tag)
    red, green, blue = rgb
    etree.SubElement(holder, "color", red=str(red), green=str(green), blue=str(blue))
    return holder


def named_font(size: float, style: str) -> str:
    """The Phoebus named font nearest to ``size`` in ``style`` (regular text
    16 and up is a header, as Phoebus' own fonts go)."""
    if style == "REGULAR" and size >= 16:
        style = "BOLD"
    same = [(s, n) for (s, st), n in NAMED_FONTS.items() if st == style]
    same = same or [(14.0, "Default")]
    return min(same, key=lambda item: abs(item[0] - size))[1]


def _named(font: Element) -> None:
    """Make a ``<font family= style= size=>`` element a named font."""
    name = named_font(float(font.get("size") or 14), font.get("style") or "REGULAR")
    size, style = next(k for k, v in NAMED_FONTS.items() if v == name)
    for key in list(font.attrib):
        del font.attrib[key]
    font.text = None
    font.set("name", name)
    font.set("family", FONT)
    font.set("style", style)
    font.set("size", f"{size}")


def _font(parent: Element, size: float, style: str = "REGULAR") -> None:
    holder = etree.SubElement(parent, "font")
    _named(etree.SubElement(holder, "font", style=style, size=f"{float(size)}"))


def macros(root: Element, values: dict[str, str]) -> Element:
    """The display's ``<macros>``: defaults its PV names expand with."""
    holder = etree.SubElement(root, "macros")
    for name, value in values.items():
        prop(holder, name, value)
    return holder


def display(name: str, width: int, height: int) -> Element:
    """An empty display (the root of a ``.bob`` file)."""
    root = etree.Element("display", version="2.0.0")
    prop(root, "name", name)
    for tag, value in (("x", 0), ("y", 0), ("width", width), ("height", height)):
        prop(root, tag, value)
    _color(root, "background_color", BACKGROUND)
    prop(root, "grid_step_x", 4)
    prop(root, "grid_step_y", 4)
    return root


def scratch() -> Element:
    """A parent to build widgets in before they move to a display."""
    return etree.Element("scratch")


def widget(
    parent: Element, kind: str, name: str, x: int, y: int, width: int, height: int
) -> Element:
    """A widget of type ``kind`` with its name and geometry, appended to ``parent``."""
    node = etree.SubElement(parent, "widget", type=kind, version=VERSIONS[kind])
    prop(node, "name", name)
    for tag, value in (("x", x), ("y", y), ("width", width), ("height", height)):
        prop(node, tag, value)
    return node


def label(
    parent: Element,
    text: str,
    x: int,
    y: int,
    width: int,
    height: int = 20,
    *,
    size: float = 14,
    bold: bool = False,
    colour: Rgb = TEXT,
    align: int = 0,
) -> Element:
    """A static text; ``align`` 0 left, 1 centre, 2 right."""
    node = widget(parent, "label", "Label", x, y, width, height)
    prop(node, "text", text)
    _font(node, size, "BOLD" if bold else "REGULAR")
    _color(node, "foreground_color", colour)
    prop(node, "horizontal_alignment", align)
    prop(node, "vertical_alignment", 1)
    return node


def text_update(
    parent: Element,
    pv: str,
    x: int,
    y: int,
    width: int,
    height: int = 20,
    *,
    precision: int | None = None,
    exponential: bool = False,
) -> Element:
    """A read-only value, styled like pvi's TextUpdate."""
    node = widget(parent, "textupdate", "TextUpdate", x, y, width, height)
    prop(node, "pv_name", pv)
    _font(node, 14, "BOLD")
    _color(node, "foreground_color", TEXT)
    _color(node, "background_color", BACKGROUND)
    prop(node, "horizontal_alignment", 1)
    _color(node, "border_color", BORDER)
    if exponential:
        prop(node, "format", 2)
    if precision is not None:
        prop(node, "precision", precision)
    return node


def open_button(
    parent: Element, text: str, file: str, x: int, y: int, width: int = 110, height: int = 28
) -> Element:
    """A button that opens ``file`` (relative to this display) in its place;
    Ctrl-click opens a new tab, as for every Phoebus open-display action."""
    node = widget(parent, "action_button", f"Open{Path(file).stem.title()}", x, y, width, height)
    actions = etree.SubElement(node, "actions")
    action = etree.SubElement(actions, "action", type="open_display")
    prop(action, "description", text)
    prop(action, "file", file)
    prop(action, "target", "replace")
    prop(node, "text", text)
    _font(node, 14, "BOLD")
    _color(node, "foreground_color", ACCENT)
    _color(node, "background_color", BUTTON)
    prop(node, "tooltip", f"Open {file}")
    return node


def group(parent: Element, title: str, x: int, y: int, width: int, height: int) -> Element:
    """A titled group box; its children are placed relative to its inside,
    which is ``GROUP_INSET`` in from every edge."""
    node = widget(parent, "group", title, x, y, width, height)
    _font(node, GROUP_FONT_SIZE)
    _color(node, "foreground_color", TEXT)
    _color(node, "line_color", BORDER)
    _color(node, "background_color", BACKGROUND)
    prop(node, "transparent", True)
    return node


def size_rules(node: Element, width_pv: str | None, height_pv: str | None) -> None:
    """Rules that set ``data_width``/``data_height`` from PVs once they are > 0.

    The static values stay in force until the PVs say otherwise, so the
    widget is right from the first frame when the geometry is known."""
    pairs = [("data_width", width_pv), ("data_height", height_pv)]
    wanted = [(name, pv) for name, pv in pairs if pv is not None]
    if not wanted:
        return
    rules = etree.SubElement(node, "rules")
    for name, pv in wanted:
        rule = etree.SubElement(rules, "rule", name=name, prop_id=name, out_exp="true")
        exp = etree.SubElement(rule, "exp", bool_exp="pv0 > 0")
        prop(exp, "expression", "pv0")
        prop(rule, "pv_name", pv)


@dataclass(frozen=True)
class ImageSpec:
    """What an Image widget shows: the PV, its array geometry, the colours."""

    pv: str
    data_width: int
    data_height: int
    colour_map: str = "VIRIDIS"
    axes: bool = True
    width_pv: str | None = None
    height_pv: str | None = None
    #: 0 none (crisp map cells), 1 interpolate, 2 automatic
    interpolation: int = 0


def image(parent: Element, name: str, spec: ImageSpec, x: int, y: int, w: int, h: int) -> Element:
    """An Image widget of a row-major waveform, autoscaled, with a colour bar."""
    node = widget(parent, "image", name, x, y, w, h)
    prop(node, "pv_name", spec.pv)
    colour_map = etree.SubElement(node, "color_map")
    prop(colour_map, "name", spec.colour_map)
    bar = etree.SubElement(node, "color_bar")
    prop(bar, "visible", True)
    prop(bar, "bar_size", 30)
    axes = (("x_axis", "column", spec.data_width), ("y_axis", "row", spec.data_height))
    for tag, title, size in axes:
        axis = etree.SubElement(node, tag)
        prop(axis, "visible", spec.axes)
        prop(axis, "title", title if spec.axes else "")
        prop(axis, "minimum", 0.0)
        prop(axis, "maximum", float(size))
    prop(node, "data_width", spec.data_width)
    prop(node, "data_height", spec.data_height)
    prop(node, "interpolation", spec.interpolation)
    prop(node, "autoscale", True)
    prop(node, "log_scale", False)
    size_rules(node, spec.width_pv, spec.height_pv)
    return node


@dataclass(frozen=True)
class Trace:
    """One line of an XY plot: Y PV against the X PV (or the index if None)."""

    name: str
    y_pv: str
    x_pv: str | None = None
    axis: int = 0
    step: bool = False


def xyplot(
    parent: Element,
    name: str,
    traces: Sequence[Trace],
    x: int,
    y: int,
    w: int,
    h: int,
    *,
    x_title: str,
    y_titles: Sequence[str],
    title: str = "",
    legend: bool = True,
) -> Element:
    """An autoscaling XY plot; ``y_titles[i]`` names axis i (axis 1 on the right)."""
    node = widget(parent, "xyplot", name, x, y, w, h)
    prop(node, "title", title)
    _font_tag(node, "title_font", 14, "BOLD")
    prop(node, "show_toolbar", False)
    prop(node, "show_legend", legend)
    x_axis = etree.SubElement(node, "x_axis")
    _axis(x_axis, x_title)
    y_axes = etree.SubElement(node, "y_axes")
    for index, y_title in enumerate(y_titles):
        y_axis = etree.SubElement(y_axes, "y_axis")
        _axis(y_axis, y_title)
        prop(y_axis, "on_right", index > 0)
        _color(y_axis, "color", TEXT)
    traces_node = etree.SubElement(node, "traces")
    for index, trace in enumerate(traces):
        item = etree.SubElement(traces_node, "trace")
        prop(item, "name", trace.name)
        prop(item, "x_pv", trace.x_pv or "")
        prop(item, "y_pv", trace.y_pv)
        prop(item, "err_pv", "")
        prop(item, "axis", trace.axis)
        prop(item, "trace_type", 2 if trace.step else 1)
        _color(item, "color", TRACE_COLOURS[index % len(TRACE_COLOURS)])
        prop(item, "line_width", 2)
        prop(item, "line_style", 0)
        prop(item, "point_type", 0)
        prop(item, "point_size", 6)
        prop(item, "visible", True)
    return node


def _font_tag(parent: Element, tag: str, size: float, style: str = "REGULAR") -> None:
    holder = etree.SubElement(parent, tag)
    _named(etree.SubElement(holder, "font", style=style, size=f"{float(size)}"))


def _axis(axis: Element, title: str) -> None:
    prop(axis, "title", title)
    prop(axis, "autoscale", True)
    prop(axis, "log_scale", False)
    prop(axis, "minimum", 0.0)
    prop(axis, "maximum", 100.0)
    prop(axis, "show_grid", True)
    _font_tag(axis, "title_font", 14, "BOLD")
    _font_tag(axis, "scale_font", 12)
    prop(axis, "visible", True)


def bounds(node: Element) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a widget."""
    x, y, w, h = (int(node.findtext(tag) or 0) for tag in ("x", "y", "width", "height"))
    return x, y, w, h


def shift(node: Element, dx: int, dy: int) -> None:
    """Move a widget by (dx, dy) (its children move with it)."""
    for tag, delta in (("x", dx), ("y", dy)):
        set_prop(node, tag, int(node.findtext(tag) or 0) + delta)


def set_prop(node: Element, tag: str, value: str | int | float | bool) -> None:
    """Set (or add) the simple property ``tag`` of a widget or display."""
    child = node.find(tag)
    if child is None:
        prop(node, tag, value)
    else:
        child.text = str(value).lower() if isinstance(value, bool) else str(value)


def write(root: Element, path: Path) -> Path:
    """Write the display to ``path`` atomically (``.tmp`` then rename), so a
    Phoebus reading the screens directory never sees half a file."""
    for font in root.iter("font"):
        # a holder has the font as its child; pvi's fonts are named here too
        if not len(font) and font.get("size") is not None and font.get("name") is None:
            _named(font)
    etree.indent(root, space="  ")
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
