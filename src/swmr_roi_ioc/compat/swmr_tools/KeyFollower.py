# ruff: noqa: N999 - the module name of swmr_tools' tutorial
"""swmr_tools' oldest layout: ``from swmr_tools.KeyFollower import Follower``."""

from .keyfollower import KeyFollower as Follower

__all__ = ["Follower"]
