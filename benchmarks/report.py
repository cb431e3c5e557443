"""Rows, targets, the printed table and the JSON document."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One measured path: median frames/s of the repeats and ratios; or, for a
    ``live`` row, what was measured as ``text`` (and as numbers in ``values``)."""

    group: str
    key: str
    label: str
    kind: str  # bound | reference | ours | diagnostic | pending | live
    fps: float | None = None
    samples: list[float] = field(default_factory=list)
    other_cores: float | None = None
    cpu_ms: float | None = None
    vs_bound: float | None = None
    vs_swmr_tools: float | None = None
    check: str = ""
    note: str = ""
    text: str = ""
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class Target:
    """A performance target and what this run measured for it."""

    name: str
    measured: float | None
    threshold: float
    better: str  # ">=" or "<="
    detail: str = ""

    @property
    def status(self) -> str:
        if self.measured is None or math.isnan(self.measured):
            return "N/A"
        ok = (
            self.measured >= self.threshold
            if self.better == ">="
            else self.measured <= self.threshold
        )
        return "PASS" if ok else "MISS"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, fmt)


def table(rows: list[Row]) -> str:
    """The result table as fixed-width text."""
    head = (
        "group", "path", "frames/s", "x bound", "x swmr_tools", "cpu ms/f", "other load",
        "check; notes",
    )  # fmt: skip
    lines = [
        (
            r.group,
            r.label,
            _num(r.fps, ",.0f") if r.kind != "pending" else "pending",
            _num(r.vs_bound, ".2f"),
            _num(r.vs_swmr_tools, ".2f"),
            _num(r.cpu_ms, ".2f"),
            _num(r.other_cores, ".2f"),
            "; ".join(x for x in (r.check, r.note) if x),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    widths[-1] = 0

    def fmt(cells: tuple[str, ...]) -> str:
        parts = []
        for k, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            parts.append(cell.rjust(width) if 2 <= k <= 6 else cell.ljust(width))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths[:-1]) + "  -----"
    out = [fmt(head), rule]
    previous = None
    for row, line in zip(rows, lines, strict=True):
        if previous is not None and row.group != previous:
            out.append("")
        out.append(fmt(line))
        previous = row.group
    return "\n".join(out)


def live_table(rows: list[Row]) -> str:
    """The ``live`` rows: group, measurement, result, check and notes."""
    head = ("group", "measurement", "result", "check; notes")
    lines = [(r.group, r.label, r.text, "; ".join(x for x in (r.check, r.note) if x))
             for r in rows]  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    out = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths[:-1]) + "  -----"]  # fmt: skip
    previous = None
    for row, line in zip(rows, lines, strict=True):
        if previous is not None and row.group != previous:
            out.append("")
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        previous = row.group
    return "\n".join(out)


def targets_table(targets: list[Target]) -> str:
    lines = []
    for t in targets:
        value = _num(t.measured, ".2f")
        lines.append(
            f"  [{t.status:4}] {t.name}: {value} (target {t.better} {t.threshold:g}) {t.detail}"
        )
    return "\n".join(lines)


def write_json(path: Path, doc: dict[str, Any], rows: list[Row], targets: list[Target]) -> None:
    doc = dict(doc)
    doc["rows"] = [asdict(r) for r in rows]
    doc["targets"] = [{**asdict(t), "status": t.status} for t in targets]
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
