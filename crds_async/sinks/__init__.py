"""Result sinks for archives: Parquet tables (:mod:`.parquet`) and the campaign report (:mod:`.report`).

A sink takes a batch's :class:`~crds_async.engine.results.DatasetResult` stream one at a
time (``write``), holds only bounded state, and makes its output appear only when complete
(``close``; ``abort`` leaves nothing behind).
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` as valid UTF-8 text: bytes that were not UTF-8 in a file name (held as
    ``surrogateescape`` surrogates by ``os.fsdecode``) shown as backslash escapes (``\\xff``).

    Every writer of text (table, csv, Parquet, HTML) uses it, so a batch with such a name
    writes every record instead of failing at the first (issue #17).
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
