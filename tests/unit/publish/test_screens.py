"""The Phoebus screens: valid displays, every PV served, sizes right, links resolve."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swmr_roi_ioc.config import IocConfig
from swmr_roi_ioc.publish import map_shape, pv_names
from swmr_roi_ioc.publish._screens import SCREENS, live_image_size, write_screens
from swmr_roi_ioc.publish._screens_bob import GROUP_INSET
from swmr_roi_ioc.publish._screens_pvi import RESET_VALUE

PREFIX = "BL01C-DI-DCAM-01:ROI:"
#: every widget type the screens may use (Phoebus display model names)
KNOWN_TYPES = {
    "action_button",
    "combo",
    "group",
    "image",
    "label",
    "progressbar",
    "textentry",
    "textupdate",
    "xyplot",
}
#: the PVs deliberately left off the screens: each ROI's frame size repeats
#: the frame's (shown once, as Frame:MaxSizeX_RBV / Frame:MaxSizeY_RBV)
OFF_SCREEN_SUFFIXES = ("MaxSizeX_RBV", "MaxSizeY_RBV")


def _config(**overrides: Any) -> IocConfig:
    data: dict[str, Any] = {
        "ioc_name": "bl01c-di-dcam-01-roi",
        "description": "Live ROI sums for dcam1",
        "prefix": PREFIX,
        "data_root": "/data",
        "scan": {"shape": [20, 30]},
        "rois": [
            {"name": "ROI1", "x": 100, "y": 200, "width": 50, "height": 50},
            {"name": "Beam", "x": 10, "y": 20, "width": 30, "height": 40},
            {"name": "Bg", "x": 0, "y": 0, "width": 8, "height": 8, "background_width": 2},
        ],
        "publish": {"image_max_size": 512},
    }
    data.update(overrides)
    return IocConfig.model_validate(data)


def expand(root: ET.Element) -> ET.Element:
    """The display with its macros ($(P), $(R)) expanded everywhere, as
    Phoebus expands them from the display's <macros>."""
    holder = root.find("macros")
    values = {child.tag: child.text or "" for child in holder} if holder is not None else {}
    for node in root.iter():
        if node.text and "$(" in node.text:
            text = node.text
            for name, value in values.items():
                text = text.replace(f"$({name})", value)
            node.text = text
    return root


def parse(path: Path) -> ET.Element:
    """A display as Phoebus shows it: macros expanded."""
    return expand(ET.parse(path).getroot())


def _widgets(node: ET.Element) -> Iterator[ET.Element]:
    """Every widget under ``node``, at any depth."""
    yield from node.iter("widget")


def _bounds(node: ET.Element) -> tuple[int, int, int, int]:
    values = [node.findtext(tag) for tag in ("x", "y", "width", "height")]
    assert all(v is not None and v.lstrip("-").isdigit() for v in values), (
        f"{node.get('type')} {node.findtext('name')!r}: geometry {values}"
    )
    x, y, w, h = (int(v or 0) for v in values)
    return x, y, w, h


def _pvs(root: ET.Element) -> set[str]:
    """Every PV a display names: widget pv_name, trace x_pv/y_pv, rule PVs."""
    names: set[str] = set()
    for tag in ("pv_name", "x_pv", "y_pv", "err_pv"):
        for node in root.iter(tag):
            text = (node.text or "").strip()
            for scheme in ("ca://", "pva://"):
                text = text.removeprefix(scheme)
            if text:
                names.add(text)
    return names


@pytest.fixture
def screens(tmp_path: Path) -> dict[str, ET.Element]:
    paths = write_screens(_config(), tmp_path / "opi")
    return {p.name: parse(p) for p in paths}


def test_writes_the_five_displays_index_first(tmp_path: Path) -> None:
    paths = write_screens(_config(), tmp_path / "new" / "opi")
    assert [p.name for p in paths] == [name for name, _button, _title in SCREENS]
    assert paths[0].name == "index.bob"
    assert all(p.is_file() and p.parent == tmp_path / "new" / "opi" for p in paths)
    assert sorted(p.name for p in (tmp_path / "new" / "opi").iterdir()) == sorted(
        p.name for p in paths
    ), "no .tmp files left behind"
    # writing again replaces them
    assert write_screens(_config(), tmp_path / "new" / "opi") == paths


def test_valid_phoebus_displays(screens: dict[str, ET.Element]) -> None:
    for name, root in screens.items():
        assert root.tag == "display", name
        assert root.get("version") == "2.0.0"
        assert int(root.findtext("width") or "x") > 0
        assert int(root.findtext("height") or "x") > 0
        for node in _widgets(root):
            assert node.get("type") in KNOWN_TYPES, (name, node.get("type"))
            assert node.get("version"), (name, node.get("type"))
            x, y, w, h = _bounds(node)
            assert x >= 0 and y >= 0 and w > 0 and h > 0, (name, node.findtext("name"))


