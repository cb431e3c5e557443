"""The one exception root of the project."""


class SwmrRoiError(Exception):
    """Base of every error this package raises on purpose."""
