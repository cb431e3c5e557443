"""What a valid config needs of the machine it runs on: directories, paths.

The schema says whether a config is well formed; these checks say whether it
can work here (``swmr-roi-ioc check`` and the service at startup run them):
``data_root`` exists and is a directory, a fixed ``source.file`` resolves under
it (symlinks followed), ``nexus.directory`` exists and takes new files. Only
the file system is looked at: no HDF5 file is opened here.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._models import IocConfig
from ._paths import PathRefusedError, resolve_under

#: A key path as pydantic's ``loc``: ("source", "file"), ("rois", 0, "x").
Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class Finding:
    """One thing a config needs that the machine (or file) does not give."""

    loc: Loc
    message: str
    #: a warning: it can run, but probably not as meant
    warning: bool = False


def check_world(config: IocConfig) -> list[Finding]:
    """Errors (and warnings) about ``config`` on this machine, in key order."""
    out: list[Finding] = []
    root = Path(config.data_root)
    root_ok = False
    if not root.exists():
        out.append(Finding(("data_root",), f"{root} does not exist (no file could be opened)"))
    elif not root.is_dir():
        out.append(Finding(("data_root",), f"{root} is not a directory"))
    elif not os.access(root, os.R_OK | os.X_OK):
        out.append(Finding(("data_root",), f"{root} cannot be read by this user"))
    else:
        root_ok = True
    file = config.source.file
    if file is not None and root_ok:
        try:
            resolve_under(root, file)
        except PathRefusedError as exc:
            out.append(Finding(("source", "file"), f"{exc}: it would never be opened"))
    out.extend(_nexus(config))
    return out


def _nexus(config: IocConfig) -> list[Finding]:
    directory = config.nexus.directory
    if directory is None:
        return []
    loc: Loc = ("nexus", "directory")
    path = Path(directory)
    if not path.is_absolute():
        path = path.resolve()
        out = [Finding(loc, f"relative: taken from the working directory, {path}", warning=True)]
        return out + _nexus_dir(loc, path)
    return _nexus_dir(loc, path)


def _nexus_dir(loc: Loc, path: Path) -> list[Finding]:
    if not path.exists():
        return [Finding(loc, f"{path} does not exist (no NeXus file could be written)")]
    if not path.is_dir():
        return [Finding(loc, f"{path} is not a directory")]
    try:  # a real write: permissions, read-only mounts and full disks alike
        with tempfile.NamedTemporaryFile(dir=path, prefix=".swmr-roi-ioc-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return [Finding(loc, f"{path} does not take new files ({reason})")]
    return []