def test_every_pv_is_served_and_none_is_missing(screens: dict[str, ET.Element]) -> None:
    config = _config()
    served = set(pv_names(config))
    shown = set().union(*(_pvs(root) for root in screens.values()))
    assert shown <= served, sorted(shown - served)
    missing = {pv for pv in served - shown if not pv.endswith(OFF_SCREEN_SUFFIXES)}
    assert not missing, sorted(missing)
    assert f"{PREFIX}Frame:MaxSizeX_RBV" in shown


def test_maps_have_the_scan_shape_and_autoscale(screens: dict[str, ET.Element]) -> None:
    images = {
        node.findtext("pv_name"): node
        for node in _widgets(screens["maps.bob"])
        if node.get("type") == "image"
    }
    maps = [f"{PREFIX}{n}:Map" for n in (1, 2, 3)] + [f"{PREFIX}Frame:Map", f"{PREFIX}Frame:MaxMap"]
    assert sorted(images) == sorted(maps)
    for node in images.values():
        assert node.findtext("data_width") == "30"  # scan.shape cols
        assert node.findtext("data_height") == "20"  # scan.shape rows
        assert node.findtext("autoscale") == "true"
        assert node.find("rules") is None  # the geometry is fixed by the config


def test_maps_without_scan_shape_follow_the_map_size_pvs(tmp_path: Path) -> None:
    config = _config(scan={"shape": None}, publish={"time_series_length": 500})
    rows, cols = map_shape(config)
    assert (rows, cols) == (1, 500)
    root = parse(write_screens(config, tmp_path)[2])
    images = [node for node in _widgets(root) if node.get("type") == "image"]
    assert len(images) == 5
    for node in images:
        assert (node.findtext("data_width"), node.findtext("data_height")) == ("500", "1")
        rules = {r.get("prop_id"): r.findtext("pv_name") for r in node.iter("rule")}
        assert rules == {
            "data_width": f"{PREFIX}MapSizeX_RBV",
            "data_height": f"{PREFIX}MapSizeY_RBV",
        }


def test_live_image_and_plots(screens: dict[str, ET.Element]) -> None:
    live = screens["live.bob"]
    (image,) = [node for node in _widgets(live) if node.get("type") == "image"]
    assert image.findtext("pv_name") == f"{PREFIX}Image"
    assert live_image_size(_config()) == (304, 484)  # 1216 x 1936 binned by 4
    assert (image.findtext("data_width"), image.findtext("data_height")) == ("484", "304")
    assert {r.get("prop_id"): r.findtext("pv_name") for r in image.iter("rule")} == {
        "data_width": f"{PREFIX}ImageSizeX_RBV",
        "data_height": f"{PREFIX}ImageSizeY_RBV",
    }
    (histogram,) = [node for node in _widgets(live) if node.get("type") == "xyplot"]
    (trace,) = histogram.iter("trace")
    assert trace.findtext("x_pv") == f"{PREFIX}HistogramX_RBV"
    assert trace.findtext("y_pv") == f"{PREFIX}Histogram_RBV"
    plots = [node for node in _widgets(screens["series.bob"]) if node.get("type") == "xyplot"]
    assert len(plots) == 1 + 4  # every region's mean, then ROI 1..3 and Frame
    series = {t.findtext("y_pv") for plot in plots for t in plot.iter("trace")}
    for region in ("1:", "2:", "3:", "Frame:"):
        for suffix in ("TSTotal", "TSNet", "TSMinValue", "TSMaxValue", "TSMeanValue"):
            assert f"{PREFIX}{region}{suffix}" in series
    assert all(not t.findtext("x_pv") for plot in plots for t in plot.iter("trace"))


def test_rois_one_row_each_with_setpoints_and_readbacks(screens: dict[str, ET.Element]) -> None:
    rows: dict[int, dict[str, str | None]] = {}  # y -> {pv: widget type}
    for node in _widgets(screens["rois.bob"]):
        pv = node.findtext("pv_name")
        if pv and node.get("type") != "action_button":
            rows.setdefault(_bounds(node)[1], {})[pv] = node.get("type")
    cells = [rows[y] for y in sorted(rows)]
    assert len(cells) == 3 + 1  # the ROIs, then the frame
    stats = ("Total_RBV", "Net_RBV", "MinValue_RBV", "MaxValue_RBV", "MeanValue_RBV")
    for n, row in enumerate(cells[:3], start=1):
        r = f"{PREFIX}{n}:"
        for suffix in ("MinX", "MinY", "SizeX", "SizeY", "BgdWidth"):
            assert row[f"{r}{suffix}"] == "textentry"
            assert row[f"{r}{suffix}_RBV"] == "textupdate"
        assert (row[f"{r}Use"], row[f"{r}Use_RBV"]) == ("combo", "textupdate")
        assert row[f"{r}Name"] == "textentry"
        assert all(row[f"{r}{stat}"] == "textupdate" for stat in stats)
    assert all(cells[3][f"{PREFIX}Frame:{stat}"] == "textupdate" for stat in stats)


