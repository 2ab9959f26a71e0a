"""Merge (keyword, value) pairs into one header dict the way the reference does."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["merge_cards", "REPEATABLE_KEYWORDS", "JOINED_KEYWORDS"]

#: Keywords whose differing repeats are expected (no warning in the reference);
#: all but the joined ones still keep their first value.
REPEATABLE_KEYWORDS = frozenset({"COMMENT", "HISTORY", "NAXIS", "EXTNAME", "EXTVER"})

#: Keywords whose differing repeats are appended, newline separated.
JOINED_KEYWORDS = frozenset({"COMMENT", "HISTORY"})


def merge_cards(cards: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Fold keyword/value pairs, in file order, into one dict.

    Keys are upper-cased and the first value of a keyword wins, except that a
    COMMENT or HISTORY value differing from the text gathered so far is appended
    after a newline (an exact repeat of the gathered text is dropped, as in the
    reference).

    Parameters
    ----------
    cards : iterable of (str, str)
        Keyword and value text, in the order they appear in the file.

    Returns
    -------
    dict[str, str]
    """
    header: dict[str, str] = {}
    for key, value in cards:
        key = key.upper()
        old = header.get(key)
        if old is None:
            header[key] = value
        elif old != value and key in JOINED_KEYWORDS:
            header[key] = old + "\n" + value
    return header
