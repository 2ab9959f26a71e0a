"""Verified, bounded-parallel downloads into the cache.

For each file: take its per-file lock (:mod:`.locks`: the hidden temp file
``.<name>.part`` beside the target), skip it if a complete copy is already there
(another process may just have finished it), else stream into the temp file while
hashing, check size and sha1 against the server's catalogue, and ``os.replace`` it
into place.  A file under its final name is therefore always complete and
verified; a crash leaves only the hidden temp file, reused by the next holder.
At most ``jobs`` transfers run at once; retries (``CRDS_CLIENT_RETRY_*``) do not
hold a transfer slot while they wait.

Limits, so that no server can hold a transfer or fill the disk: the catalogue's
size is a hard cap (a larger ``Content-Length`` is refused before anything is
written, a body is cut the moment it passes the size); the free space of the
target directory, less what transfers in progress still expect, must hold the
file before it is requested; a minimum rate over a sliding window catches a
trickle that never falls silent long enough for the stall limit; and each file
has an overall deadline, a floor plus its size at the minimum rate.  Each
refusal is one line naming the file, and leaves no temp file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ..config import Config
from ..tasks import run_all
from ..errors import ConfigError, DownloadChecksumError, FetchError, FetchTimeout
from .network_errors import NETWORK_ERRORS, network_error
from .locks import PartFile, part_file_lock

__all__ = ["RemoteFile", "Outcome", "DownloadReport", "Downloader", "file_sha1", "remote_file"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: Upper bound for a body whose size neither the catalogue nor the server announced.
_UNSIZED_LIMIT = 64 << 30
#: Default minimum transfer rate (bytes/s), averaged over the rate window.
MIN_RATE = 1024.0
#: Default seconds every file is allowed, however small (connection and headers included).
DEADLINE_FLOOR = 120.0


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file to fetch: checked name, source URL, final path and the server's size/sha1."""

    name: str
    url: str
    path: Path
    size: int | None
    sha1: str | None


def remote_file(name: str, url: str, path: Path, info: object) -> RemoteFile:
    """A :class:`RemoteFile` from a ``get_file_info_map`` entry; FetchError when unusable."""
    if not isinstance(info, dict):
        raise FetchError(f"{name}: the server does not know this file ({info!r})")
    try:
        size = int(info["size"]) if info.get("size") not in (None, "", "none") else None
    except (TypeError, ValueError):
        raise FetchError(f"{name}: the server's size {info.get('size')!r} is not a number") from None
    if size is not None and size < 0:
        raise FetchError(f"{name}: the server's size {size} is negative")
    sha1 = info.get("sha1sum")
    sha1 = str(sha1).lower() if sha1 not in (None, "", "none") else None
    return RemoteFile(name, url, path, size, sha1)


@dataclass(slots=True)
class Outcome:
    """What happened to one file: ``downloaded``, ``cached`` (already complete) or ``failed``."""

    name: str
    path: Path
    status: str
    nbytes: int = 0
    error: str | None = None
    attempts: int = 0


@dataclass(slots=True)
class DownloadReport:
    """Outcomes of one :meth:`Downloader.fetch_all`, with totals."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[Outcome]:
        return self.by_status("failed")

    @property
    def downloaded_bytes(self) -> int:
        return sum(o.nbytes for o in self.outcomes if o.status == "downloaded")


def file_sha1(path: Path) -> str:
    """SHA-1 hex digest of a whole file."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_complete(path: Path, remote: RemoteFile, check_sha1: bool) -> bool:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if remote.size is not None and size != remote.size:
        return False
    return not (check_sha1 and remote.sha1 and file_sha1(path) != remote.sha1)


