"""One lock per cache file, shared by every process using the cache.

The lock *is* the download's temp file: ``.<name>.part`` beside the target, held
with ``fcntl.flock``.  Whoever holds it may write it and rename it over the target;
everyone else waits.  One file per download (not a lock file plus a temp file)
halves the file creations, which dominate small-file syncs.

The kernel drops a flock when its holder dies, so a process killed mid-download
leaves a hidden ``.part`` file that the next holder truncates and reuses; nothing
partial ever appears under the final name.  After a rename the inode we locked is
the target itself, so a waiter re-checks that the path it opened still names the
inode it locked and otherwise tries again.  Waiting never blocks the event loop: a
non-blocking attempt is polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from ..errors import FetchTimeout

__all__ = ["part_path", "part_file_lock", "PartFile"]

_POLL_SECONDS = 0.02


def part_path(target: Path) -> Path:
    """The temp file (and lock) of ``target``."""
    return target.with_name(f".{target.name}.part")


class PartFile:
    """A locked temp file: ``fd`` is open for writing, ``path`` names it while we own it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.inode = os.fstat(fd).st_ino
        #: set once the temp file became the target (saves a stat in :meth:`discard`)
        self.renamed = False

    def owned(self) -> bool:
        """True while ``path`` still names the inode we locked (not yet renamed away)."""
        if self.renamed:
            return False
        try:
            return os.stat(self.path).st_ino == self.inode
        except FileNotFoundError:
            return False

    def discard(self) -> None:
        """Remove the temp file if it is still ours."""
        if self.owned():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    except FileNotFoundError:
        pass
    # The previous holder renamed or removed the file after we opened it: start again.
    os.close(fd)
    return None


@contextlib.asynccontextmanager
async def part_file_lock(target: Path, timeout: float = 600.0) -> AsyncIterator[PartFile]:
    """Hold the download lock of ``target``; yields the locked :class:`PartFile`.

    On exit the temp file is removed unless it was renamed over the target.

    Raises
    ------
    FetchTimeout
        Another process held the lock for longer than ``timeout`` seconds.
    """
    path = part_path(target)
    deadline = time.monotonic() + timeout
    while (fd := _try_lock(path)) is None:
        if time.monotonic() > deadline:
            raise FetchTimeout(f"{target}: another process has been downloading it for more than {timeout:g} s")
        await asyncio.sleep(_POLL_SECONDS)
    part = PartFile(path, fd)
    try:
        yield part
    finally:
        part.discard()
        os.close(fd)  # releases the flock
