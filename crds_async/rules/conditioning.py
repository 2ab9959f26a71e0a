"""Value conditioning: header values and Match keys normalised the way CRDS compares them.

Every dataset header value and every Match key element is passed through
:func:`condition_value` before matching (rules.md §2 step 2, §3.1). The
behaviour, quirks included, follows the reference's value conditioner:

* the value is ``str()``-ed, stripped and upper-cased;
* a decimal number (``2``, ``1.``, ``.5``, ``1e5``, ``+3``) becomes ``repr(float)``;
* the "don't care" test is effectively a *prefix* test for ``()``, ``N/A``,
  ``NOT APPLICABLE`` and ``-2147483648?0`` (any character in the ``?``),
  and an exact test for ``NOT_APPLICABLE``; all of these become ``N/A``;
* ``ANY`` -> ``*``, ``4294967295.0`` -> ``-1.0``, ``T``/``TRUE`` -> ``T``,
  ``F``/``FALSE`` -> ``F``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

__all__ = [
    "condition_value",
    "condition_header",
    "is_esoteric",
    "condition_match_key",
    "SCALAR_TYPES",
    "ConditionedValues",
]

#: Header value types the reference keeps; anything else is dropped before matching.
SCALAR_TYPES = (str, int, float, bool)

# ASCII digits only (``\d`` would also accept other scripts' digits, the reference does not).
# The stripped value has no trailing newline, so fullmatch is the same as the reference's ``$``.
_DECIMAL_NUMBER = re.compile(r"[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+\.)")

# The reference's "don't care" pattern anchors ``^`` to its first alternative and ``$`` to its
# last only, so most alternatives are prefixes of the value.
_DONT_CARE_PREFIXES = ("()", "N/A", "NOT APPLICABLE")
_INT32_MIN_STEM = "-2147483648"   # followed by any one character (regex ``.``) and then ``0``

_SPECIAL_VALUES = {
    "ANY": "*",
    "4294967295.0": "-1.0",
    "T": "T",
    "TRUE": "T",
    "F": "F",
    "FALSE": "F",
}


def _is_dont_care(value: str) -> bool:
    """True when the reference would replace the (stripped, upper-cased) value with ``N/A``."""
    if value.startswith(_DONT_CARE_PREFIXES) or value == "NOT_APPLICABLE":
        return True
    return (
        len(value) >= 13
        and value.startswith(_INT32_MIN_STEM)
        and value[11] != "\n"       # regex ``.`` does not match a newline
        and value[12] == "0"
    )


@functools.lru_cache(maxsize=1 << 16)
def _condition_text(text: str) -> str:
    value = text.strip().upper()
    if _DECIMAL_NUMBER.fullmatch(value):
        value = repr(float(value))
    if _is_dont_care(value):
        return "N/A"
    return _SPECIAL_VALUES.get(value, value)


def condition_value(value: object) -> str:
    """Condition one header value or Match key part as the reference does.

    Parameters
    ----------
    value : object
        Usually a ``str``; ``int``, ``float`` and ``bool`` go through ``str()`` first
        (so ``True`` -> ``'T'`` and ``1`` -> ``'1.0'``).

    Returns
    -------
    str
        The conditioned value.

    Examples
    --------
    >>> condition_value(' any ')
    '*'
    >>> condition_value('2009')
    '2009.0'
    >>> condition_value('NOT APPLICABLEX')
    'N/A'
    >>> condition_value(4294967295)
    '-1.0'
    """
    if type(value) is not str:  # noqa: E721 - str subclasses are str()-ed to plain str too
        value = str(value)
    return _condition_text(value)


class ConditionedValues(dict):
    """``memo[value]`` is ``condition_value(value)``, remembered for text values.

    A plain dict lookup on a hit, which is what a batch of datasets mostly does.
    Only ``str`` keys are ever stored: ``True``, ``1`` and ``1.0`` are equal as dict
    keys but condition differently (``'T'``, ``'1.0'``), so other types are
    conditioned afresh each time and can never hit a stored key.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int = 1 << 16):
        super().__init__()
        self.limit = limit

    def __missing__(self, value: object) -> str:
        conditioned = condition_value(value)
        if type(value) is str:  # noqa: E721 - exactly str, see above
            if len(self) >= self.limit:
                self.clear()
            self[value] = conditioned
        return conditioned


def condition_header(header: Mapping[str, object], *, drop_non_scalars: bool = True) -> dict[str, str]:
    """Upper-case the keys and condition the values; drop values that are not scalars.

    Parameters
    ----------
    header : Mapping[str, object]
        Dataset parameters.
    drop_non_scalars : bool
        Drop values that are not ``str``, ``int``, ``float`` or ``bool``, as the reference's
        getrecommendations does when ``fast`` is false. With ``fast=True`` the reference skips
        that check and conditions every value through ``str()`` (``None`` -> ``'NONE'``):
        pass False to get that.

    Returns
    -------
    dict[str, str]
        Upper-cased keys to conditioned values. When two keys differ only by case, the
        later one wins (as in the reference's dict comprehension).
    """
    return {
        key.upper(): condition_value(value)
        for key, value in header.items()
        if not drop_non_scalars or isinstance(value, SCALAR_TYPES)
    }


def is_esoteric(key_element: str) -> bool:
    """True for Match key elements that are not plain values (rules.md §3.1).

    Esoteric: starts with one of ``{ ( #`` and ends with one of ``} ) #`` (any
    combination), or starts with ``BETWEEN`` or ``NOT`` (case-insensitive).
    """
    upper = key_element.upper()
    return (
        upper.startswith(("{", "(", "#")) and upper.endswith(("}", ")", "#"))
    ) or upper.startswith(("BETWEEN", "NOT"))


def _or_parts(element: str) -> list[str]:
    """The sorted, stripped, non-blank ``|`` alternatives; an esoteric element stays whole."""
    if "|" in element and not is_esoteric(element):
        return sorted(part.strip() for part in element.split("|") if part.strip())
    return [element]


def condition_match_key(element: object) -> str:
    """Condition one element of a Match key tuple as the reference does when loading.

    Parameters
    ----------
    element : object
        A string, a number/bool, or a tuple/list of alternatives for one parameter.

    Returns
    -------
    str
        ``{...}`` and ``(...)`` strings unchanged; ``A|B`` strings split on ``|``,
        stripped, blanks dropped, sorted (raw text, before conditioning), each part
        conditioned, re-joined (esoteric
        strings such as ``#A|B#`` or ``NOT A|B`` are conditioned whole); tuples and
        lists: each part conditioned and joined with ``|`` (not sorted); anything else
        conditioned.

    Examples
    --------
    >>> condition_match_key('WFC | HRC|')
    'HRC|WFC'
    >>> condition_match_key('WFC|hrc')   # sorted before conditioning, as the reference
    'WFC|HRC'
    >>> condition_match_key(1062)
    '1062.0'
    >>> condition_match_key('(a|b)')
    '(a|b)'
    """
    if isinstance(element, str):
        if (element.startswith("{") and element.endswith("}")) or (
            element.startswith("(") and element.endswith(")")
        ):
            return element  # raw regexes and literal equalities are not conditioned
        return "|".join(condition_value(part) for part in _or_parts(element))
    if isinstance(element, (tuple, list)):
        return "|".join(condition_value(part) for part in element)
    return condition_value(element)
