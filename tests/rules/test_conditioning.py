"""Value conditioning equals the reference's on every rmap literal and on generated edge values."""

from __future__ import annotations

import ast
import functools
import random
import re

import pytest

from crds_async.rules.conditioning import (
    condition_header,
    condition_match_key,
    condition_value,
    is_esoteric,
)
from tests.conftest import CACHE, needs_reference

_STRING_LITERAL = re.compile(r"'([^'\\\n]*)'")
# An unquoted number that is a whole tuple element: "(1062, " or ", -1.5)".
_NUMBER_ELEMENT = re.compile(r"[(,]\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*(?=[,)])")
_FILE_SUFFIX = re.compile(r"\.(fits|asdf|r\d[hd]|txt|json|yaml|[pir]map)$", re.IGNORECASE)


@functools.lru_cache(maxsize=None)
def rmap_literals() -> tuple[tuple[str, ...], tuple[object, ...]]:
    """(distinct non-file-name string literals, distinct unquoted numbers) of every cached rmap.

    A regex scan, not a parse: it may pick up a few strings that are not keys (comments,
    header values), which only widens the differential check.
    """
    strings: set[str] = set()
    numbers: set[object] = set()
    for path in sorted(CACHE.glob("mappings/*/*.rmap")):
        text = path.read_text(encoding="utf-8", errors="replace")
        strings.update(_STRING_LITERAL.findall(text))
        for number in _NUMBER_ELEMENT.findall(text):
            try:
                numbers.add(ast.literal_eval(number))
            except SyntaxError:         # '002' outside a key: not a Python literal either
                pass
    strings = {s for s in strings if not _FILE_SUFFIX.search(s)}
    return tuple(sorted(strings)), tuple(sorted(numbers, key=repr))


def generated_values(count: int, seed: int = 1) -> list[object]:
    """Edge values: numbers in many spellings, whitespace, case, N/A variants, bools, junk."""
    rng = random.Random(seed)
    fixed: list[object] = [
        "", " ", "1", "1.", ".5", "+.5e-3", "1.E5", "1e5", "-0", "+0.0", "00012", "1e999", "-1e999",
        "nan", "inf", "-inf", "1_000", "٣", "1234567890123456789", "4294967295", "4294967295.",
        "4294967295.0", " 4294967295 ", "-2147483648", "-2147483648.0", "-2147483648X0", "-2147483648\n0",
        "-214748364800", "-21474836480", "N/A", "n/a", "N/A FOO", " n/a ", "()", "()x", "(x)",
        "NOT APPLICABLE", "NOT APPLICABLEX", "not applicable", "NOT_APPLICABLE", "NOT_APPLICABLEX",
        "NOT_APPLICABLE\n", "ANY", " any", "ANYX", "*", "T", "t", "TRUE", "True", "F", "false", "FALSE ",
        "YES", "foo", "iref$uaf12559i_drk.fits", "2013-11-05 15:21:34", "\tWFC\n", "ß", "ﬁ",
        True, False, 0, 1, -1, 2**32 - 1, 2**64, -(2**31), 1.5, 0.1, 1e300, 1e-300, -0.0,
        float("nan"), float("inf"), 4294967295.0,
    ]
    pieces = ["1", "12", "0", ".", "e", "E", "+", "-", " ", "5", "A", "N/A", "ANY", "T", "F", "|", "()"]
    values: list[object] = list(fixed)
    while len(values) < count:
        kind = rng.randrange(6)
        if kind == 0:
            values.append("".join(rng.choice(pieces) for _ in range(rng.randrange(1, 6))))
        elif kind == 1:
            values.append(rng.choice(["", " ", "  "]) + repr(rng.uniform(-1e6, 1e6)) + rng.choice(["", " "]))
        elif kind == 2:
            values.append(rng.randrange(-(10**20), 10**20))
        elif kind == 3:
            values.append(rng.choice([str, lambda x: f"{x:e}", lambda x: f"{x:.0f}."])(rng.uniform(-1e4, 1e4)))
        elif kind == 4:
            base = rng.choice(["N/A", "NOT APPLICABLE", "NOT_APPLICABLE", "ANY", "()", "-2147483648"])
            values.append(rng.choice(["", " ", "x"]) + rng.choice([base, base.lower()]) + rng.choice(["", "X", " ", ".0", "00"]))
        else:
            values.append(rng.choice([True, False, 0.5, -3, "t", "f", "true "]))
    return values


