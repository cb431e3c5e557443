"""swmr_tools' ``utils``: scan positions, result datasets, NeXus helpers."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from ...follow import open_swmr

__all__ = [
    "append_data",
    "check_file_readable",
    "convert_stack_to_grid",
    "copy_nexus_axes",
    "create_dataset",
    "create_nxdata",
    "create_nxentry",
    "get_position",
    "get_position_snake",
    "get_position_snake_row",
    "get_row_slice",
    "refresh_dataset",
]

_log = logging.getLogger(__name__)


def get_position(index: int, shape: Sequence[int], scan_rank: int) -> tuple[int, ...]:
    """Position of flat ``index`` (C order) over the first ``scan_rank`` dims of ``shape``."""
    return tuple(int(p) for p in np.unravel_index(index, tuple(shape[:scan_rank])))


def get_position_snake_row(
    index: int, shape: Sequence[int], scan_rank: int
) -> tuple[tuple[int, ...], bool]:
    """Position of ``index`` in a snake (boustrophedon) scan, and whether the
    fastest dimension runs backwards there.

    Each dimension after the first runs backwards when the sum of the
    (snaked) positions of the dimensions outside it is odd.
    """
    raster = get_position(index, shape, scan_rank)
    out: list[int] = []
    outer = 0
    backwards = False
    for dim, p in enumerate(raster):
        backwards = dim > 0 and outer % 2 == 1
        here = int(shape[dim]) - 1 - p if backwards else p
        out.append(here)
        outer += here
    return tuple(out), backwards and len(raster) > 1


def get_position_snake(index: int, shape: Sequence[int], scan_rank: int) -> tuple[int, ...]:
    """Position of ``index`` in a snake scan (see :func:`get_position_snake_row`)."""
    return get_position_snake_row(index, shape, scan_rank)[0]


def get_row_slice(index: int, shape: Sequence[int], scan_rank: int) -> tuple[slice, ...]:
    """Slices over the scan dims selecting the whole row that holds ``index``."""
    position = get_position(index, shape, scan_rank)
    slices = [slice(p, p + 1) for p in position[:-1]]
    return (*slices, slice(None))


def create_dataset(
    data: NDArray[Any],
    scan_maxshape: Sequence[int | None],
    fh: h5py.Group,
    path: str,
    **kwargs: Any,
) -> h5py.Dataset:
    """A dataset for one ``data`` per scan point, holding the first point.

    Shape ``(1, ..., 1, *data.shape)``, max shape ``(*scan_maxshape,
    *data.shape)``; chunked per point unless ``data`` is tiny (< 10 values:
    then one chunk spans the scan). ``kwargs`` go to ``create_dataset``.
    """
    scan = tuple(scan_maxshape)
    maxshape = scan + tuple(data.shape)
    shape = (1,) * len(scan) + tuple(data.shape)
    if "chunks" not in kwargs:
        if data.size < 10:
            kwargs["chunks"] = tuple(1 if n is None else n for n in maxshape)
        else:
            kwargs["chunks"] = shape
    return fh.create_dataset(path, data=data.reshape(shape), maxshape=maxshape, **kwargs)


def append_data(data: NDArray[Any], slice_metadata: Sequence[slice], dataset: Any) -> None:
    """Write ``data`` at ``slice_metadata``, growing ``dataset`` if needed."""
    full = (*slice_metadata, *(slice(0, n, 1) for n in data.shape))
    current = tuple(dataset.shape)
    wanted = tuple(max(int(s.stop), c) for s, c in zip(full, current, strict=False))
    if any(w > c for w, c in zip(wanted, current, strict=False)):
        dataset.resize(wanted)
    dataset[full] = data


def copy_nexus_axes(
    nxd_in: h5py.Group, nxd_out: h5py.Group, scan_rank: int, frame_axes: Sequence[str] | None = None
) -> None:
    """Copy the scan axes (datasets, ``*_indices``) of one NXdata to another."""
    axes = ["."] * scan_rank + list(frame_axes or [])
    if "axes" in nxd_in.attrs:
        source: Any = nxd_in.attrs["axes"]
        for dim in range(scan_rank):
            raw = source[dim]
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            axes[dim] = name
            if name in nxd_in:
                nxd_out.copy(nxd_in[name], nxd_out, name)
                indices = f"{name}_indices"
                if indices in nxd_in.attrs:
                    nxd_out.attrs[indices] = nxd_in.attrs[indices]
    nxd_out.attrs["axes"] = axes


def _nexus_group(parent: h5py.Group, name: str, nx_class: str, default: bool) -> h5py.Group:
    group = parent.create_group(name)
    group.attrs["NX_class"] = nx_class
    if default:
        parent.attrs["default"] = name
    return group


def create_nxdata(e: h5py.Group, name: str, default: bool = True) -> h5py.Group:
    """An NXdata group in ``e`` (its default with ``default``)."""
    return _nexus_group(e, name, "NXdata", default)


def create_nxentry(fh: h5py.Group, name: str, default: bool = True) -> h5py.Group:
    """An NXentry group in ``fh`` (its default with ``default``)."""
    return _nexus_group(fh, name, "NXentry", default)


def check_file_readable(
    path: str, datasets: str | Sequence[str], timeout: float = 10, retrys: int = 5
) -> bool:
    """Wait until ``path`` opens as a SWMR reader and holds ``datasets``.

    Tries every ``timeout / retrys`` s for at most ``timeout`` s.
    """
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open_swmr(path) as fh:
                if all(name in fh for name in names):
                    return True
        except OSError as exc:
            _log.debug("%s not readable yet: %s", path, exc)
        if time.monotonic() >= deadline:
            _log.error("Could not read file %s", path)
            return False
        time.sleep(timeout / retrys)


def convert_stack_to_grid(
    slices: Sequence[slice], scan_shape: Sequence[int], snake: bool = False
) -> list[slice]:
    """Slices of a stack point (``slices[0]``) moved onto a scan grid."""
    index = int(slices[0].start)
    rank = len(scan_shape)
    if snake:
        position = get_position_snake(index, scan_shape, rank)
    else:
        position = get_position(index, scan_shape, rank)
    return [slice(p, p + 1, 1) for p in position] + list(slices[1:])


def refresh_dataset(dataset: Any) -> None:
    """``dataset.refresh()`` if it has one (h5py datasets read as SWMR do)."""
    refresh = getattr(dataset, "refresh", None)
    if callable(refresh):
        refresh()
