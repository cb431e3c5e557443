"""Fixtures of the integration tests: a simulated camera process, a RunEngine."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioca import purge_channel_caches
from bluesky import RunEngine

from tests.conftest import Process, camera_env


@pytest.fixture
def camera(tmp_path: Path, processes: list[Process]) -> tuple[str, Path]:
    """A simulated camera process; (PV prefix, its starting FilePath)."""
    prefix = f"T{random.randint(0, 2**31):08x}:DCAM:"
    data = tmp_path / "data"
    data.mkdir()
    code = (
        "import asyncio; from swmr_roi_ioc.sim import run_sim_camera; "
        f"asyncio.run(run_sim_camera({prefix!r}, {str(data)!r}))"
    )
    processes.append(Process([sys.executable, "-c", code], env=camera_env()))
    return prefix, data


@pytest.fixture
def RE() -> Iterator[RunEngine]:  # noqa: N802 - bluesky's name for it
    """A RunEngine on its own loop thread, torn down with its CA channels."""
    loop = asyncio.new_event_loop()
    engine = RunEngine({}, call_returns_result=True, loop=loop)
    yield engine
    if engine.state not in ("idle", "panicked"):
        engine.halt()

    async def purge() -> None:
        purge_channel_caches()
        await asyncio.sleep(0)

    asyncio.run_coroutine_threadsafe(purge(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    engine._th.join(timeout=10)
    loop.close()
