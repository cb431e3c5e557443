"""At the end of an acquisition: its processed NeXus file, written atomically."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from swmr_roi_ioc.engine import (
    NexusAcquisition,
    NexusRegion,
    WorkerLostError,
    WorkerPool,
    nexus_path,
)
from swmr_roi_ioc.stats import ScanGeometry

from ._paths import PathRefusedError, resolve_under
from ._state import ServiceState

log = logging.getLogger(__name__)


def _placed(values: np.ndarray, scan: ScanGeometry) -> np.ndarray:
    grid = np.full(scan.size, np.nan)
    cells = scan.cells(np.arange(len(values), dtype=np.int64))
    inside = cells >= 0
    grid[cells[inside]] = values[inside]
    return grid.reshape(scan.rows, scan.cols)


def build_record(state: ServiceState, config_text: str) -> NexusAcquisition | None:
    """What the NeXus file holds, from every frame's statistics in ``state``."""
    regions, frames = state.acquisition_record()
    if frames == 0 or not state.file_path:
        return None
    config = state.config
    scan = state.scan
    out: list[NexusRegion] = []
    for record in regions:
        geometry = None
        if record.geometry is not None:
            g = record.geometry
            geometry = {
                "x": g.x,
                "y": g.y,
                "width": g.width,
                "height": g.height,
                "background_width": g.background_width,
            }
        out.append(
            NexusRegion(
                name=record.name,
                series=record.series,
                map=_placed(record.series["total"], scan),
                geometry=geometry,
            )
        )
    frame_max = regions[-1].series["max"]
    return NexusAcquisition(
        source_file=Path(state.file_path),
        dataset=config.source.dataset,
        frames=frames,
        frame_shape=state.frame_shape,
        scan_shape=config.scan.shape,
        snake=config.scan.snake,
        regions=out,
        max_map=_placed(frame_max, scan),
        config_yaml=config_text,
        ioc_name=config.ioc_name,
        started=state.started,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


#: The worker that writes the NeXus file (not the live one, when there are two).
NEXUS_WORKER = 1


async def write_acquisition(state: ServiceState, pool: WorkerPool, config_text: str) -> Path | None:
    """Write the NeXus file of the acquisition in ``state`` (in a worker: it
    needs HDF5); None if nothing to write.

    Errors become a warning in the log and StatusMessage, never a crash."""
    record = build_record(state, config_text)
    if record is None:
        return None
    directory = state.config.nexus.directory
    target = nexus_path(record.source_file, directory)
    try:
        # nothing is ever written outside the configured output directory
        base = Path(directory) if directory else record.source_file.parent
        resolve_under(base.resolve(), target)
        try:
            written = await pool.call(NEXUS_WORKER, "nexus", record, str(target))
        except WorkerLostError:  # its worker was replaced: once more in the new one
            written = await pool.call(NEXUS_WORKER, "nexus", record, str(target))
        written = Path(written)
    except (PathRefusedError, OSError) as exc:
        log.warning("NeXus file for %s not written: %s", record.source_file, exc)
        state.note(f"NeXus file not written: {exc}")
        return None
    log.debug("wrote %s", written)  # publish._nexus logs it at INFO
    state.note(f"NeXus: {written}")
    return written
