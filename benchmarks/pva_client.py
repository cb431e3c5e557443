"""One PVAccess client of the serving benchmark: monitors PVs, counts updates.

    python -m benchmarks.pva_client PV [PV ...]

A p4p (asyncio) client context of its own (one process per client), a monitor of every
PV (whole values, NTNDArrays included); prints ``ready`` once every monitor
has delivered its first value, records the arrival time of every update of
the first ``TIMED`` PVs and counts the updates of every PV. A line on stdin
(or its end) makes it print one JSON line, as ``live_client`` does, and exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from p4p.client.asyncio import Context

TIMED = 2
CONNECT_TIMEOUT = 60.0


async def _run(pvs: list[str]) -> int:
    arrivals: list[list[float]] = [[] for _ in range(TIMED)]
    counts = [0] * len(pvs)
    connected = asyncio.Event()
    waiting = len(pvs)

    def callback(index: int) -> Any:
        async def on_update(value: Any) -> None:
            nonlocal waiting
            if isinstance(value, Exception):
                return
            counts[index] += 1
            if counts[index] == 1:
                waiting -= 1
                if waiting == 0:
                    connected.set()
            elif index < TIMED:
                arrivals[index].append(time.time())

        return on_update

    loop = asyncio.get_running_loop()
    with Context("pva") as ctx:
        subs = [ctx.monitor(pv, callback(i)) for i, pv in enumerate(pvs)]
        try:
            await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            missing = [pv for pv, n in zip(pvs, counts, strict=True) if n == 0]
            print(f"not connected: {missing[:5]} ({len(missing)})", file=sys.stderr, flush=True)
            return 1
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        result = {"arrivals": dict(zip(pvs, arrivals, strict=False)),
                  "counts": dict(zip(pvs, counts, strict=True))}  # fmt: skip
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        del subs
    os._exit(0)  # no teardown: monitors may still be delivering


def main(pvs: list[str]) -> int:
    return asyncio.run(_run(pvs))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
