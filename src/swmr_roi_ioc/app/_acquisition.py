"""The acquisition shown now, and the errors reading it can raise.

The file itself is open in a worker process (``swmr_roi_ioc.engine``); the
IOC process holds a :class:`~swmr_roi_ioc.engine.RemoteAcquisition`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from swmr_roi_ioc.engine import RemoteAcquisition

#: Errors reading a file that is being written, replaced or broken (every
#: worker error is an OSError; the rest as a safety net).
READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)
#: Seconds a read that does not return is given before its worker is
#: replaced (engine.stall_timeout's default).
STALL_S = 30.0


class CurrentAcquisition:
    """The acquisition shown now. Once it finished its file is closed (no
    handle is held on a finished file: its writer may recreate the path), and
    opened again only while a ROI change is applied to its frames."""

    def __init__(self) -> None:
        #: the acquisition being followed (open), or the finished one (closed)
        self.acquisition: RemoteAcquisition | None = None
        #: True once the writer finished (no live frames will come)
        self.finished = False

    async def replace(self, acquisition: RemoteAcquisition | None) -> None:
        old, self.acquisition, self.finished = self.acquisition, acquisition, False
        if old is not None and old is not acquisition:
            await old.release()

    async def finish(self) -> None:
        """The writer finished: close the file, keep what is needed to reopen it."""
        self.finished = True
        if self.acquisition is not None:
            await self.acquisition.close()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncGenerator[RemoteAcquisition | None]:
        """A handle to read processed frames again (a ROI change): the
        acquisition itself while it is followed, else its file opened once
        more; None if there is no acquisition. Raises RewrittenError (a
        READ_ERROR) if another file took its place."""
        acq = self.acquisition
        if acq is None or not acq.closed:
            yield acq
            return
        fresh = await acq.reopen()
        try:
            yield fresh
        finally:
            await fresh.close()
