"""Watch an areaDetector NDFileHDF5 plugin over Channel Access (aioca)."""

from ._watcher import PLUGIN_PVS, PluginState, PluginWatcher

__all__ = ["PLUGIN_PVS", "PluginState", "PluginWatcher"]
