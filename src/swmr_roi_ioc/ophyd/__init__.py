"""ophyd-async devices for this IOC, for bluesky plans (``pip install swmr-roi-ioc[ophyd]``).

Client side only: nothing of the IOC imports this package.
"""

from ._device import IocStatus, SwmrRoiFrame, SwmrRoiIoc, SwmrRoiRegion

__all__ = ["IocStatus", "SwmrRoiFrame", "SwmrRoiIoc", "SwmrRoiRegion"]
