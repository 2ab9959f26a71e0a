"""The kind of a reference file (``fits``, ``asdf``, ``json``, ``yaml``), from its name then its bytes."""

from __future__ import annotations

from pathlib import Path

__all__ = ["KINDS", "kind_of"]

KINDS = ("fits", "asdf", "json", "yaml")

_SUFFIXES = {
    ".fits": "fits", ".fit": "fits", ".fts": "fits",
    ".asdf": "asdf",
    ".json": "json",
    ".yaml": "yaml", ".yml": "yaml",
}


def kind_of(path: str | Path) -> str | None:
    """``'fits'``, ``'asdf'``, ``'json'`` or ``'yaml'`` for ``path``; ``None`` when it is none of them.

    The suffix decides; a file with another suffix is sniffed from its first bytes
    (``SIMPLE  =`` is FITS, ``#ASDF`` is ASDF).
    """
    kind = _SUFFIXES.get(Path(path).suffix.lower())
    if kind is not None:
        return kind
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return None
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head.startswith(b"#ASDF"):
        return "asdf"
    return None
