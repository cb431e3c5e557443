"""Fixtures of the follower tests: real SWMR writer processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .swmr_writer import Writer, WriterConfig


@pytest.fixture
def start_writer(tmp_path: Path) -> Iterator[Callable[..., Writer]]:
    """Start a writer process (see swmr_writer.py); all are stopped at the end."""
    writers: list[Writer] = []

    def start(**kwargs: Any) -> Writer:
        kwargs.setdefault("path", str(tmp_path / f"live{len(writers)}.h5"))
        writer = Writer(WriterConfig(**kwargs))
        writers.append(writer)
        return writer

    yield start
    for writer in writers:
        writer.close()
