"""ASDF (and JSON/YAML) trees flattened into header dicts the way the reference's reader does.

Roman datasets are ASDF: the reference turns the tree into upper-case dotted keys
(``roman.meta.instrument.name`` -> ``ROMAN.META.INSTRUMENT.NAME``) with text values, then
adds a ``HISTORY`` summary. These pure functions take the already-loaded tree, so the
file reading stays in ``crds_async.headers``.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterable, Mapping

from crds_async.rules.timestamps import format_date

__all__ = ["flatten_tree", "history_text", "asdf_header"]


def _is_astropy_time(value: object) -> bool:
    if "astropy.time" not in sys.modules:   # never import astropy just to find out
        return False
    from astropy.time import Time

    return isinstance(value, Time)


def _simple_value(value: object) -> object:
    """Text for scalars and times, a tuple for sequences, a marker for anything else."""
    if isinstance(value, (str, int, float, complex)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(_simple_value(item) for item in value)
    if isinstance(value, datetime.datetime):
        return format_date(value.strftime("%Y-%m-%d %H:%M:%S.%f")).replace(" ", "T")
    if _is_astropy_time(value):
        return format_date(value.utc.strftime("%Y-%m-%d %H:%M:%S")).replace(" ", "T")
    # Arrays, tagged objects, ...: large or opaque, never matched on. (Spelling as the reference.)
    return "SUPRESSED_NONSTD_TYPE: " + repr(type(value).__name__)


def _flatten_into(tree: Mapping, prefix: str, out: dict[str, object]) -> None:
    for key, value in tree.items():
        if not isinstance(key, str):
            continue
        name = prefix + key.upper()
        if isinstance(value, Mapping):
            _flatten_into(value, name + ".", out)
        else:
            out[name] = _simple_value(value)


def flatten_tree(tree: Mapping) -> dict[str, str]:
    """Upper-case dotted keys -> value text, as the reference's ASDF/JSON/YAML readers.

    Non-string keys are skipped; sequences become the text of a tuple of simple values;
    ``datetime`` and astropy ``Time`` become ``YYYY-MM-DDTHH:MM:SS[.ffffff]``; other
    objects become ``SUPRESSED_NONSTD_TYPE: '<class name>'``. A later path that spells the
    same key wins.

    Raises
    ------
    ValueError
        A time the reference's date parser rejects (e.g. a year before 1000).
    """
    flat: dict[str, object] = {}
    _flatten_into(tree, "", flat)
    return {key: str(value) for key, value in flat.items()}


def history_text(entries: Iterable[Mapping] | None) -> str:
    """The reference's HISTORY value: ``'<time> :: <description>'`` lines, else ``'UNDEFINED'``.

    Parameters
    ----------
    entries : iterable of mappings or None
        The file's history entries (``time``, ``description``); None when the tree has no
        ``history``. Any unreadable entry makes the whole value ``'UNDEFINED'``.
    """
    if entries is None:
        return "UNDEFINED"
    lines = []
    try:
        for entry in entries:
            when = entry["time"]
            stamp = format_date(when) if isinstance(when, str) else when.isoformat(" ")
            lines.append(stamp.split(".")[0] + " :: " + entry["description"])
    except Exception:  # noqa: BLE001 - the reference logs and falls back to UNDEFINED
        return "UNDEFINED"
    return "\n".join(lines) if lines else "UNDEFINED"


def asdf_header(tree: Mapping, history_entries: Iterable[Mapping] | None) -> dict[str, str]:
    """Raw header of an ASDF file: :func:`flatten_tree` plus ``HISTORY`` (:func:`history_text`)."""
    header = flatten_tree(tree)
    header["HISTORY"] = history_text(history_entries)
    return header
