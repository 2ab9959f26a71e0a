"""Read and update dataset headers (FITS, ASDF).

- ``read_header(path) -> dict[str, str]``: sniffs the format by content.
- ``read_fits_header(path)``, ``read_asdf_header(path)``.
- ``update_primary_header(path, cards)``: atomic rewrite of HDU 0's cards.

A bad file raises :class:`crds_async.errors.HeaderError` with one line
``"<path>: <problem>"``; the batch engine turns it into a per-dataset error.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import HeaderError
from .asdf import ASDF_MAGIC, read_asdf_header
from .fits import FITS_MAGIC, read_fits_header, read_fits_raw
from .rawfile import open_raw

__all__ = ["read_header", "read_fits_header", "read_asdf_header", "update_primary_header", "HeaderError"]


def read_header(path, keep: Callable[[str], bool] | None = None) -> dict[str, str]:
    """The raw merged header of a FITS or ASDF dataset, chosen by its first bytes.

    ``keep`` (optional) limits the keywords read to those it accepts.  Whatever goes
    wrong reading one dataset is a :class:`HeaderError` naming it, never another
    exception that would end a batch.
    """
    try:
        return _read_header(path, keep)
    except HeaderError:
        raise
    except Exception as exc:  # noqa: BLE001 - a hostile file must not sink the batch
        problem = (str(exc).splitlines() or [""])[0][:120]
        raise HeaderError(f"{path}: unreadable header ({type(exc).__name__}: {problem})") from None


def _read_header(path, keep: Callable[[str], bool] | None) -> dict[str, str]:
    with open_raw(path) as raw:
        if raw.size == 0:
            raise HeaderError(f"{raw.path}: empty file")
        if raw.prefix.startswith(FITS_MAGIC):
            return read_fits_raw(raw, keep)  # one open and one read for the usual file
        name, magic = raw.path, raw.prefix[:8]
    if magic.startswith(ASDF_MAGIC):
        header = read_asdf_header(path)
        return header if keep is None else {k: v for k, v in header.items() if keep(k)}
    raise HeaderError(f"{name}: not a FITS or ASDF file")


def update_primary_header(path, cards) -> bool:
    """Write ``cards`` into HDU 0 safely (see :mod:`.update`); False: they were there already."""
    from .update import update_primary_header as _update

    return _update(path, cards)
