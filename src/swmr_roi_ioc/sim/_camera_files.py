"""What the simulated NDFileHDF5 plugin does with paths and settings, as ADCore does.

- ``FilePath`` gets a trailing separator (``checkPath``); ``CreateDirectory``
  creates missing directories (``createFilePath``): ``N > 0`` means the first
  N components must exist, ``N < 0`` that the last ``-N`` may be created;
- ``FullFileName_RBV`` is ``FileTemplate`` formatted C-style with
  ``(FilePath, FileName, FileNumber)``, e.g. ``"%s%s_%6.6d.h5"``;
- the plugin's PVs become the :class:`SimOptions` of the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from swmr_roi_ioc.sim._options import MAX_ATTRIBUTE_CHUNK, SimError, SimOptions

#: ADCore NDFileHDF5.template Compression (ophyd-async ADCompression, a StrictEnum).
COMPRESSIONS = ["None", "N-bit", "szip", "zlib", "Blosc", "BSLZ4", "LZ4", "JPEG"]
#: The ones the simulated writer can write, by SimOptions name.
_SIMULATED_COMPRESSIONS = {"None": "none", "LZ4": "lz4", "BSLZ4": "bslz4", "Blosc": "blosc"}
#: ``NumFramesFlush`` <= 0: the data is only flushed by FlushNow and at close.
_NEVER = 2**31 - 1


def with_separator(path: str) -> str:
    """ADCore's ``checkPath``: a directory path ends with a separator."""
    if path and not path.endswith(("/", "\\")):
        return path + "/"
    return path


def directory_usable(path: str) -> bool:
    """``FilePathExists_RBV``: the directory exists and is writable."""
    return bool(path) and os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def create_directory(path: str, depth: int) -> None:
    """ADCore's ``createFilePath`` for ``CreateDirectory`` = ``depth``.

    ``0`` creates nothing; ``N > 0``: the first N components of ``path`` must
    exist, the rest is created; ``N < 0``: at most the last ``-N`` components
    are created. Raises SimError when that is not possible.
    """
    if depth == 0 or not path:
        return
    target = Path(path)
    if target.is_dir():
        return
    parts = target.parts[1:] if target.is_absolute() else target.parts
    keep = depth if depth > 0 else len(parts) + depth
    base = Path(target.anchor, *parts[: max(keep, 0)])
    if not base.is_dir():
        raise SimError(f"cannot create {path}: {base} does not exist (CreateDirectory={depth})")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimError(f"cannot create {path}: {exc}") from exc


def full_file_name(template: str, path: str, name: str, number: int) -> str:
    """``FileTemplate`` % (FilePath, FileName, FileNumber), as ``epicsSnprintf``."""
    try:
        return template % (path, name, number)
    except TypeError:
        pass  # fewer conversions than arguments: C ignores the extra ones
    try:
        try:
            return template % (path, name)
        except TypeError:
            return template % (path,)
    except (TypeError, ValueError) as exc:
        raise SimError(f"FileTemplate {template!r} does not format: {exc}") from exc


@dataclass(frozen=True)
class FileSettings:
    """The plugin PVs that shape the file, read when it is opened."""

    num_capture: int = 0
    num_frames_flush: int = 1
    nd_attribute_chunk: int = 0
    num_extra_dims: int = 0
    extra_dim_size_n: int = 1
    extra_dim_size_x: int = 1
    compression: str = "None"
    swmr: bool = True

    def options(self, shape: tuple[int, int], dtype: str) -> SimOptions:
        """The writer options for frames of ``shape`` and ``dtype``."""
        compression = _SIMULATED_COMPRESSIONS.get(self.compression)
        if compression is None:
            raise SimError(f"Compression {self.compression} is not simulated")
        capture = self.num_capture if self.num_capture > 0 else MAX_ATTRIBUTE_CHUNK
        if self.num_extra_dims == 0:
            scan = None
            frames = capture
        elif self.num_extra_dims == 1:
            # dims (ExtraDimSizeX, ExtraDimSizeN, H, W); N is the fastest
            scan = (max(1, self.extra_dim_size_x), max(1, self.extra_dim_size_n))
            frames = scan[0] * scan[1]
        else:
            raise SimError(f"NumExtraDims={self.num_extra_dims} is not simulated (0 or 1)")
        chunk = self.nd_attribute_chunk
        if chunk <= 0:
            chunk = min(capture, MAX_ATTRIBUTE_CHUNK)
        return SimOptions(
            frames=frames,
            rate_hz=0,
            shape=shape,
            dtype=dtype,
            scan=scan,
            snake=False,
            compression=compression,
            extra_dims=scan is not None,
            num_frames_flush=self.num_frames_flush if self.num_frames_flush > 0 else _NEVER,
            attribute_chunk=chunk,
        )
