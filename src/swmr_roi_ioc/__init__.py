"""Live ROI statistics of an areaDetector SWMR HDF5 file, served as EPICS PVs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("swmr-roi-ioc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
