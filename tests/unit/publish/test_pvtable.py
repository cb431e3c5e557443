"""The PV table is the one description of every PV: the README's PV table, the
ophyd-async device and the sources agree with it (the screens: test_screens)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from swmr_roi_ioc.config import parse_config
from swmr_roi_ioc.publish import Kind, pv_names, pv_table

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src" / "swmr_roi_ioc"
PREFIX = "BL01C-DI-DCAM-01:ROI:"


def _config(rois: int = 2):  # noqa: ANN202
    regions = "".join(
        f"  - {{name: ROI{n}, x: 1, y: 2, width: 3, height: 4}}\n" for n in range(1, rois + 1)
    )
    return parse_config(f'ioc_name: t\nprefix: "{PREFIX}"\ndata_root: /data\nrois:\n{regions}')


def _leaf(suffix: str) -> str:
    """'1:Total_RBV' -> 'Total_RBV' (the name within its region)."""
    return suffix.rsplit(":", 1)[-1]


def test_names_are_unique_and_prefixed() -> None:
    names = pv_names(_config())
    assert len(names) == len(set(names))
    assert all(n.startswith(PREFIX) for n in names)
    suffixes = {s.suffix for s in pv_table(_config())}
    for new in ("PutError_RBV", "RunUid_RBV", "PlanName_RBV", "RunProgress_RBV"):
        assert new in suffixes


def test_every_region_has_the_same_pvs() -> None:
    specs = pv_table(_config(rois=3))
    per_roi = [{_leaf(s.suffix) for s in specs if s.suffix.startswith(f"{n}:")} for n in (1, 2, 3)]
    assert per_roi[0] == per_roi[1] == per_roi[2]
    frame = {_leaf(s.suffix) for s in specs if s.suffix.startswith("Frame:")}
    stats = {"Total_RBV", "Net_RBV", "MinValue_RBV", "MaxValue_RBV", "MeanValue_RBV", "Map"}
    assert stats <= frame and stats <= per_roi[0]


def test_only_setpoints_are_writable() -> None:
    for spec in pv_table(_config()):
        assert spec.writable == spec.kind.writable, spec.suffix
        assert spec.writable == (not spec.suffix.endswith("_RBV") and spec.kind.writable)


def _readme_names() -> tuple[set[str], set[str]]:
    """(whole-IOC suffixes, per-region suffixes) named in the README's PV tables."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## PVs") : text.index("### Retroactive")]
    ioc = set(re.findall(r"`P:([A-Za-z_]+)`", section))
    for base in re.findall(r"`P:(Hist\w+)`[^|]*\(\+`_RBV`\)", section):
        ioc.add(base + "_RBV")
    for base in ("HistSize", "HistMin", "HistMax"):
        if base in ioc:
            ioc.add(base + "_RBV")
    region: set[str] = set()
    for row in re.findall(r"^\| (`[^|]*`) \|", section, re.MULTILINE):
        names = re.findall(r"`([A-Za-z_.]+)`", row)
        region.update(n for n in names if not n.startswith("P:"))
    for n in list(region):
        if n == "..._RBV":
            region.discard(n)
    if "MinX" in region:  # "MinX, MinY, SizeX, SizeY, BgdWidth / ..._RBV"
        region |= {f"{g}_RBV" for g in ("MinX", "MinY", "SizeX", "SizeY", "BgdWidth")}
    region |= set(re.findall(r"`P:Frame:(\w+)`", section))
    region |= set(re.findall(r"`(MaxMap\w+)`", section))
    return ioc, region


def test_readme_names_every_pv_of_the_table() -> None:
    ioc, region = _readme_names()
    specs = pv_table(_config())
    table_ioc = {s.suffix for s in specs if ":" not in s.suffix}
    table_region = {_leaf(s.suffix) for s in specs if ":" in s.suffix}
    assert table_ioc == ioc, (sorted(table_ioc - ioc), sorted(ioc - table_ioc))
    assert table_region == region, (sorted(table_region - region), sorted(region - table_region))


def test_the_ophyd_device_uses_only_served_pvs() -> None:
    pytest.importorskip("ophyd_async")
    from swmr_roi_ioc.ophyd import SwmrRoiIoc

    device = SwmrRoiIoc(PREFIX, num_rois=2, name="roi")
    used: set[str] = set()
    for _, child in _walk(device):
        source = getattr(child, "source", "")
        if isinstance(source, str) and source.startswith("ca://"):
            used.add(source.removeprefix("ca://"))
    assert len(used) > 30
    served = set(pv_names(_config()))
    assert used <= served, sorted(used - served)


def _walk(device: object):  # noqa: ANN202
    for name, child in device.children():  # type: ignore[attr-defined]
        yield name, child
        yield from _walk(child)


def test_no_pv_name_is_spelled_twice_in_the_product() -> None:
    """Outside the table, a name may appear once at most (the screens and the
    ophyd-async device are held against the table by their own tests)."""
    skip = ("_screens", "ophyd", "sim", "detector")  # detector: the camera's own PVs
    sources = [
        p.read_text()
        for p in SRC.rglob("*.py")
        if not any(part.startswith(skip) for part in p.relative_to(SRC).parts)
    ]
    specs = pv_table(_config())
    labels = {c for s in specs for c in s.choices}  # an enum state may share a PV's name
    leaves = {_leaf(s.suffix) for s in specs if s.kind is not Kind.STRINGOUT} - labels
    twice = {}
    for leaf in leaves:
        count = sum(len(re.findall(rf"[\"']{re.escape(leaf)}[\"']", text)) for text in sources)
        if count > 1:
            twice[leaf] = count
    assert not twice, twice
