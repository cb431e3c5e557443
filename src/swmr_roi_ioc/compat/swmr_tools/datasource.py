"""swmr_tools' DataSource, FrameReader and SliceDict on :mod:`swmr_roi_ioc.follow`.

Frames of h5py datasets are read by :class:`swmr_roi_ioc.follow.ChunkReader`
(``read_direct_chunk`` and decompression outside HDF5's lock where the
layout allows, HDF5's own read otherwise), through the caller's own dataset
handle; other array-likes (numpy arrays, test doubles) are sliced.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import h5py
from numpy.typing import NDArray

from ...follow import ChunkReader, FrameIndexError
from ._forms import bind, is_legacy, key_datasets_of
from .keyfollower import KeyFollower
from .utils import append_data, create_dataset, get_position, refresh_dataset

__all__ = ["DataSource", "FrameReader", "SliceDict"]

_log = logging.getLogger(__name__)


class SliceDict(dict[str, Any]):
    """``{name: frame}`` with ``slice_metadata``, ``maxshape`` and ``index``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slice_metadata: Any = None
        self.maxshape: Any = None
        self.index: int | None = None


def _fr09(dataset: Any, scan_rank: int, use_direct_chunk: bool = False) -> None:
    """swmr_tools 0.8+: a dataset."""


def _fr07(
    dataset: str,
    h5file: Any,
    scan_rank: int,
    use_direct_chunk: bool = False,
    cache_datasets: bool = False,
) -> None:
    """swmr_tools 0.7: a dataset path and the open file."""


