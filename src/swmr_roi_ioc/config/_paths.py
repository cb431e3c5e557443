"""Only files under data_root are ever opened: the one rule for every path."""

from __future__ import annotations

from pathlib import Path

from swmr_roi_ioc._errors import SwmrRoiError


class PathRefusedError(SwmrRoiError):
    """A path resolves outside data_root; it is never opened."""


def resolve_under(root: str | Path, path: str | Path) -> Path:
    """``path`` (relative paths are taken relative to ``root``) resolved with
    symlinks followed; raises PathRefusedError unless it lies under ``root``."""
    base = Path(root).resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = base / candidate
    resolved = candidate.resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise PathRefusedError(f"{path} resolves to {resolved}, outside data_root {base}")
    return resolved
