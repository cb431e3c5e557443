"""The EPICS IOC of one config: the PV table, its put path, its publisher, and
the two servers fed by it (CA: softioc records; PVA: p4p)."""

from __future__ import annotations

import asyncio

from swmr_roi_ioc.config import IocConfig

from ._access import WriteAccess
from ._publisher import Publisher
from ._puts import PutHandler
from ._puts_rules import Controller
from ._pva import PvaServer
from ._pvtable import pv_table
from ._records import CaRecords, start_ca


class Ioc:
    """Everything served for ``config``; :meth:`start` once per process."""

    def __init__(self, config: IocConfig, controller: Controller) -> None:
        self.config = config
        self.specs = pv_table(config)
        self.access = WriteAccess(config.access.write_hosts, config.access.write_users)
        self.ca = CaRecords(config.prefix, self.specs)
        self.publisher = Publisher(self.specs, [self.ca], ca=self.ca)
        #: the one put path: CA records, PVA and any other front end (web page)
        self.puts = PutHandler(config.prefix, self.specs, controller, self.access, self.publisher)
        self.pva: PvaServer | None = None
        if config.pva:
            self.pva = PvaServer(config.prefix, self.specs, self.puts)
            self.publisher.add_sink(self.pva)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the CA server (EPICS base RSRV) in this process, and open the
        PVA PVs; run :meth:`serve_pva` as a task to serve them."""
        start_ca(self.ca, self.access, self.puts.put_from_ca, loop)
        if self.pva is not None:
            self.pva.open()

    async def serve_pva(self) -> None:
        """Serve PVA until cancelled (returns at once without PVA)."""
        if self.pva is None:
            return
        await self.pva.serve()
