"""Atomic update of a FITS file's primary header (``--update-bestrefs``).

Only HDU 0's header blocks change: the cards are edited with astropy's header
model (so values, comments and positions come out as the reference's
astropy ``mode="update"`` writes them), and every byte after the old primary
header is copied verbatim.  The new file is written beside the dataset,
re-read and checked, fsync'ed, then renamed over it: a crash or SIGKILL at
any point leaves either the old file or the complete new one, never half.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping

from ..errors import HeaderError
from .fits import BLOCK, FITS_MAGIC

__all__ = ["update_primary_header"]

_MAX_HEADER_BLOCKS = 10_000


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


def update_primary_header(path, cards: Mapping[str, str]) -> None:
    """Set ``cards`` (keyword -> string value) in HDU 0 of the FITS file ``path``, atomically.

    Existing keywords keep their position and comment; new ones are placed as
    astropy places them.  Data units are byte-identical afterwards.

    Raises
    ------
    HeaderError
        The file is not a writable FITS file; the original is left untouched.
    """
    from astropy.io import fits

    target = os.path.realpath(os.fspath(path))
    part = f"{target}.part-{secrets.token_hex(4)}"
    try:
        with open(target, "rb") as source:
            length = _primary_header_length(source, target)
            source.seek(0)
            old_bytes = source.read(length)
            header = fits.Header.fromstring(old_bytes.decode("ascii"))
            for keyword, value in cards.items():
                header[keyword] = value
            new_bytes = header.tostring(padding=True).encode("ascii")
            mode = os.fstat(source.fileno()).st_mode & 0o7777
            with open(part, "wb") as out:
                out.write(new_bytes)
                source.seek(length)
                shutil.copyfileobj(source, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            rest = os.path.getsize(target) - length
        _verify(part, len(new_bytes), rest, cards)
        os.chmod(part, mode)
        os.replace(part, target)
    except HeaderError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise HeaderError(f"{target}: cannot update the primary header ({exc})") from None
    finally:
        if os.path.exists(part):
            os.unlink(part)


def _verify(part: str, header_length: int, rest: int, cards: Mapping[str, str]) -> None:
    from astropy.io import fits

    if os.path.getsize(part) != header_length + rest:
        raise HeaderError(f"{part}: written size is wrong; the dataset was left untouched")
    with open(part, "rb") as handle:
        written = fits.Header.fromstring(handle.read(header_length).decode("ascii"))
    for keyword, value in cards.items():
        if str(written.get(keyword)) != str(value):
            raise HeaderError(f"{part}: {keyword} did not read back as {value!r}; the dataset was left untouched")
