"""ROIs clamped to nothing: outside the frame, said in StatusMessage.

NDPluginROIStat clamps a region that starts past the frame to one pixel at
its edge; the numbers then look plausible but are not of the region asked
for. Such a ROI's statistics carry a MINOR alarm
(``RegionSnapshot.outside``) and StatusMessage names it with the frame size.
"""

from __future__ import annotations

from collections.abc import Sequence

from swmr_roi_ioc.publish import Geometry
from swmr_roi_ioc.stats import Roi, roi_outside


def outside(geometries: Sequence[Geometry], frame_shape: tuple[int, int]) -> list[bool]:
    """Per ROI: in use and outside a frame of ``frame_shape`` (H, W)."""
    if min(frame_shape) <= 0:
        return [False] * len(geometries)
    return [
        g.use and roi_outside(Roi(g.x, g.y, g.width, g.height), frame_shape) for g in geometries
    ]


def outside_remark(
    names: Sequence[str], flags: Sequence[bool], frame_shape: tuple[int, int]
) -> str:
    """'' or the StatusMessage remark naming the ROIs outside the frame."""
    pairs = enumerate(zip(names, flags, strict=True))
    which = [f"{i + 1} ({name})" for i, (name, out) in pairs if out]
    if not which:
        return ""
    height, width = frame_shape
    rois = "ROI " + ", ".join(which) if len(which) == 1 else "ROIs " + ", ".join(which)
    return (
        f"{rois} outside the {width} x {height} frame: clamped to one pixel at its edge "
        "(MINOR alarm on the statistics)"
    )
