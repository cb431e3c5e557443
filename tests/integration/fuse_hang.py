"""A read-only FUSE passthrough whose reads block while a flag file exists:
a file server that hangs, made real (as a stuck NFS mount: read() does not
return). Run: ``python fuse_hang.py SOURCE_DIR MOUNTPOINT FLAG_FILE``.

``direct_io`` and ``attr_timeout=0``: every read and every stat reaches this
process (no page cache), so a hang reaches the reader at once.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import Any

import mfusepy


class HangingPassthrough(mfusepy.Operations):
    use_ns = True

    def __init__(self, root: str, flag: str) -> None:
        self.root = root
        self.flag = flag

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        try:
            st = os.lstat(self._full(path))
        except OSError as exc:
            raise mfusepy.FuseOSError(exc.errno or errno.EIO) from exc
        keys = ("st_mode", "st_nlink", "st_size", "st_uid", "st_gid", "st_ino")
        out: dict[str, Any] = {k: getattr(st, k) for k in keys}
        for k in ("st_atime", "st_mtime", "st_ctime"):
            out[k] = getattr(st, k + "_ns")
        return out

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._full(path))]

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise mfusepy.FuseOSError(errno.EROFS)
        return os.open(self._full(path), os.O_RDONLY)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        while os.path.exists(self.flag):  # the file server does not answer
            time.sleep(0.05)
        return os.pread(fh, size, offset)

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0


def main() -> None:
    source, mountpoint, flag = sys.argv[1:4]
    mfusepy.FUSE(
        HangingPassthrough(source, flag), mountpoint, foreground=True, ro=True,
        direct_io=True, attr_timeout=0, entry_timeout=0, negative_timeout=0,
    )  # fmt: skip


if __name__ == "__main__":
    main()