def test_reset_button_writes_a_reset_state(screens: dict[str, ET.Element]) -> None:
    writes = [
        (action.findtext("pv_name"), action.findtext("value"))
        for action in screens["index.bob"].iter("action")
        if action.get("type") == "write_pv"
    ]
    assert writes == [(f"{PREFIX}Reset", RESET_VALUE)]
    assert RESET_VALUE in ("1", "Reset")  # state 1 of Reset (Done, Reset)


def test_links_resolve_to_files_written(tmp_path: Path) -> None:
    paths = write_screens(_config(), tmp_path)
    names = {p.name for p in paths}
    for path in paths:
        targets = {
            action.findtext("file")
            for action in ET.parse(path).getroot().iter("action")
            if action.get("type") == "open_display"
        }
        assert targets == names - {path.name}, path.name
        assert all((tmp_path / str(t)).is_file() for t in targets)


def _overlaps(boxes: list[tuple[str, tuple[int, int, int, int]]]) -> list[tuple[str, str]]:
    out = []
    for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in itertools.combinations(boxes, 2):
        if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
            out.append((a, b))
    return out


@pytest.mark.parametrize("rois", [0, 1, 3, 12])
def test_layout_nothing_overlaps_and_groups_hold_their_children(tmp_path: Path, rois: int) -> None:
    config = _config(
        rois=[{"name": f"R{n}", "x": n, "y": n, "width": 4, "height": 4} for n in range(rois)]
    )
    for path in write_screens(config, tmp_path):
        root = parse(path)
        width, height = int(root.findtext("width") or 0), int(root.findtext("height") or 0)
        parents = [(root, width, height, 0)] + [
            (g, *_bounds(g)[2:], 2 * GROUP_INSET)
            for g in _widgets(root)
            if g.get("type") == "group"
        ]
        for parent, w, h, inset in parents:
            boxes = [
                (f"{c.get('type')}:{c.findtext('pv_name') or c.findtext('name')}", _bounds(c))
                for c in parent.findall("widget")
            ]
            assert not _overlaps(boxes), (path.name, _overlaps(boxes)[:3])
            for label, (x, y, cw, ch) in boxes:
                assert x + cw <= w - inset and y + ch <= h - inset, (path.name, label)


@pytest.mark.parametrize(
    ("prefix", "p", "r"),
    [("BL01C-DI-DCAM-01:ROI:", "BL01C-DI-DCAM-01:", "ROI:"), ("T:", "T:", ""),
     ("A:B:C:", "A:B:", "C:")],
)  # fmt: skip
def test_pv_names_use_areadetector_macros(tmp_path: Path, prefix: str, p: str, r: str) -> None:
    """Every PV name is written $(P)$(R)...; each display defines P and R from
    the prefix (areaDetector's split), and expanded they are the served PVs."""
    config = _config(prefix=prefix)
    served = set(pv_names(config))
    for path in write_screens(config, tmp_path / prefix.replace(":", "_")):
        raw = ET.parse(path).getroot()
        holder = raw.find("macros")
        assert holder is not None, path.name
        macros = {child.tag: child.text or "" for child in holder}
        assert macros == {"P": p, "R": r}, path.name
        names = _pvs(raw)
        assert names and all(n.startswith("$(P)$(R)") for n in names), sorted(names)[:5]
        assert prefix not in ET.tostring(raw, encoding="unicode").replace(f"<P>{p}</P>", ""), (
            f"{path.name} writes the prefix out in full"
        )
        expanded = {n.replace("$(P)", p).replace("$(R)", r) for n in names}
        assert expanded <= served, sorted(expanded - served)


def test_fonts_are_phoebus_named_fonts(screens: dict[str, ET.Element]) -> None:
    named = {"Default", "Default Bold", "Header 1", "Header 2", "Header 3", "Comment",
             "Fine Print"}  # fmt: skip
    for name, root in screens.items():
        fonts = [f for f in root.iter("font") if not len(f)]
        assert fonts, name
        for font in fonts:
            assert font.get("name") in named, (name, font.attrib)
