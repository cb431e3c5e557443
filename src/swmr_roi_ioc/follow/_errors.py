"""Exceptions of the SWMR follower."""

from swmr_roi_ioc._errors import SwmrRoiError


class FollowError(SwmrRoiError):
    """The followed file does not hold what was asked for.

    A key, data or finished dataset is missing or vanished, a key path names
    neither a dataset nor a group of datasets, or an HDF5 read kept failing
    after retries.
    """


class SwmrOpenError(FollowError, OSError):
    """The file could not be opened as a SWMR reader.

    Also an :class:`OSError` (``errno`` copied from the HDF5 error), so code
    written against ``h5py.File`` keeps working. Use
    :func:`~swmr_roi_ioc.follow.is_transient` to tell a file under
    construction (retry later) from a hard failure.
    """


class FrameIndexError(FollowError, IndexError):
    """A frame index lies outside the dataset's current extent."""
