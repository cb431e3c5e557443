"""Keys that lag the data: areaDetector's NDAttributeChunk, said in StatusMessage.

NDFileHDF5 flushes its attribute datasets (``/entry/instrument/NDAttributes``,
NDArrayUniqueId among them) only every NDAttributeChunk frames (by default the
whole capture, or 16384), while the frames are flushed every NumFramesFlush.
Configured ``source.keys`` on such a file lag the data's extent by up to a
chunk; ``source.keys_lag`` decides whether the follower waits for them or
follows the extent (the keys confirm frames as they come). Either way the
StatusMessage says so, with the numbers, once the lag lasts.
"""

from __future__ import annotations

import time
from typing import Literal

#: A lag counts once the keys are this many frames behind the extent ...
LAG_FRAMES = 4
#: ... for this many seconds.
LAG_S = 1.0

KeysLagMode = Literal["extent", "wait"]


class KeysLag:
    """Watches configured keys against the extent; says when they lag."""

    def __init__(self, keys: list[str], mode: KeysLagMode) -> None:
        self._keys = keys
        self.mode: KeysLagMode = mode
        self._since: float | None = None

    def describe(self, keys: int | None, extent: int | None, now: float | None = None) -> str:
        """'' or a remark for StatusMessage: keys at ``keys`` of ``extent`` frames."""
        if keys is None or extent is None or extent - keys <= LAG_FRAMES:
            self._since = None
            return ""
        now = time.monotonic() if now is None else now
        if self._since is None:
            self._since = now
        if now - self._since < LAG_S:
            return ""
        names = ", ".join(k.rsplit("/", 1)[-1] for k in self._keys)
        what = (
            "following the extent, the keys confirm frames as they come (source.keys_lag: extent)"
            if self.mode == "extent"
            else "waiting for them (source.keys_lag: wait; 'extent' follows the data)"
        )
        return (
            f"keys lag the data: {names} set for {keys} of {extent} frames written, for "
            f"{now - self._since:.0f} s (areaDetector writes attribute datasets every "
            f"NDAttributeChunk frames); {what}"
        )


def unique_id_lag() -> str:
    """The remark when no keys are configured but NDArrayUniqueId lags."""
    return (
        "NDArrayUniqueId lags the data (areaDetector writes it every NDAttributeChunk "
        "frames): UniqueId_RBV is the frame index + 1 meanwhile"
    )
