"""DataSource: a KeyFollower that reads the frame of every dataset for each index."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import h5py
from numpy.typing import NDArray

from ._extent import default_scan_rank
from ._follower import KeyFollower
from ._frames import FrameReader
from ._keys import get_dataset

__all__ = ["DataSource", "SliceDict"]

_log = logging.getLogger(__name__)


class SliceDict(dict[str, NDArray[Any]]):
    """The frames of one complete index, keyed by dataset path.

    As swmr_tools' ``SliceDict``: a dict ``{path: frame}`` with attributes

    - ``index``: the flat frame index (0-based),
    - ``data``: the frames as a list, in ``dataset_paths`` order,
    - ``slice_metadata``: a tuple of ``slice(p, p + 1)`` over the scan
      dimensions, where the frame sits in the dataset,
    - ``position``: the same position as integers,
    - ``maxshape``: the max shape of the scan dimensions (None = unlimited).

    Unlike swmr_tools, frames have no leading singleton scan dimensions.
    """

    def __init__(
        self,
        index: int,
        frames: Sequence[tuple[str, NDArray[Any]]],
        position: tuple[int, ...],
        maxshape: tuple[int | None, ...],
    ) -> None:
        super().__init__(frames)
        self.index = index
        self.data: list[NDArray[Any]] = [frame for _, frame in frames]
        self.position = position
        self.slice_metadata: tuple[slice, ...] = tuple(slice(p, p + 1) for p in position)
        self.maxshape = maxshape


class DataSource:
    """Iterate over complete frames, reading one frame from every dataset.

    A frame is complete when every key is non-zero at its index and every
    data dataset covers it with a written chunk (no keys: the data alone).
    Yields a :class:`SliceDict` per index, in order, with ``for`` or
    ``async for`` (reads then run in a worker thread). Stops like
    :class:`KeyFollower`: after ``timeout`` s without a new frame, when
    ``finished_dataset`` reads non-zero, or when a fixed-size scan is done.

    Example::

        with open_swmr("scan.h5") as f:
            for frames in DataSource(f, [], ["/entry/data/data"], timeout=5):
                total = frames.data[0].sum()
    """

    def __init__(
        self,
        h5file: h5py.File,
        key_paths: Sequence[str],
        dataset_paths: Sequence[str],
        timeout: float = 10.0,
        finished_dataset: str | None = None,
        *,
        scan_rank: int | None = None,
        poll_interval: float = 0.005,
    ) -> None:
        if isinstance(dataset_paths, str):
            dataset_paths = [dataset_paths]
        self.h5file = h5file
        self.dataset_paths = list(dataset_paths)
        if scan_rank is None and self.dataset_paths:
            first = get_dataset(h5file, self.dataset_paths[0], "dataset")
            scan_rank = default_scan_rank(first)
        self.kf = KeyFollower(
            h5file,
            key_paths,
            timeout,
            finished_dataset,
            dataset_paths=self.dataset_paths,
            scan_rank=scan_rank,
            poll_interval=poll_interval,
        )
        self.readers = [FrameReader(p, h5file, self.kf.scan_rank) for p in self.dataset_paths]

    @property
    def complete(self) -> int:
        """Complete frames at the last poll."""
        return self.kf.complete

    @property
    def finished(self) -> bool:
        """True once the scan is known to be finished."""
        return self.kf.finished

    def reset(self) -> None:
        """Start again from frame 0."""
        self.kf.reset()

    def read(self, index: int) -> SliceDict:
        """The frames of flat ``index`` from every dataset (no completeness check)."""
        frames = [(r.dataset_path, r.read_frame(index)) for r in self.readers]
        position = self.readers[0].scan_index(index) if self.readers else (index,)
        return SliceDict(index, frames, position, self.kf.maxshape)

    def __iter__(self) -> DataSource:
        return self

    def __next__(self) -> SliceDict:
        return self.read(next(self.kf))

    def __aiter__(self) -> DataSource:
        return self

    async def __anext__(self) -> SliceDict:
        index = await self.kf.__anext__()
        return await asyncio.to_thread(self.read, index)