@needs_reference
def test_condition_value_equals_reference_on_rmap_literals_and_generated_values():
    from crds.core.utils import condition_value as reference_cv

    strings, numbers = rmap_literals()
    assert len(strings) > 10_000 and len(numbers) > 50   # the scan really found the rmaps' keys
    values = [*strings, *numbers, *generated_values(6000)]
    mismatches = [(v, reference_cv(v), condition_value(v)) for v in values
                  if reference_cv(v) != condition_value(v)]
    assert mismatches == []


@needs_reference
def test_condition_match_key_equals_reference_on_rmap_literals_and_generated_keys():
    from crds.core.selectors import MatchSelector

    strings, numbers = rmap_literals()
    rng = random.Random(2)
    alternatives = ["WFC", "hrc", " SBC ", "", "ANY", "N/A", "1", "2.0", "A*", "F?W", "#X#", "(re)", "{lit}"]
    generated: list[object] = ["A|b| ", "#a|b#", "NOT a|b", "NOT_A|B", "BETWEEN 1 2", "{a|b}", "(a|b)", "{a|b)",
                               "(a|b}", "|", " | ", "( a )", " (a)", ("a", " b", 1), ["x", True], 1062, 1.5, True]
    for _ in range(3000):
        parts = [rng.choice(alternatives) for _ in range(rng.randrange(1, 5))]
        text = rng.choice(["|", " | ", "|"]).join(parts)
        generated.append(rng.choice(["", "#", "(", "{", "NOT ", "between "]) + text + rng.choice(["", "#", ")", "}"]))
    elements = [*strings, *numbers, *generated]
    mismatches = [(e, MatchSelector.condition_key_element(e), condition_match_key(e)) for e in elements
                  if MatchSelector.condition_key_element(e) != condition_match_key(e)]
    assert mismatches == []


@needs_reference
def test_is_esoteric_equals_reference():
    from crds.core.selectors import esoteric_key

    strings, _ = rmap_literals()
    samples = [*strings, "{a)", "(a}", "#a", "#", "not", "Between", "x#", "NOTHING", "#a|b#", "", "(", ")"]
    assert [s for s in samples if esoteric_key(s) != is_esoteric(s)] == []


@needs_reference
def test_condition_header_equals_reference_filtering_and_conditioning():
    from crds.core.heavy_client import check_parameters
    from crds.core.utils import condition_header as reference_condition_header

    rng = random.Random(3)
    values = generated_values(400, seed=4) + [None, [1], (2,), {"a": 1}, b"bytes", 1 + 2j]
    for _ in range(50):
        header = {f"{rng.choice(['k', 'K', 'meta.x.'])}{rng.randrange(30)}": rng.choice(values) for _ in range(20)}
        expected = reference_condition_header(check_parameters(header))
        assert condition_header(header) == expected
        assert condition_header(header, drop_non_scalars=False) == reference_condition_header(header)   # fast=True


def test_condition_value_documented_quirks():
    # rules.md §2 step 2, each line a quirk a reimplementation easily gets wrong.
    assert condition_value("1234567890123456789") == "1.2345678901234568e+18"
    assert condition_value("N/A FOO") == "N/A"
    assert condition_value("()x") == "N/A"
    assert condition_value("NOT APPLICABLEX") == "N/A"
    assert condition_value("NOT_APPLICABLEX") == "NOT_APPLICABLEX"
    assert condition_value(4294967295) == "-1.0"
    assert condition_value(True) == "T" and condition_value("false") == "F"
    assert condition_value(" any ") == "*"
    assert condition_value("1.E5") == "1.E5"          # '1.' followed by an exponent is not a number
    assert condition_value("1e999") == "inf"          # repr(float) is not upper-cased again


def test_condition_header_drops_non_scalars_and_uppercases_keys():
    assert condition_header({"detector": "wfc", "naxis": 2, "bad": None, "arr": [1]}) == {
        "DETECTOR": "WFC", "NAXIS": "2.0"}
