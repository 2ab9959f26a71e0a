"""One lock per cache file, shared by every process using the cache.

The lock is ``fcntl.flock`` on ``<target>.lock`` beside the target, the same file
the reference client (crds 14.0.3, ``filelock``) locks, so both cooperate.  The
lock file is removed while still held; a waiter that then wins a lock on the
unlinked inode notices (the path no longer names its inode) and tries again.
Waiting never blocks the event loop: a non-blocking attempt is polled.
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

__all__ = ["lock_path", "file_lock"]

_POLL_SECONDS = 0.02


def lock_path(target: Path) -> Path:
    """The lock file guarding ``target``."""
    return target.with_name(target.name + ".lock")


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
    # The previous holder removed the file after we opened it: our lock guards nothing.
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return None


@contextlib.asynccontextmanager
async def file_lock(target: Path, timeout: float = 600.0) -> AsyncIterator[None]:
    """Hold the per-file lock of ``target`` for the body of an ``async with``.

    Raises
    ------
    FetchTimeout
        Another process held the lock for longer than ``timeout`` seconds.
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while (fd := _try_lock(path)) is None:
        if time.monotonic() > deadline:
            raise FetchTimeout(f"{target}: another process has held {path.name} for more than {timeout:g} s")
        await asyncio.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