class Downloader:
    """Fetch many files with at most ``jobs`` transfers at a time.

    Parameters
    ----------
    session : aiohttp.ClientSession
    cfg : Config
        ``retry_count``, ``retry_delay_seconds``, ``download_lengths``, ``download_checksums``,
        ``readonly_cache``.
    jobs : int
        Concurrent transfers.
    stall_seconds : float
        A transfer that receives nothing for this long fails (and may be retried).
    progress : bool, optional
        Show a tqdm bar (bytes/s); default: only when stderr is a terminal.
    min_rate : float
        Bytes/s a transfer must average over any ``rate_window`` once that long has
        passed, else it fails (and may be retried); 0 disables the check.
    rate_window : float, optional
        Seconds of the sliding window; default ``stall_seconds``.
    deadline_floor : float
        A file must be complete within ``deadline_floor + size / min_rate`` seconds
        (``MIN_RATE`` when ``min_rate`` is 0); the floor alone until its size is known.
    """

    def __init__(self, session: aiohttp.ClientSession, cfg: Config, *, jobs: int = 8,
                 stall_seconds: float = 60.0, lock_timeout: float = 600.0, progress: bool | None = None,
                 min_rate: float = MIN_RATE, rate_window: float | None = None,
                 deadline_floor: float = DEADLINE_FLOOR) -> None:
        if jobs < 1:
            raise ValueError("jobs must be >= 1")
        for what, value, low in (("stall seconds", stall_seconds, 0.0), ("min_rate", min_rate, None),
                                  ("rate_window", rate_window, 0.0), ("deadline_floor", deadline_floor, 0.0)):
            # A ConfigError (a ValueError too): these come from flags such as --stall-seconds.
            if value is not None and not (math.isfinite(value) and (value >= 0 if low is None else value > low)):
                raise ConfigError(f"{what} {value!r} must be a finite number {'>= 0' if low is None else '> 0'}")
        self.min_rate = min_rate
        self.rate_window = stall_seconds if rate_window is None else rate_window
        self.deadline_floor = deadline_floor
        #: bytes that transfers in progress still expect to write (claimed against the free space)
        self._claimed = 0
        self.session = session
        self.cfg = cfg
        self.jobs = jobs
        self.stall_seconds = stall_seconds
        self.lock_timeout = lock_timeout
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._slots = asyncio.Semaphore(jobs)
        # Files being worked on (lock held, maybe waiting for a transfer slot or a retry):
        # bounded so that a 25,000-file sync does not hold 25,000 open temp files.
        self._in_progress = asyncio.Semaphore(max(4 * jobs, 32))
        self._made_dirs: set[Path] = set()
        self._bar = None
        self._stale_parts: dict[Path, list[Path]] = {}

    async def fetch_all(self, files: Iterable[RemoteFile], *, verify_existing_sha1: bool = False) -> DownloadReport:
        """Make every file present and verified; never raises for one file's failure.

        ``verify_existing_sha1`` also hashes files already present before trusting them
        (their size is always compared).
        """
        files = list(files)
        if self.cfg.readonly_cache:
            raise FetchError(f"CRDS_READONLY_CACHE is set: not downloading {len(files)} file(s)")
        started = time.monotonic()
        total = sum(f.size or 0 for f in files)
        bar_cm = contextlib.nullcontext()
        if self.progress and files:
            from tqdm import tqdm

            bar_cm = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="sync",
                          file=sys.stderr, leave=False)
        with bar_cm as bar:
            self._bar = bar
            try:
                # one TaskGroup: cancelled together (Ctrl-C, a fatal error)
                outcomes = await run_all(self._fetch_one(f, verify_existing_sha1) for f in files)
            finally:
                self._bar = None
        return DownloadReport(list(outcomes), time.monotonic() - started)

    async def _fetch_one(self, remote: RemoteFile, verify_existing_sha1: bool) -> Outcome:
        async with self._in_progress:
            return await self._fetch_locked(remote, verify_existing_sha1)

    async def _fetch_locked(self, remote: RemoteFile, verify_existing_sha1: bool) -> Outcome:
        outcome = Outcome(remote.name, remote.path, "failed")
        try:
            if remote.path.parent not in self._made_dirs:
                remote.path.parent.mkdir(parents=True, exist_ok=True)
                self._made_dirs.add(remote.path.parent)
            async with part_file_lock(remote.path, timeout=self.lock_timeout) as part:
                if _is_complete(remote.path, remote, verify_existing_sha1):
                    outcome.status = "cached"
                    self._advance(remote.size or 0)
                    return outcome
                await self._transfer_with_retries(remote, part, outcome)
        except FetchError as exc:
            outcome.status, outcome.error = "failed", str(exc)
        except OSError as exc:
            outcome.status, outcome.error = "failed", f"{remote.path}: {exc.strerror or exc}"
        if outcome.status == "failed":
            log.info("%s", outcome.error)  # callers report failures (all of them, or a summary)
        return outcome

    async def _transfer_with_retries(self, remote: RemoteFile, part: PartFile, outcome: Outcome) -> None:
        attempts = max(1, self.cfg.retry_count)
        for attempt in range(1, attempts + 1):
            outcome.attempts = attempt
            try:
                async with self._slots:
                    outcome.nbytes = await self._transfer(remote, part)
                outcome.status = "downloaded"
                return
            except _NoSpace:
                raise  # waiting will not make room
            except FetchError as exc:
                if attempt == attempts:
                    raise
                log.info("%s: attempt %d of %d failed: %s", remote.name, attempt, attempts, exc)
            await asyncio.sleep(self.cfg.retry_delay_seconds)

    def deadline_for(self, size: int | None) -> float:
        """Seconds a whole file of ``size`` bytes may take (the floor alone when unknown)."""
        return self.deadline_floor + (size or 0) / (self.min_rate or MIN_RATE)

    def _claim_space(self, remote: RemoteFile, part: PartFile, needed: int) -> None:
        """Count ``needed`` bytes against the target's free space; :class:`_NoSpace` if they do not fit."""
        free = shutil.disk_usage(part.path.parent).free
        available = free - self._claimed
        if needed > available:
            busy = f" ({self._claimed} more are expected by transfers in progress)" if self._claimed else ""
            raise _NoSpace(f"{remote.name}: needs {needed} bytes but only {free} bytes are free in "
                           f"{part.path.parent}{busy}; not downloaded")
        self._claimed += needed

    async def _transfer(self, remote: RemoteFile, part: PartFile) -> int:
        """One attempt: stream into the locked temp file, verify, rename; returns the byte count."""
        # The catalogue's size caps the body even when CRDS_DOWNLOAD_LENGTHS=0 (which only
        # stops a shorter body from being an error).
        expected = remote.size
        digest = hashlib.sha1()
        received = claimed = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = self.deadline_for(expected)
        allowed_for = f"{expected} bytes" if expected is not None else "the connection and headers"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.stall_seconds, sock_read=self.stall_seconds)
        try:
            if expected is not None:
                self._claim_space(remote, part, expected)
                claimed = expected
            try:
                async with asyncio.timeout_at(started + deadline) as overall, \
                        self.session.get(remote.url, timeout=timeout) as resp:
                    if resp.status != 200:
                        raise FetchError(f"{remote.name}: HTTP {resp.status} from {remote.url}")
                    announced = resp.content_length if resp.headers.get("Content-Encoding", "identity") \
                        in ("identity", "") else None
                    if expected is not None and announced is not None and announced > expected:
                        raise DownloadChecksumError(
                            f"{remote.name}: {remote.url} announces {announced} bytes, more than the {expected} bytes "
                            "the catalogue promised; refused before writing")
                    if expected is not None:
                        limit = expected
                    elif announced is not None:
                        self._claim_space(remote, part, announced)
                        limit = claimed = announced
                        deadline = self.deadline_for(announced)
                        allowed_for = f"{announced} bytes"
                        overall.reschedule(started + deadline)
                    else:  # no size anywhere: the rate check, and what the disk can hold
                        limit = min(_UNSIZED_LIMIT, shutil.disk_usage(part.path.parent).free - self._claimed)
                        overall.reschedule(None)
                    rate = _RateWatch(self.min_rate, self.rate_window, loop.time()) if self.min_rate else None
                    # Leftovers of a failed attempt or of a killed process are discarded first.
                    os.ftruncate(part.fd, 0)
                    os.lseek(part.fd, 0, os.SEEK_SET)
                    with open(part.fd, "wb", closefd=False) as out:
                        async for chunk in resp.content.iter_chunked(_CHUNK):
                            received += len(chunk)
                            if received > limit:
                                self._refuse_excess(remote, limit, expected, announced)
                            if rate is not None and (slow := rate.too_slow(loop.time(), received)):
                                nbytes, span = slow
                                raise FetchTimeout(
                                    f"{remote.name}: {remote.url} sent {nbytes} bytes in the last {span:.1f} s, "
                                    f"under the minimum of {self.min_rate:g} bytes/s; aborted")
                            digest.update(chunk)
                            out.write(chunk)
                            self._advance(len(chunk))
                            if claimed:
                                taken = min(claimed, len(chunk))
                                claimed -= taken
                                self._claimed -= taken
            except asyncio.TimeoutError as exc:
                if isinstance(exc, FetchError):
                    raise
                if overall.expired():
                    raise FetchTimeout(f"{remote.name}: not complete after {deadline:.1f} s, the time allowed for "
                                       f"{allowed_for} from {remote.url}; aborted") from exc
                raise FetchTimeout(f"{remote.name}: no data from {remote.url} for {self.stall_seconds:g} s") from exc
            except NETWORK_ERRORS as exc:
                raise network_error(exc, f"{remote.name}: transfer from {remote.url}") from exc
            self._verify(remote, received, digest.hexdigest())
            if os.fstat(part.fd).st_size != received:  # what we hashed is what the file holds
                raise DownloadChecksumError(f"{remote.name}: temp file size differs from the bytes received")
            os.replace(part.path, remote.path)  # same directory: atomic
            part.renamed = True
            return received
        except BaseException:
            self._advance(-received)
            raise
        finally:
            self._claimed -= claimed

    def _refuse_excess(self, remote: RemoteFile, limit: int, expected: int | None, announced: int | None) -> None:
        if expected is not None:
            raise DownloadChecksumError(
                f"{remote.name}: server sent more than the {limit} bytes it announced; aborted")
        if announced is not None:
            raise DownloadChecksumError(
                f"{remote.name}: server sent more than the {limit} bytes of its Content-Length; aborted")
        raise _NoSpace(f"{remote.name}: needs more than the {limit} bytes free in {remote.path.parent} "
                       "(the server gave no size); aborted")

    def _verify(self, remote: RemoteFile, received: int, sha1: str) -> None:
        if self.cfg.download_lengths and remote.size is not None and received != remote.size:
            raise DownloadChecksumError(
                f"{remote.name}: downloaded {received} bytes but the server's size is {remote.size}")
        if self.cfg.download_checksums and remote.sha1 and sha1 != remote.sha1:
            raise DownloadChecksumError(
                f"{remote.name}: downloaded sha1 {sha1} does not match the server's {remote.sha1}")

    def _advance(self, nbytes: int) -> None:
        if self._bar is not None and nbytes:
            self._bar.update(nbytes)


class _NoSpace(FetchError):
    """The target's file system cannot hold the file: reported at once, never retried."""


class _RateWatch:
    """Minimum transfer rate over a sliding window, fed with the running byte count.

    Samples are kept at most every ``window / 8`` seconds, so the window costs a
    handful of entries whatever the chunk rate.  The rate is measured from the last
    sample at least ``window`` old: over ``window`` to ``window * 9 / 8`` seconds.
    """

    __slots__ = ("min_rate", "window", "step", "samples")

    def __init__(self, min_rate: float, window: float, now: float) -> None:
        self.min_rate = min_rate
        self.window = window
        self.step = window / 8
        self.samples: deque[tuple[float, int]] = deque([(now, 0)])

    def too_slow(self, now: float, received: int) -> tuple[int, float] | None:
        """``(bytes, seconds)`` of the measured span when under the minimum rate, else None."""
        samples = self.samples
        if now - samples[-1][0] >= self.step:
            samples.append((now, received))
        horizon = now - self.window
        while len(samples) > 1 and samples[1][0] <= horizon:
            samples.popleft()
        since, base = samples[0]
        span = now - since
        if span >= self.window and received - base < self.min_rate * span:
            return received - base, span
        return None
