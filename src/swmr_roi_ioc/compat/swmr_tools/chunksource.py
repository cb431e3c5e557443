"""swmr_tools' ChunkSource: whole chunks of a stack, as they are written."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import h5py

from ...follow import ChunkReader
from .datasource import SliceDict
from .utils import refresh_dataset

__all__ = ["ChunkSource"]

_log = logging.getLogger(__name__)


class ChunkSource:
    """Iterate over the chunks (along the first axis) of ``{name: dataset}``.

    Each step yields a :class:`SliceDict` ``{name: block}`` of one chunk of
    every dataset, ``index`` its first frame. A chunk is delivered once it
    is written (allocated in the file) and inside the extent of every
    dataset; frames are read by :class:`swmr_roi_ioc.follow.ChunkReader`.
    Iteration stops ``timeout`` s after the last new chunk, when
    ``finished_dataset`` reads non-zero, or at once after the last chunk of
    datasets with a fixed max shape (swmr_tools waits for the timeout).
    Every dimension but the first must be one whole chunk.
    """

    def __init__(
        self,
        datasets: Mapping[str, h5py.Dataset],
        timeout: float = 10,
        finished_dataset: h5py.Dataset | None = None,
    ) -> None:
        for ds in datasets.values():
            chunks = ds.chunks
            if chunks is None or tuple(ds.shape[1:]) != tuple(chunks[1:]):
                raise RuntimeError(f"Chunk {ds.chunks} and shape {ds.shape} not compatible")
        self._datasets = dict(datasets)
        self.timeout = timeout
        self.finished_dataset = finished_dataset
        self.finished_set = False
        firsts = [(ds.maxshape or ds.shape)[0] for ds in self._datasets.values()]
        sizes = [int(m) for m in firsts if m is not None]
        self.max_size: int | None = min(sizes) if sizes else None
        first = next(iter(self._datasets.values()))
        assert first.chunks is not None
        self.chunk_size = int(first.chunks[0])
        self.current_index = 0
        self._readers = {n: ChunkReader(ds, 1, threads=1) for n, ds in self._datasets.items()}

    def __iter__(self) -> ChunkSource:
        return self

    def _chunk_ready(self, k: int) -> bool:
        start = k * self.chunk_size
        for ds in self._datasets.values():
            if ds.shape[0] <= start:
                return False
            info = ds.id.get_chunk_info_by_coord((start,) + (0,) * (ds.ndim - 1))
            if info.byte_offset is None:
                return False
        return True

    def _past_end(self, k: int) -> bool:
        return self.max_size is not None and k * self.chunk_size >= self.max_size

    def _check_finished(self) -> None:
        ds = self.finished_dataset
        if ds is None or self.finished_set:
            return
        refresh_dataset(ds)
        if ds.size != 1:
            _log.warning("finished dataset %s holds %d values, not 1: ignored", ds.name, ds.size)
            return
        self.finished_set = bool(ds[()].reshape(-1)[0] != 0) if ds.ndim else bool(ds[()] != 0)

    def __next__(self) -> SliceDict:
        k = self.current_index
        if self._past_end(k):
            raise StopIteration
        deadline = time.monotonic() + self.timeout
        while not self._chunk_ready(k):
            self._check_finished()
            for ds in self._datasets.values():
                refresh_dataset(ds)
            if self._chunk_ready(k):
                break
            if self.finished_set or time.monotonic() >= deadline:
                raise StopIteration
            time.sleep(min(self.timeout / 20.0, 0.05))
        return self._output(k)

    def _output(self, k: int) -> SliceDict:
        start = k * self.chunk_size
        stop = start + self.chunk_size
        if self.max_size is not None:
            stop = min(stop, self.max_size)
        output = SliceDict()
        output.index = start
        output.slice_metadata = [slice(start, stop)]
        output.maxshape = [self.max_size]
        for name, reader in self._readers.items():
            ds = self._datasets[name]
            output[name] = reader.read_frames(start, min(stop, int(ds.shape[0])))
        self.current_index += 1
        return output
