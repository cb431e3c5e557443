"""Drop-in interfaces of other SWMR libraries, built on :mod:`swmr_roi_ioc.follow`.

- :mod:`swmr_roi_ioc.compat.swmr_tools`: swmr_tools 0.9 (``KeyFollower``,
  ``RowKeyFollower``, ``DataSource``, ``FrameReader``, ``ChunkSource``,
  ``utils``, ``chunk_utils``), also taking the 0.7 ``(h5file, paths)`` form.
- :mod:`swmr_roi_ioc.compat.multitables`: multitables 2 (``Streamer``,
  ``Reader``, ``RequestPool``) for HDF5 files read with h5py.

A script written for either library runs on ours by changing its import
(``from swmr_roi_ioc.compat import swmr_tools``); docs/compat.md lists what
differs and why.
"""

__all__: list[str] = []
