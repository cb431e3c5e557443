"""At startup: what the config needs of this machine (``config.check_world``,
the same checks as ``swmr-roi-ioc check``), reported through Status and the
log; the source starts once they pass (a data directory mounted late is
picked up)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from swmr_roi_ioc.config import Finding, check_world
from swmr_roi_ioc.publish import Status

from ._state import ServiceState

log = logging.getLogger(__name__)

#: How often a config that cannot work here is checked again.
RECHECK_S = 5.0


def _text(finding: Finding) -> str:
    return f"{'.'.join(str(p) for p in finding.loc)}: {finding.message}"


async def world_ready(state: ServiceState, source: Coroutine[Any, Any, None]) -> None:
    """Run ``source`` once the config's machine checks pass; until then Status
    is Error with the first problem (every problem logged once, at ERROR)."""
    logged: set[str] = set()
    failed = False
    try:
        while True:
            findings = await asyncio.to_thread(check_world, state.config)
            for finding in findings:
                if finding.warning and _text(finding) not in logged:
                    logged.add(_text(finding))
                    log.warning("config: %s", _text(finding))
            errors = [_text(f) for f in findings if not f.warning]
            if not errors:
                break
            failed = True
            for text in errors:
                if text not in logged:
                    logged.add(text)
                    log.error("config cannot work here: %s", text)
            more = f" (and {len(errors) - 1} more, see the log)" if len(errors) > 1 else ""
            state.set_status(
                Status.ERROR, f"Config cannot work here: {errors[0]}{more}; checking again"
            )
            await asyncio.sleep(RECHECK_S)
        if failed:
            log.info("config checks pass now; starting the source")
            # the Error was the checks': the source reports from a clean state
            # (it keeps an Error of its own file while it waits for the next)
            state.set_status(Status.IDLE, "Config checks pass now; starting the source")
    except BaseException:
        source.close()
        raise
    await source