class FrameReader:
    """Read the frame at a flat (0-based) index: ``(frame, slices)``.

    ``read_frame`` returns the frame with its leading singleton scan
    dimensions (``ds[slices]``) and the slices over the scan dimensions.
    ``FrameReader(dataset, scan_rank, use_direct_chunk=False)``, or the 0.7
    form ``FrameReader(path, h5file, scan_rank)``. h5py datasets always take
    the fast chunk path where the layout allows it; ``use_direct_chunk``
    tells whether they do.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        first = args[0] if args else kwargs.get("dataset")
        if isinstance(first, str):
            a = bind(_fr07, args, kwargs)
            dataset = a["h5file"][a["dataset"]]
        else:
            a = bind(_fr09, args, kwargs)
            dataset = a["dataset"]
        self.dataset = dataset
        self.scan_rank: int = int(a["scan_rank"])
        self._reader: ChunkReader | None = None
        if isinstance(dataset, h5py.Dataset):
            self._reader = ChunkReader(dataset, self.scan_rank, threads=1)
        self.use_direct_chunk = self._reader is not None and self._reader.fast

    @property
    def reader(self) -> ChunkReader | None:
        """The :class:`~swmr_roi_ioc.follow.ChunkReader` of an h5py dataset."""
        return self._reader

    def read_frame(self, index: int, force_refresh: bool = False) -> tuple[Any, tuple[slice, ...]]:
        """The frame at flat ``index`` (with singleton scan dims) and its slices."""
        ds = self.dataset
        if force_refresh:
            refresh_dataset(ds)
        if self._reader is not None:
            reader = self._reader
            position = reader.position(index)
            frame: Any = reader.read_frame(index)
            frame = frame.reshape((1,) * self.scan_rank + frame.shape)
        else:
            position = self.get_pos(index, ds.shape)
            frame = ds[tuple(_slices(position, len(ds.shape)))]
        return frame, tuple(_slices(position, self.scan_rank))

    def get_pos(self, index: int, shape: Any) -> tuple[int, ...]:
        """Position of ``index`` over the scan dimensions of ``shape``."""
        try:
            return tuple(int(p) for p in get_position(index, shape, self.scan_rank))
        except ValueError as exc:
            raise FrameIndexError(f"frame {index} is outside the extent {tuple(shape)}") from exc


def _slices(position: tuple[int, ...], rank: int) -> list[slice]:
    slices = [slice(0, None, 1)] * rank
    for dim, p in enumerate(position[:rank]):
        slices[dim] = slice(p, p + 1)
    return slices


def _ds09(
    key_datasets: Any,
    datasets: Mapping[str, Any] | None,
    timeout: float = 10,
    finished_dataset: Any = None,
    use_direct_chunk: bool = False,
    interleaved_datasets: Mapping[str, Any] | None = None,
) -> None:
    """swmr_tools 0.8+: key datasets, ``{name: dataset}``."""


def _ds07(
    h5file: Any,
    keypaths: Any,
    dataset_paths: Any,
    timeout: float = 10,
    finished_dataset: Any = None,
    cache_datasets: bool = False,
    use_direct_chunk: bool = False,
    interleaved_paths: Any = None,
) -> None:
    """swmr_tools 0.7: an open file, key paths, dataset paths."""


class DataSource:
    """Iterate over complete frames: a :class:`SliceDict` of every dataset's frame.

    ``DataSource(key_datasets, {name: dataset}, timeout=10,
    finished_dataset=None, use_direct_chunk=False, interleaved_datasets=None)``
    or the 0.7 form ``DataSource(h5file, key_paths, dataset_paths, ...)``.
    Indices are 0-based; the keys are followed by
    :class:`swmr_roi_ioc.follow.KeyFollower`, frames read by
    :class:`swmr_roi_ioc.follow.ChunkReader`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if is_legacy(args, kwargs):
            a = bind(_ds07, args, kwargs)
            h5file = a["h5file"]
            keys: list[Any] = key_datasets_of(h5file, a["keypaths"])
            paths = a["dataset_paths"]
            datasets = None if paths is None else {p: h5file[p] for p in paths}
            inter = a["interleaved_paths"]
            interleaved = (
                None if inter is None else {k: [h5file[p] for p in v] for k, v in inter.items()}
            )
            finished = a["finished_dataset"]
            if isinstance(finished, str):
                finished = h5file[finished]
        else:
            a = bind(_ds09, args, kwargs)
            keys = list(a["key_datasets"])
            datasets = a["datasets"]
            interleaved = a["interleaved_datasets"]
            finished = a["finished_dataset"]
        self.kf = KeyFollower(keys, a["timeout"], finished)
        self.kf.check_datasets()
        if datasets is None and interleaved is None:
            raise RuntimeError("No data specified to follow!")
        rank = self.kf.scan_rank
        direct = bool(a["use_direct_chunk"])
        self.frame_readers: dict[str, FrameReader] = {
            name: FrameReader(ds, rank, use_direct_chunk=direct)
            for name, ds in (datasets or {}).items()
        }
        self.interleaved_frame_readers: dict[str, list[FrameReader]] = {
            name: [FrameReader(ds, rank, use_direct_chunk=direct) for ds in group]
            for name, group in (interleaved or {}).items()
        }
        self.max_index = -1

    def __iter__(self) -> DataSource:
        return self

    def __next__(self) -> SliceDict:
        index = next(self.kf)
        refresh = index > self.max_index
        if refresh:
            self.max_index = self.kf.current_max
        output = SliceDict()
        output.maxshape = self.kf.maxshape
        output.index = index
        for name, reader in self.frame_readers.items():
            frame, slices = reader.read_frame(index, force_refresh=refresh)
            output[name] = frame
            if output.slice_metadata is None:
                output.slice_metadata = slices
        for name, readers in self.interleaved_frame_readers.items():
            n = len(readers)
            frame, slices = readers[index % n].read_frame(index // n, force_refresh=refresh)
            output[name] = frame
            if output.slice_metadata is None:
                output.slice_metadata = (slice(index, index + 1), *slices[1:])
        return output

    def reset(self) -> None:
        """Start again from frame 0 (the keys are read again)."""
        self.kf.reset()
        self.max_index = -1

    def create_dataset(self, data: NDArray[Any], fh: h5py.Group, path: str) -> h5py.Dataset:
        """A result dataset for ``data`` per scan point (see :func:`utils.create_dataset`)."""
        return create_dataset(data, self.kf.maxshape, fh, path)

    def append_data(self, data: NDArray[Any], slice_metadata: Any, dataset: h5py.Dataset) -> None:
        """Write ``data`` of one scan point (see :func:`utils.append_data`)."""
        append_data(data, slice_metadata, dataset)

    def is_scan_finished(self) -> bool:
        """True once the finished dataset read non-zero."""
        return self.kf.finished_set

    def has_timed_out(self) -> bool:
        """True if the last iteration ended without the finished flag."""
        return self.kf.timed_out
