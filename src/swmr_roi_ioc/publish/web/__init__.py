"""The live page in a browser: maps, image with the ROIs, histogram, status
(Bokeh's server in the IOC's event loop). Imported only when ``web.enabled``."""

from ._adapter import ControllerPutPath
from ._feed import ImageView, MapView, PageData, PageState, PutPath, RoiBox, page_data
from ._server import WebPage, page_url

__all__ = [
    "ControllerPutPath",
    "ImageView",
    "MapView",
    "PageData",
    "PageState",
    "PutPath",
    "RoiBox",
    "WebPage",
    "page_data",
    "page_url",
]
