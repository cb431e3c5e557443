"""swmr_tools 0.9's interface on :mod:`swmr_roi_ioc.follow`: change one import.

``from swmr_roi_ioc.compat.swmr_tools import KeyFollower, DataSource`` (or
``...swmr_tools.datasource import FrameReader``) runs a swmr_tools script on
our follower and fast chunk reader. Both call forms work: datasets (0.8+)
and ``(h5file, paths)`` (0.7, as in swmr_tools' tutorial; the older
``swmr_tools.KeyFollower.Follower`` too). Indices are 0-based, as
swmr_tools' own tests count. See docs/compat.md for the differences.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import chunk_utils, utils
from .chunksource import ChunkSource
from .datasource import DataSource, FrameReader, SliceDict
from .keyfollower import KeyFollower, RowKeyFollower

__all__ = [
    "ChunkSource",
    "DataSource",
    "FrameReader",
    "KeyFollower",
    "RowKeyFollower",
    "SliceDict",
    "chunk_utils",
    "utils",
]

__version__ = "0.9.0"


class _Package(types.ModuleType):
    """Keeps ``KeyFollower`` the class when the old ``KeyFollower`` module is imported.

    swmr_tools' tutorial imports ``swmr_tools.KeyFollower.Follower`` (a
    module of the 0.3 layout) while 0.7+ export the class ``KeyFollower``;
    importing the submodule would otherwise replace the class here.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "KeyFollower" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
