"""Crash-safe update of a FITS file's primary header (``--update-bestrefs``).

Only HDU 0's header blocks change: the cards are edited with astropy's header
model (so values, comments and positions come out as the reference's astropy
``mode="update"`` writes them), and the data units are never rewritten.

Policy, in order:

1. **Unchanged datasets are not touched.**  When every card to write already
   holds exactly that value, nothing is opened for writing (mtime, inode and
   hard links stay as they are) and :func:`update_primary_header` returns False.
2. **Read-only files are refused** (one line naming the file): the user's
   write bit is checked in the mode bits, since root ignores them, as the
   reference's astropy update mode refuses such a file.
3. **In place when the new header fits** the old header's 2,880-byte blocks
   (the common case: the END card and the padding after it leave room).  Only
   the header bytes are written; inode, owner, mode, extended attributes and
   hard links are kept, and a 500 MB dataset costs a few kilobytes of writes.
   A header that a writer which takes no lock (astropy) changed between our
   read and our write is left alone.
4. **Otherwise a rewrite beside the dataset**, renamed over it, keeping mode,
   owner (when root) and extended attributes (best effort).  A hard-linked
   file is refused rather than split, and a dataset changed by someone else
   during the copy is left alone.

Crash safety of the in-place edit: an undo journal.  The journal is a hidden
file beside the dataset (``.<name>.crds-journal``) holding a checksummed
record of the old and the new header bytes:

a. write the journal, fsync it and its directory;
b. ``pwrite`` the new header over the old one, fsync the dataset;
c. remove the journal, fsync the directory: the update is committed.

A ``kill -9`` before (a) completes leaves an incomplete journal (bad checksum)
and an untouched dataset.  Between (a) and (c) the dataset's header region
holds the old bytes, the new ones, or a mix of the two (a write cut short).
The next update of that dataset, under the same lock, finds the leftover
journal and rolls the header back to the old bytes, then logs a warning
naming the file: an update is committed exactly when its journal is gone.  A
header region that is neither old, new nor a mix of both was changed by
someone else since the crash: then nothing is written and the error names
the journal to check.  Writers of this module serialise on an exclusive
``flock`` of the dataset, so one never takes another's live journal for a
leftover.  The data units are never written on either path.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Mapping

from ..errors import HeaderError
from .fits import BLOCK, FITS_MAGIC

__all__ = ["update_primary_header", "journal_path", "recover_interrupted_update"]

log = logging.getLogger(__name__)

_MAX_HEADER_BLOCKS = 10_000
_JOURNAL_MAGIC = b"CRDS_ASYNC HEADER JOURNAL 1\n"
_TEAR_UNIT = 512  # a write cut short leaves whole sectors (or pages) old or new


def journal_path(path) -> str:
    """The hidden undo-journal path beside the dataset ``path``."""
    directory, name = os.path.split(os.path.realpath(os.fspath(path)))
    return os.path.join(directory, f".{name}.crds-journal")


def _primary_header_length(handle, path: str) -> int:
    handle.seek(0)
    for index in range(_MAX_HEADER_BLOCKS):
        block = handle.read(BLOCK)
        if len(block) < BLOCK:
            raise HeaderError(f"{path}: truncated primary header")
        if index == 0 and not block.startswith(FITS_MAGIC):
            raise HeaderError(f"{path}: not a FITS file (no SIMPLE card)")
        for start in range(0, BLOCK, 80):
            card = block[start:start + 80]
            if card[:8] == b"END     " and not card[8:].strip():
                return (index + 1) * BLOCK
    raise HeaderError(f"{path}: primary header has no END card")


def update_primary_header(path, cards: Mapping[str, str]) -> bool:
    """Set ``cards`` (keyword -> string value) in HDU 0 of the FITS file ``path``, crash-safely.

    Existing keywords keep their position and comment; new ones are placed as
    astropy places them.  Data units are byte-identical afterwards.

    Returns
    -------
    bool
        True when the header was written, False when every card already held
        its value (the file was not opened for writing).

    Raises
    ------
    HeaderError
        The file is not a writable FITS file, is hard-linked and needs a
        rewrite, or changed while being updated; the original is left as it was.
    """
    target = os.path.realpath(os.fspath(path))
    try:
        with _locked(target) as source:
            if os.path.lexists(journal_path(target)):
                _recover(target)
            length = _primary_header_length(source, target)
            source.seek(0)
            old_bytes = source.read(length)
            new_bytes = _new_header(old_bytes, cards, target)
            if new_bytes is None:
                return False
            info = os.fstat(source.fileno())
            _check_writable(info, target)
            if len(new_bytes) == length:
                _write_in_place(target, info, old_bytes, new_bytes)
            else:
                _rewrite(target, source, info, length, new_bytes, cards)
            return True
    except HeaderError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise HeaderError(f"{target}: cannot update the primary header ({exc})") from None


class _locked:
    """Open ``target`` for reading under an exclusive flock of the very file the name points to."""

    def __init__(self, target: str):
        self.target = target
        self.handle = None

    def __enter__(self):
        for _ in range(100):
            handle = open(self.target, "rb")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except OSError:
                pass  # no locks on this filesystem: best effort
            opened, named = os.fstat(handle.fileno()), os.stat(self.target)
            if (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino):
                self.handle = handle
                return handle
            handle.close()  # renamed over while we waited for the lock: lock the new file
        raise HeaderError(f"{self.target}: keeps being replaced while waiting to update it")

    def __exit__(self, *exc_info):
        self.handle.close()  # closing releases the lock


def _new_header(old_bytes: bytes, cards: Mapping[str, str], target: str) -> bytes | None:
    """The padded new header, or None when every card already holds its value."""
    from astropy.io import fits

    header = fits.Header.fromstring(old_bytes.decode("ascii"))
    if all(_holds(header, keyword, value) for keyword, value in cards.items()):
        return None
    for keyword, value in cards.items():
        header[keyword] = value
    new_bytes = header.tostring(padding=True).encode("ascii")
    written = fits.Header.fromstring(new_bytes.decode("ascii"))
    for keyword, value in cards.items():
        if str(written.get(keyword)) != str(value):
            raise HeaderError(f"{target}: {keyword} would not read back as {value!r}; the dataset was left untouched")
    return new_bytes


def _holds(header, keyword: str, value) -> bool:
    if keyword not in header:
        return False
    existing = header[keyword]
    return type(existing) is type(value) and existing == value


def _check_writable(info: os.stat_result, target: str) -> None:
    """Refuse a file its user may not write, by the mode bits (root ignores them)."""
    euid = os.geteuid()
    if info.st_uid == euid:
        writable = bool(info.st_mode & stat.S_IWUSR)
    elif euid == 0:
        writable = bool(info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    else:
        writable = os.access(target, os.W_OK)
    if not writable:
        raise HeaderError(f"{target}: read-only file (mode {stat.filemode(info.st_mode)}); its header was not updated")


# ---------------------------------------------------------------------------- in place


def _journal_record(old_bytes: bytes, new_bytes: bytes) -> bytes:
    payload = old_bytes + new_bytes
    line = b"%d %s\n" % (len(old_bytes), hashlib.sha256(payload).hexdigest().encode("ascii"))
    return _JOURNAL_MAGIC + line + payload


def _parse_journal(raw: bytes) -> tuple[bytes, bytes] | None:
    """(old, new) header bytes of a complete journal; None for one cut short."""
    if not raw.startswith(_JOURNAL_MAGIC):
        return None
    line, sep, payload = raw[len(_JOURNAL_MAGIC):].partition(b"\n")
    fields = line.split()
    if not sep or len(fields) != 2 or not fields[0].isdigit():
        return None
    length = int(fields[0])
    if len(payload) != 2 * length or hashlib.sha256(payload).hexdigest().encode("ascii") != fields[1]:
        return None
    return payload[:length], payload[length:]


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_journal(journal: str, old_bytes: bytes, new_bytes: bytes) -> None:
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _pwrite_all(fd, _journal_record(old_bytes, new_bytes), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(os.path.dirname(journal))


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _write_header(fd: int, new_bytes: bytes) -> None:
    """Step (b): the new header over the old one, on disk."""
    _pwrite_all(fd, new_bytes, 0)
    os.fsync(fd)


def _write_in_place(target: str, info: os.stat_result, old_bytes: bytes, new_bytes: bytes) -> None:
    journal = journal_path(target)
    fd = os.open(target, os.O_RDWR)
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise HeaderError(f"{target}: replaced while being updated; its header was not updated")
        try:
            _write_journal(journal, old_bytes, new_bytes)
            if os.pread(fd, len(old_bytes), 0) != old_bytes:  # a writer that does not lock changed it
                raise HeaderError(f"{target}: its header changed while being updated; left as it is")
        except BaseException:
            _remove_quietly(journal)  # the dataset is untouched so far
            raise
        try:
            _write_header(fd, new_bytes)
            if os.pread(fd, len(new_bytes), 0) != new_bytes:
                raise HeaderError(f"{target}: the new header did not read back; it was rolled back")
        except BaseException:
            _roll_back(fd, old_bytes, journal, target)
            raise
        os.unlink(journal)  # step (c): committed
        _fsync_dir(os.path.dirname(target))
    finally:
        os.close(fd)


def _roll_back(fd: int, old_bytes: bytes, journal: str, target: str) -> None:
    """Undo a failed step (b) at once; if even that fails, the journal stays for the next open."""
    try:
        _pwrite_all(fd, old_bytes, 0)
        os.fsync(fd)
        os.unlink(journal)
    except OSError as exc:
        log.error("%s: could not roll back a failed header update (%s); %s holds the old header", target, exc, journal)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _recover(target: str) -> None:
    journal = journal_path(target)
    with open(journal, "rb") as handle:
        record = _parse_journal(handle.read())
    if record is None:  # cut short before step (b): the dataset was never touched
        os.unlink(journal)
        _fsync_dir(os.path.dirname(target))
        log.warning("%s: removed an incomplete header-update journal %s (the dataset was not touched)",
                    target, journal)
        return
    old_bytes, new_bytes = record
    fd = os.open(target, os.O_RDWR)
    try:
        current = os.pread(fd, len(old_bytes), 0)
        if current != old_bytes:
            if not _is_mix(current, old_bytes, new_bytes):
                raise HeaderError(
                    f"{target}: its header changed since an interrupted update; check it, then remove {journal}")
            _pwrite_all(fd, old_bytes, 0)
            os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(journal)
    _fsync_dir(os.path.dirname(target))
    log.warning("%s: rolled back an interrupted header update (journal %s)", target, journal)


def recover_interrupted_update(path) -> bool:
    """Roll back an interrupted in-place update of ``path``, if its journal is there; True if one was."""
    target = os.path.realpath(os.fspath(path))
    try:
        with _locked(target):
            if not os.path.lexists(journal_path(target)):
                return False
            _recover(target)
            return True
    except HeaderError:
        raise
    except OSError as exc:
        raise HeaderError(f"{target}: cannot recover an interrupted header update ({exc})") from None


def _is_mix(current: bytes, old_bytes: bytes, new_bytes: bytes) -> bool:
    if len(current) != len(old_bytes) or len(new_bytes) != len(old_bytes):
        return False
    for start in range(0, len(current), _TEAR_UNIT):
        piece = current[start:start + _TEAR_UNIT]
        if piece != old_bytes[start:start + _TEAR_UNIT] and piece != new_bytes[start:start + _TEAR_UNIT]:
            return False
    return True


# ---------------------------------------------------------------------------- rewrite


def _rewrite(target: str, source, info: os.stat_result, length: int, new_bytes: bytes,
             cards: Mapping[str, str]) -> None:
    """The new header does not fit: write the whole file beside the dataset and rename it over."""
    if info.st_nlink > 1:
        raise HeaderError(f"{target}: has {info.st_nlink} hard links and its new header needs more blocks; "
                          "not rewritten (a rewrite would split the links)")
    part = f"{target}.part-{secrets.token_hex(4)}"
    try:
        with open(part, "wb") as out:
            out.write(new_bytes)
            source.seek(length)
            shutil.copyfileobj(source, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        _verify(part, len(new_bytes), info.st_size - length, cards)
        _copy_metadata(source.fileno(), part, info)
        now = os.fstat(source.fileno())
        if (now.st_size, now.st_mtime_ns) != (info.st_size, info.st_mtime_ns):
            raise HeaderError(f"{target}: changed while its header was being rewritten; left as it is")
        os.replace(part, target)
        _fsync_dir(os.path.dirname(target))
    finally:
        if os.path.exists(part):
            os.unlink(part)


def _copy_metadata(fd: int, part: str, info: os.stat_result) -> None:
    """Mode always; owner when allowed (root); extended attributes best effort."""
    os.chmod(part, stat.S_IMODE(info.st_mode))
    if os.geteuid() == 0:
        os.chown(part, info.st_uid, info.st_gid)
    elif info.st_gid != os.getegid():
        try:
            os.chown(part, -1, info.st_gid)
        except OSError:
            pass
    try:
        names = os.listxattr(fd)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(part, name, os.getxattr(fd, name))
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP):
                raise
            log.debug("%s: extended attribute %s not kept (%s)", part, name, exc)
    os.chmod(part, stat.S_IMODE(info.st_mode))  # chown may clear set-id bits


def _verify(part: str, header_length: int, rest: int, cards: Mapping[str, str]) -> None:
    from astropy.io import fits

    if os.path.getsize(part) != header_length + rest:
        raise HeaderError(f"{part}: written size is wrong; the dataset was left untouched")
    with open(part, "rb") as handle:
        written = fits.Header.fromstring(handle.read(header_length).decode("ascii"))
    for keyword, value in cards.items():
        if str(written.get(keyword)) != str(value):
            raise HeaderError(f"{part}: {keyword} did not read back as {value!r}; the dataset was left untouched")
