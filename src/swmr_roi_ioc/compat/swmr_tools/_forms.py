"""The two call forms swmr_tools has had: 0.7 ``(h5file, paths, ...)`` and 0.8+ datasets."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import h5py

from ...follow._keys import resolve_keys

__all__ = ["absolute", "bind", "is_legacy", "key_datasets_of"]


def bind(
    form: Callable[..., None], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments of a call as ``form`` names them (defaults applied)."""
    bound = inspect.signature(form).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def is_legacy(args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """True for the 0.7 form: an open file (or group) first."""
    first = args[0] if args else kwargs.get("h5file")
    return isinstance(first, h5py.Group)


def absolute(group: h5py.Group, path: str) -> str:
    """``path`` relative to ``group`` as a path from the file's root."""
    if path.startswith("/") or group.name in (None, "/"):
        return path
    return f"{group.name}/{path}"


def key_datasets_of(h5file: h5py.Group, key_paths: str | Sequence[str]) -> list[h5py.Dataset]:
    """The key datasets of 0.7 key paths (a group contributes each dataset in it)."""
    paths = [key_paths] if isinstance(key_paths, str) else list(key_paths)
    return [d for _, d in resolve_keys(h5file.file, [absolute(h5file, p) for p in paths])]
