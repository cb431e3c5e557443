"""Only files under data_root are ever opened (the rule lives with the config)."""

from swmr_roi_ioc.config import PathRefusedError, resolve_under

__all__ = ["PathRefusedError", "resolve_under"]
