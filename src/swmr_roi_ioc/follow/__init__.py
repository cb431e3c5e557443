"""SWMR follower library: follow an HDF5 file while it is written (h5py only).

- :func:`open_swmr` opens a file as a SWMR reader (compression filters
  registered, transient errors of a file under construction retried).
- :class:`KeyFollower` yields the flat index of every complete frame, in
  order, sync or async; a frame is complete when all key datasets are
  non-zero there, or (without keys) when the data's extent covers it and its
  chunk is written.
- :class:`FrameReader` reads frames, regions and batches by flat index.
- :class:`DataSource` combines both and yields the frames of every dataset.
- :class:`ChunkReader` reads frames chunk by chunk (``read_direct_chunk``),
  decompressing LZ4 / bitshuffle-LZ4 / Blosc outside the HDF5 lock in
  parallel, with HDF5's own read as the fallback.
- :class:`BlockStream` streams blocks of frames read ahead by background
  threads into a bounded buffer pool (multitables' Streamer), following a
  file being written; :class:`BlockGuard` hands out one block.
- :class:`RandomReader` reads arbitrary frame sets in the background and
  returns futures (multitables' Reader).
- :func:`shared_dataset` hands out the one ``h5py.Dataset`` per object: with
  HDF5 2.0.0 a dataset open twice in a process reads garbage once either is
  refreshed, so code reading a followed file gets its datasets there.

The API mirrors swmr_tools (KeyFollower, FrameReader, DataSource), with
0-based indices.
"""

from ._chunks import ChunkReader, codec_available
from ._datasource import DataSource, SliceDict
from ._errors import FollowError, FrameIndexError, SwmrOpenError
from ._follower import KeyFollower
from ._frames import FrameReader, Region
from ._random import RandomReader
from ._stream import BlockGuard, BlockStream
from ._swmr import NotSwmrError, is_transient, open_swmr, refresh, shared_dataset

__all__ = [
    "BlockGuard",
    "BlockStream",
    "ChunkReader",
    "DataSource",
    "FollowError",
    "FrameIndexError",
    "FrameReader",
    "KeyFollower",
    "NotSwmrError",
    "RandomReader",
    "Region",
    "SliceDict",
    "SwmrOpenError",
    "codec_available",
    "is_transient",
    "open_swmr",
    "refresh",
    "shared_dataset",
]
