"""Where numba keeps its compiled kernels, decided before numba is imported.

numba caches a ``cache=True`` function in ``__pycache__`` next to its source,
and refuses to decorate it ("cannot cache function ...: no locator
available") when that directory is read-only (a system-wide install, a
container image) and no other place is configured. So when the package
directory is not writable and ``NUMBA_CACHE_DIR`` is not set, this module
sets it to ``$XDG_CACHE_HOME/swmr-roi-ioc/numba`` (``~/.cache`` when unset),
or to a per-user directory under the temporary directory.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent


def _writable(directory: Path) -> bool:
    """``directory`` exists (or can be made) and a file can be created in it:
    numba's own test (``os.access`` says yes to root on a read-only mount)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError:
        return False
    return True


def cache_dir_candidates(environ: dict[str, str] | os._Environ[str]) -> list[Path]:
    """Where to cache, best first: under XDG_CACHE_HOME (or ~/.cache), then tmp."""
    xdg = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    user = f"{os.getuid()}" if hasattr(os, "getuid") else "user"
    return [
        Path(xdg) / "swmr-roi-ioc" / "numba",
        Path(tempfile.gettempdir()) / f"swmr-roi-ioc-numba-{user}",
    ]


def choose_cache_dir(
    environ: dict[str, str] | os._Environ[str], package_dir: Path = _PACKAGE_DIR
) -> str | None:
    """The NUMBA_CACHE_DIR to set, or None to leave numba's own choice
    (the variable is set, or ``__pycache__`` beside the source is writable)."""
    if environ.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(package_dir / "__pycache__"):
        return None
    for candidate in cache_dir_candidates(environ):
        if _writable(candidate):
            return str(candidate)
    return None


def configure() -> None:
    """Set NUMBA_CACHE_DIR when needed; call before numba is imported (and
    again after: numba reads the variable once, at its import)."""
    chosen = choose_cache_dir(os.environ)
    if chosen is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = chosen
    log.debug("the package directory is read-only: numba caches in %s", chosen)
