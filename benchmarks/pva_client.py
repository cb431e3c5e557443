"""One PVAccess client of the serving benchmark: monitors PVs, counts updates.

    python -m benchmarks.pva_client PV [PV ...]

A p4p client context of its own (one process per client), a monitor of every
PV (whole values, NTNDArrays included); prints ``ready`` once every monitor
has delivered its first value, records the arrival time of every update of
the first ``TIMED`` PVs and counts the updates of every PV. A line on stdin
(or its end) makes it print one JSON line, as ``live_client`` does, and exit.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from p4p.client.thread import Context

TIMED = 2
CONNECT_TIMEOUT = 60.0


def main(pvs: list[str]) -> int:
    arrivals: list[list[float]] = [[] for _ in range(TIMED)]
    counts = [0] * len(pvs)
    first = threading.Semaphore(0)

    def callback(index: int) -> Any:
        def on_update(value: Any) -> None:
            if isinstance(value, Exception):
                return
            counts[index] += 1
            if counts[index] == 1:
                first.release()
            elif index < TIMED:
                arrivals[index].append(time.time())

        return on_update

    ctx = Context("pva")
    subs = [ctx.monitor(pv, callback(i), notify_disconnect=True) for i, pv in enumerate(pvs)]
    deadline = time.monotonic() + CONNECT_TIMEOUT
    for _ in pvs:
        if not first.acquire(timeout=max(0.0, deadline - time.monotonic())):
            missing = [pv for pv, n in zip(pvs, counts, strict=True) if n == 0]
            print(f"not connected: {missing[:5]} ({len(missing)})", file=sys.stderr, flush=True)
            return 1
    print("ready", flush=True)
    sys.stdin.readline()
    result = {"arrivals": dict(zip(pvs, arrivals, strict=False)),
              "counts": dict(zip(pvs, counts, strict=True))}  # fmt: skip
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    del subs
    os._exit(0)  # no teardown: monitors may still be delivering


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
