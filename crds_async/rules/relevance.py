"""What relevance expressions see, and how ``parkey_relevance`` rewrites a header.

Shared by the interpreted evaluation (:mod:`.evaluate`) and the memoised answer
plans (:mod:`.plans`), so that both compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ExpressionError

__all__ = ["with_aliases", "apply_parkey_relevance", "PARKEY_RELEVANCE_CONSTANTS"]

#: names a parkey_relevance expression may use besides header values (comment parkeys)
PARKEY_RELEVANCE_CONSTANTS = {"keep_comments": False}


def with_aliases(header: Mapping[str, object]) -> dict[str, object]:
    """The header plus ``META_X_Y`` aliases of dotted keys (an alias wins over a same-named key)."""
    names: dict[str, object] = dict(header)
    for key, value in header.items():
        if "." in key:
            names[key.replace(".", "_")] = value
    return names


def apply_parkey_relevance(rmap, header: Mapping[str, str]) -> Mapping[str, str]:
    """``header`` with each parameter whose relevance expression is false set to ``N/A``.

    Raises
    ------
    ExpressionError
        An expression failed (the reference reports the text after ``NOT FOUND``).
    """
    if not rmap.parkey_relevance:
        return header
    names = dict(header)
    for key in rmap.required_parkeys:
        if key not in names or names[key] in ("UNDEFINED", None):
            names[key] = "UNDEFINED"
    names = with_aliases(names)
    names.update(PARKEY_RELEVANCE_CONSTANTS)
    out = dict(header)
    for parkey in rmap.required_parkeys:
        expression = rmap.parkey_relevance.get(parkey.lower())
        if expression is not None:
            try:
                relevant = expression.evaluate(names)
            except ExpressionError as exc:
                raise ExpressionError(str(exc)) from None
            if not relevant:
                out[parkey] = "N/A"
    return out
