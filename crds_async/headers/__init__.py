"""Read and update dataset headers (FITS, ASDF).

- ``read_header(path) -> dict[str, str]``: sniffs the format by content.
- ``read_fits_header(path)``, ``read_asdf_header(path)``.
- ``update_primary_header(path, cards)``: atomic rewrite of HDU 0's cards.

A bad file raises :class:`crds_async.errors.HeaderError` with one line
``"<path>: <problem>"``; the batch engine turns it into a per-dataset error.
"""

from __future__ import annotations

from ..errors import HeaderError
from .asdf import ASDF_MAGIC, read_asdf_header
from .fits import FITS_MAGIC, read_fits_header
from .rawfile import open_raw

__all__ = ["read_header", "read_fits_header", "read_asdf_header", "update_primary_header", "HeaderError"]


def read_header(path) -> dict[str, str]:
    """The raw merged header of a FITS or ASDF dataset, chosen by its first bytes."""
    with open_raw(path, prefix_bytes=16) as raw:
        magic = raw.prefix
        name = raw.path
        if raw.size == 0:
            raise HeaderError(f"{name}: empty file")
    if magic.startswith(FITS_MAGIC):
        return read_fits_header(path)
    if magic.startswith(ASDF_MAGIC):
        return read_asdf_header(path)
    raise HeaderError(f"{name}: not a FITS or ASDF file")


def update_primary_header(path, cards) -> None:
    """Write ``cards`` into HDU 0 atomically (see :mod:`.update`)."""
    from .update import update_primary_header as _update

    _update(path, cards)
