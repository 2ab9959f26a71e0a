"""Selectors: the nodes of an rmap's decision tree, built once, evaluated fast.

``build_selector`` turns a parsed ``SelectorCall`` tree into ``Match``,
``UseAfter``, ``VersionAfter``, ``ClosestTime``, ``GeometricallyNearest`` and
``Bracket`` objects whose ``choose(header)`` reproduces the reference's answers
and error texts (rules.md §3).  Compiled forms: each Match key is a tuple of
small matcher objects, Match results are memoised per tuple of parameter values
(many datasets share them), and UseAfter dates are a sorted tuple searched by
bisection.

Errors: :class:`NestedLookupError` (no match, no date <= lookup date) lets an
enclosing Match try its next weight group; any other :class:`LookupFailure`
(validation, bad date) ends the lookup at once, as in the reference.
"""

from __future__ import annotations

import ast
import bisect
import fnmatch
import re
import sys
from collections.abc import Mapping, Sequence

from ..errors import LookupFailure, RulesError
from .conditioning import condition_match_key, condition_value, is_esoteric
from .parse import SelectorCall
from .timestamps import abs_time_delta, lookup_date

__all__ = [
    "NestedLookupError",
    "Selector",
    "MatchSelector",
    "UseAfterSelector",
    "VersionAfterSelector",
    "build_selector",
    "glob_alternatives",
    "DEFAULT_SUBSTITUTIONS",
]

#: Applied to every rmap's Match keys (not to header values).
DEFAULT_SUBSTITUTIONS = {"META.SUBARRAY.NAME": {"GENERIC": "N/A"}, "SUBARRAY": {"GENERIC": "N/A"}}
_VERSION = re.compile(r"^(\d{1,8}(\.\d{1,8}(\.\d{1,8})?)?)[a-zA-Z0-9_+\-.]{0,128}$")
_MEMO_LIMIT = 4096


class NestedLookupError(LookupFailure):
    """A lookup that an enclosing Match may recover from by trying its next group."""


def glob_alternatives(value: str) -> list[str]:
    """``'B| A'`` -> ``['A', 'B']``; esoteric or simple values stay whole."""
    if not is_esoteric(value) and "|" in value:
        return sorted(part.strip() for part in value.split("|") if part.strip())
    return [value]


# --------------------------------------------------------------------- matchers
# match(value) -> 1 (match), 0 (don't care), -1 (no match), as the reference.

class _Equal:
    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key

    def match(self, value: str) -> int:
        if value == self.key or value == "*":
            return 1
        return 0 if value == "N/A" else -1


class _Regex(_Equal):
    __slots__ = ("regex",)

    def __init__(self, pattern: str):
        super().__init__(pattern)
        self.regex = None  # compiled on first use: most patterns of a context are never needed

    def __getstate__(self):
        return self.key  # a compiled-context cache stores the pattern, not the regex

    def __setstate__(self, state):
        self.key, self.regex = state, None

    def match(self, value: str) -> int:
        result = _Equal.match(self, value)
        if result != -1:
            return result
        if self.regex is None:
            self.regex = re.compile(self.key)
        return 1 if self.regex.match(value) else -1


class _OneOf(_Regex):
    """A glob of plain ``|`` alternatives (no ``*?[``): set membership, the answers of its regex.

    Most globs in real rules are lists of names (``'F435W|F475W|F555W'``); their regex
    matches exactly the alternatives, so a set lookup gives the same result without
    compiling a regex per key.
    """

    __slots__ = ("members",)

    def __init__(self, pattern: str, members):
        super().__init__(pattern)
        self.members = frozenset(members)

    def __getstate__(self):
        return self.key, tuple(sorted(self.members))

    def __setstate__(self, state):
        self.key, members = state
        self.regex, self.members = None, frozenset(members)

    def match(self, value: str) -> int:
        if value in self.members or value == "*" or value == self.key:
            return 1
        return 0 if value == "N/A" else -1


def _glob(key: str) -> _Regex:
    # fnmatch semantics per '|' alternative, anchored on both ends
    alternatives = glob_alternatives(key)
    pattern = "^(" + "|".join(fnmatch.translate(p) for p in alternatives) + ")$"
    if not any(special in alternative for alternative in alternatives for special in "*?["):
        return _OneOf(pattern, alternatives)
    return _Regex(pattern)


class _Inequality(_Equal):
    __slots__ = ("test", "bound")
    _PATTERN = re.compile(r"^([><]=?)\s*([-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)")
    _TESTS = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__, "<=": float.__le__}

    def __init__(self, key: str):
        super().__init__(key)
        found = self._PATTERN.match(key)
        if not found:
            raise RulesError(f"invalid inequality match key {key!r}")
        self.test = self._TESTS[found.group(1)]
        self.bound = float(found.group(2))

    def match(self, value: str) -> int:
        result = _Equal.match(self, value)
        if result != -1:
            return result
        try:
            number = float(value)
        except (TypeError, ValueError):
            return -1
        return 1 if self.test(number, self.bound) else -1


class _Binary(_Equal):
    __slots__ = ("both", "first", "second")

    def __init__(self, key: str, operator: str):
        super().__init__(key)
        self.both = operator == "AND"
        if key.strip().startswith("#"):
            key = key.strip()[1:-1]
        parts = [part.strip() for part in key.split(operator)]
        self.first, self.second = _matcher(parts[0]), _matcher(parts[1])

    def match(self, value: str) -> int:
        value = value.upper()
        result = _Equal.match(self, value)
        if result != -1:
            return result
        one, two = self.first.match(value) == 1, self.second.match(value) == 1
        return 1 if (one and two if self.both else one or two) else -1


class _DontCare:
    __slots__ = ()

    def match(self, value: str) -> int:
        return 0


class _Not:
    __slots__ = ("inner",)

    def __init__(self, key: str):
        self.inner = _matcher(key[len("NOT "):].strip())

    def match(self, value: str) -> int:
        return -self.inner.match(value)


_SHARED_MATCHERS: dict[str, object] = {}


def _shared_matcher(key: str):
    """:func:`_matcher`, one object per distinct key element.

    Matchers hold no per-use state, and Match tables repeat their values (a detector
    name in hundreds of rows): sharing them makes a compiled context a fraction of the
    objects to serialize and load back.
    """
    found = _SHARED_MATCHERS.get(key)
    if found is None:
        if len(_SHARED_MATCHERS) >= 1 << 16:
            _SHARED_MATCHERS.clear()
        found = _SHARED_MATCHERS[key] = _matcher(key)
    return found


def _matcher(key: str):
    """The matcher for one conditioned Match key element (rules.md §3.1 table)."""
    if key.startswith("(") and key.endswith(")"):
        return _Regex(key[1:-1])
    if key.startswith("{") and key.endswith("}"):
        return _Equal(key[1:-1])
    if key.startswith("#") and key.endswith("#"):
        key = key.upper()
        if " AND " in key:
            return _Binary(key, "AND")
        if " OR " in key:
            return _Binary(key, "OR")
        return _matcher(key[1:-1])
    if key.upper().startswith("BETWEEN"):
        parts = key.split()
        if len(parts) != 3 or float(parts[1]) > float(parts[2]):
            raise RulesError(f"invalid between relation {key!r}: use 'BETWEEN lower upper'")
        return _Binary(">=" + parts[1] + " AND <" + parts[2], "AND")
    if key.upper().startswith("NOT "):
        return _Not(key)
    if "|" in key or "*" in key:
        return _glob(key)
    if key == "N/A":
        return _DontCare()
    if key.startswith((">", "<")):
        return _Inequality(key)
    return _Equal(key)


# -------------------------------------------------------------------- selectors

class Selector:
    """Base: ``choose(header)`` returns a leaf (file name, 'N/A', tuple ...)."""

    __slots__ = ("parameters",)

    def choose(self, header: Mapping[str, str]) -> object:
        raise NotImplementedError

    def leaves(self) -> list[object]:
        """Every leaf value below this selector (file names, N/A, tuples)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        # Same text as the reference's selectors: a tie of a leaf with selectors returns
        # them inside a tuple, and that tuple is then printed as the "answer".
        return f"{type(self).__name__}({self.parameters!r}, nselections={len(self.choices)})"


def _choose(choice: object, header: Mapping[str, str]) -> object:
    return choice.choose(header) if isinstance(choice, Selector) else choice


def _leaves_of(choices: Sequence[object]) -> list[object]:
    out: list[object] = []
    for choice in choices:
        out.extend(choice.leaves() if isinstance(choice, Selector) else [choice])
    return out


class MatchSelector(Selector):
    """Match: weighted matching of parameter tuples, ties merged, fall-through by weight."""

    __slots__ = ("keys", "choices", "matchers", "valid", "substitutions", "merge_overlaps", "_memo", "name",
                 "_accepted", "_masks", "_columns", "_all_rows", "_merged")

    def __init__(self, parameters: tuple[str, ...], raw_choices: Sequence[tuple[object, object]],
                 rmap_header: Mapping, name: str):
        self.parameters = parameters
        self.name = name
        self.substitutions = dict(DEFAULT_SUBSTITUTIONS)
        self.substitutions.update(rmap_header.get("substitutions") or {})
        overlaps = rmap_header.get("merge_overlaps")
        self.merge_overlaps = overlaps is None or str(overlaps).upper() in ("TRUE", "1")
        conditioned: dict[tuple[str, ...], object] = {}
        for key, choice in self._substituted(raw_choices):
            elements = key if isinstance(key, tuple) else (key,)
            if len(elements) != len(parameters):
                raise RulesError(f"{name}: Match key {key!r} does not have {len(parameters)} values")
            conditioned[tuple(sys.intern(condition_match_key(e)) for e in elements)] = choice
        ordered = sorted(conditioned.items(), key=lambda item: item[0])
        self.keys = [k for k, _ in ordered]
        self.choices = [c for _, c in ordered]
        self.matchers = [tuple(_shared_matcher(element) for element in key) for key in self.keys]
        self.valid = self._valid_values()
        self._memo: dict[tuple[str, ...], object] = {}
        self._clear_column_memos()

    def _clear_column_memos(self) -> None:
        """Per parameter: values known to pass validation, and value -> (failing, matching) row masks."""
        self._accepted: list[set[str]] = [set() for _ in self.parameters]
        self._masks: list[dict[str, tuple[int, int]]] = [{} for _ in self.parameters]
        self._columns: list[tuple | None] = [None] * len(self.parameters)  # see _column_table
        self._all_rows = (1 << len(self.matchers)) - 1
        self._merged: dict[tuple[int, ...], object] = {}  # tied rows -> their merged choice (see _tie)

    def __getstate__(self):
        # the per-value memos are rebuilt as values are met; a compiled context stores the rules only
        return {name: getattr(self, name) for name in self.__slots__ + Selector.__slots__
                if name not in ("_memo", "_accepted", "_masks", "_columns", "_merged")}

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)
        self._memo = {}
        self._clear_column_memos()

    def _substituted(self, raw_choices):
        items = dict(raw_choices)
        for position, parameter in enumerate(self.parameters):
            table = self.substitutions.get(parameter)
            if not table:
                continue
            for key in list(items):
                value = key[position] if isinstance(key, tuple) else key
                if isinstance(value, str) and value in table:
                    replacement = table[value]
                    if isinstance(replacement, list):
                        replacement = tuple(replacement)
                    new_key = (key[:position] + (replacement,) + key[position + 1:]) if isinstance(key, tuple) \
                        else replacement
                    items[new_key] = items.pop(key)
        return items.items()

    def _valid_values(self) -> dict[str, list[str]]:
        valid: dict[str, list[str]] = {}
        for position, parameter in enumerate(self.parameters):
            values: set[str] | None = set()
            for key in self.keys:
                if is_esoteric(key[position]):
                    values = None  # esoteric keys: no checking at all
                    break
                values.update(glob_alternatives(key[position]))
            valid[parameter] = [] if values is None else sorted(values)
        return valid

    def leaves(self) -> list[object]:
        return _leaves_of(self.choices)

    # validation of header values (rules.md §3.1 choose step 2)
    def _validate(self, name: str, value: str, valid: list[str]) -> None:
        if value in valid or condition_value(value) in valid:
            return
        if "*" in valid or "ANY" in valid or "N/A" in valid or not valid:
            return
        if value.startswith("NOT"):
            return self._validate(name, value[3:].strip(), valid)
        if is_esoteric(value) or value in ("*", "ANY", "N/A"):
            return
        if value.lower().startswith("between"):
            try:
                _between, low, high = value.split()
            except ValueError as exc:
                raise LookupFailure(str(exc)) from None
            self._validate(name, low, valid)
            self._validate(name, high, valid)
            return
        if len(valid) == 1 and ":" in valid[0]:
            low_text, high_text = valid[0].split(":")
            low, high = float(low_text), float(high_text)
            if low <= float(value) <= high:
                return
            raise LookupFailure(f" parameter={name!r} value ={value!r} is not in range [{low} .. {high}]")
        table = self.substitutions.get(name)
        if table and value in table:
            return self._validate(name, table[value], valid)
        raise LookupFailure(f" parameter={name!r} value={value!r} is not in {valid!r}")

    def _column_masks(self, position: int, value: str) -> tuple[int, int]:
        """(rows whose key rejects ``value`` at ``position``, rows whose key matches it), as bit masks."""
        table = self._columns[position]
        if table is None:
            table = self._columns[position] = self._column_table(position)
        plain_by_key, plain_rows, others = table
        # plain keys (_Equal): '*' matches every one, 'N/A' none and rejects none, anything
        # else matches the rows holding it and is rejected by the other plain rows
        if value == "*":
            failing, matching = 0, plain_rows
        elif value == "N/A":
            failing = matching = 0
        else:
            matching = plain_by_key.get(value, 0)
            failing = plain_rows & ~matching
        for matcher, rows in others:
            status = matcher.match(value)
            if status == 1:
                matching |= rows
            elif status == -1:
                failing |= rows
        masks = self._masks[position]
        if len(masks) >= _MEMO_LIMIT:
            masks.clear()
        masks[value] = (failing, matching)
        return failing, matching

    def _column_table(self, position: int) -> tuple[dict[str, int], int, list[tuple[object, int]]]:
        """One parameter's keys: plain value -> rows, all plain rows, and (matcher, its rows) of the others.

        The other matchers (globs, inequalities, NOT ...) are grouped by matcher: equal key
        elements share one matcher object, and a value's status under it is the same in every
        row that holds it, so a new value costs one ``match`` per distinct key, not per row.
        """
        plain_by_key: dict[str, int] = {}
        plain_rows = 0
        others: dict[int, list] = {}
        for index, row in enumerate(self.matchers):
            matcher = row[position]
            if type(matcher) is _Equal:
                plain_by_key[matcher.key] = plain_by_key.get(matcher.key, 0) | 1 << index
                plain_rows |= 1 << index
            elif type(matcher) is not _DontCare:  # a don't-care row is never rejected nor matched
                others.setdefault(id(matcher), [matcher, 0])[1] |= 1 << index
        return plain_by_key, plain_rows, [(matcher, rows) for matcher, rows in others.values()]

    def _candidates(self, values: tuple[str, ...]) -> list[object]:
        """Validate, winnow and rank: the choice of each weight group, best first.

        Each parameter's value is checked once (``_accepted``) and turned once into two
        row masks (``_column_masks``): the rows whose key rejects it and those it matches.
        A row survives if no parameter rejects it; its weight is minus the number of
        parameters it matches (a don't-care counts 0), as the matchers' statuses sum.
        """
        for position, (name, value) in enumerate(zip(self.parameters, values)):
            accepted = self._accepted[position]
            if value not in accepted:
                self._validate(name, value, self.valid[name])
                if len(accepted) >= _MEMO_LIMIT:
                    accepted.clear()
                accepted.add(value)
        failing = 0
        matching: list[int] = []
        for position, value in enumerate(values):
            masks = self._masks[position].get(value)
            if masks is None:
                masks = self._column_masks(position, value)
            failing |= masks[0]
            matching.append(masks[1])
        weights: dict[int, list[int]] = {}
        survivors = self._all_rows & ~failing
        while survivors:  # in row (key) order, which decides the order of tied rows
            lowest = survivors & -survivors
            index = lowest.bit_length() - 1
            survivors ^= lowest
            weight = -sum((mask >> index) & 1 for mask in matching)
            weights.setdefault(weight, []).append(index)
        groups = []
        for weight in sorted(weights):
            members = weights[weight]
            if len(members) == 1:
                groups.append(self.choices[members[0]])
                continue
            if not self.merge_overlaps:
                groups.append(LookupFailure("More than one match clause matched."))
                continue
            groups.append(self._tie(tuple(members)))
        return groups

    def _tie(self, members: tuple[int, ...]) -> object:
        """The one choice of tied rows (row indices): their UseAfter tables merged.

        Remembered per set of rows: the same rows tie for many parameter tuples, and a
        merged table is a new object whose identity then also keys the plans' caches.
        """
        found = self._merged.get(members)
        if found is not None:
            return found
        tied = [self.choices[i] for i in members]
        if isinstance(tied[0], UseAfterSelector):
            merged = tied[0]
            for other in tied[1:]:
                if not isinstance(other, UseAfterSelector):
                    # the reference fails reaching into a leaf here; keep its message
                    merged = LookupFailure(f"'{type(other).__name__}' object has no attribute '_selections'")
                    break
                merged = merged.merge(other)
        elif isinstance(tied[0], Selector):
            merged = LookupFailure(f"cannot merge tied {type(tied[0]).__name__} selectors")
        else:
            merged = tuple(tied)  # tied leaves come back as a tuple, as in the reference
        if len(self._merged) >= _MEMO_LIMIT:
            self._merged.clear()
        self._merged[members] = merged
        return merged

    def groups(self, values: tuple[str, ...]) -> list[object]:
        """The choice of each weight group for these parameter values, best first (memoised).

        Raises
        ------
        LookupFailure
            A value fails validation (the reference's text).
        """
        groups = self._memo.get(values)
        if groups is None:
            try:
                groups = self._candidates(values)
            except LookupFailure as exc:
                groups = exc
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[values] = groups
        if isinstance(groups, LookupFailure):
            raise groups
        return groups

    def choose(self, header: Mapping[str, str]) -> object:
        values = tuple(header.get(p, "UNDEFINED") for p in self.parameters)
        for parameter, value in zip(self.parameters, values):
            if parameter not in header and "N/A" not in self.valid[parameter]:
                raise LookupFailure(f"Match required lookup parameter {parameter!r} is undefined.")
        for group in self.groups(values):
            if isinstance(group, LookupFailure):
                raise group
            try:
                return _choose(group, header)
            except NestedLookupError:
                continue
        raise NestedLookupError("No match found.")


class UseAfterSelector(Selector):
    """UseAfter: the choice of the greatest date key <= the dataset's date (string order)."""

    __slots__ = ("dates", "choices")

    def __init__(self, parameters: tuple[str, ...], items: Sequence[tuple[str, object]]):
        self.parameters = parameters
        ordered = sorted(items, key=lambda item: str(item[0]))
        # interned: the same dates recur across tables, and a compiled context then serializes each once;
        # a tuple, so that plans share it as their break dates instead of copying it
        self.dates = tuple(sys.intern(str(k)) for k, _ in ordered)
        self.choices = [c for _, c in ordered]

    def leaves(self) -> list[object]:
        return _leaves_of(self.choices)

    def merge(self, other: "UseAfterSelector") -> "UseAfterSelector":
        """Union of dates; on a collision the greater choice (file name) wins."""
        table: dict[str, object] = dict(zip(self.dates, self.choices))
        for date, choice in zip(other.dates, other.choices):
            if date in table:
                mine = table[date]
                table[date] = mine if mine >= choice else choice  # type: ignore[operator]
            else:
                table[date] = choice
        merged = UseAfterSelector.__new__(UseAfterSelector)
        merged.parameters = self.parameters
        merged.dates = tuple(sorted(table))  # already text and distinct: no key function needed
        merged.choices = [table[date] for date in merged.dates]
        return merged

    def lookup_key(self, header: Mapping[str, str]) -> str:
        for parameter in self.parameters:
            if parameter not in header:
                raise LookupFailure(f"UseAfter required lookup parameter {parameter!r} is undefined.")
        return lookup_date([header[p] for p in self.parameters], self.parameters)

    def choose(self, header: Mapping[str, str]) -> object:
        date = self.lookup_key(header)
        index = bisect.bisect_right(self.dates, date)
        if index == 0:
            raise NestedLookupError(f"No selection <= {date!r}")
        return _choose(self.choices[index - 1], header)


def _version_tuple(version: str) -> tuple[int, int, int]:
    found = _VERSION.match(version) if isinstance(version, str) else None
    if not found:
        raise LookupFailure(f"Invalid version string {version!r}")
    parts = [int(p, 10) for p in found.group(1).split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


class _OrderedKeys(Selector):
    """A selector over keys kept in one order: ``keys[i]`` selects ``choices[i]``."""

    __slots__ = ("keys", "choices")

    def __init__(self, parameters: tuple[str, ...], items: Sequence[tuple[object, object]],
                 key_of=lambda key: key, order=lambda key: key):
        self.parameters = parameters
        ordered = sorted(((key_of(k), c) for k, c in items), key=lambda item: order(item[0]))
        self.keys = [k for k, _ in ordered]
        self.choices = [c for _, c in ordered]

    def leaves(self) -> list[object]:
        return _leaves_of(self.choices)


class VersionAfterSelector(_OrderedKeys):
    """VersionAfter: the greatest version key <= the dataset's version."""

    __slots__ = ()

    def __init__(self, parameters: tuple[str, ...], items: Sequence[tuple[str, object]]):
        super().__init__(parameters, items, key_of=_version_tuple)

    def choose(self, header: Mapping[str, str]) -> object:
        joined = "|".join(glob_alternatives(".".join(header.get(p, "UNDEFINED") for p in self.parameters)))
        version = _version_tuple(joined)
        index = bisect.bisect_right(self.keys, version)
        if index == 0:
            raise NestedLookupError(f"No selection <= {version!r}")
        return _choose(self.choices[index - 1], header)


class ClosestTimeSelector(UseAfterSelector):
    """ClosestTime: the date key nearest the dataset's date (float32 distances, first minimum)."""

    __slots__ = ()

    def choose(self, header: Mapping[str, str]) -> object:
        import numpy as np  # only the test observatory uses this selector

        date = self.lookup_key(header)
        distances = np.array([abs_time_delta(date, key) for key in self.dates], "f")
        return _choose(self.choices[int(np.argmin(distances))], header)


def _number(parameter: str, value: str, short: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise LookupFailure(f"{short} Invalid number for {parameter!r} value = {value!r}") from None


class GeometricallyNearestSelector(_OrderedKeys):
    """GeometricallyNearest: the numeric key nearest the value (float32, first minimum)."""

    __slots__ = ()

    def __init__(self, parameters: tuple[str, ...], items: Sequence[tuple[object, object]]):
        super().__init__(parameters, items, key_of=condition_value)  # keys sorted as text

    def choose(self, header: Mapping[str, str]) -> object:
        import numpy as np  # only the test observatory uses this selector

        value = _number(self.parameters[0], header[self.parameters[0]], "GeometricallyNearest")
        distances = np.abs(np.array(self.keys, dtype="f") - value)
        return _choose(self.choices[int(np.argmin(distances))], header)


class BracketSelector(_OrderedKeys):
    """Bracket: the pair of choices around the value (duplicated on an exact hit or off the ends)."""

    __slots__ = ()

    def __init__(self, parameters: tuple[str, ...], items: Sequence[tuple[object, object]]):
        super().__init__(parameters, items, order=str)  # the reference orders keys as text

    def choose(self, header: Mapping[str, str]) -> object:
        value = _number(self.parameters[0], header[self.parameters[0]], "Bracket")
        index = 0
        while index < len(self.keys) and value > self.keys[index]:
            index += 1
        if index == len(self.keys):
            low = high = index - 1
        elif index == 0 or value == self.keys[index]:
            low = high = index
        else:
            low, high = index - 1, index
        first = _choose(self.choices[low], header)
        return first, (first if low == high else _choose(self.choices[high], header))


def _relation(text: object) -> tuple[object, str]:
    """A SelectVersion key or value as (version, operator); 'default' sorts after every version."""
    text = str(text)
    if text.replace("=", "").strip() == "default":
        return (sys.maxsize, "=")
    if not text.startswith(("<", "=")):
        text = "=" + text
    found = re.match(r"^([<=]=?)(.*)$", text)
    if not found:
        raise LookupFailure(f"Illegal version expression in: {text!r}")
    try:
        version = ast.literal_eval(found.group(2).strip())  # a literal, never code
    except (ValueError, SyntaxError):
        raise LookupFailure(f"Invalid version expression in: {text!r}") from None
    return (version, found.group(1).replace("==", "="))


class SelectVersionSelector(_OrderedKeys):
    """SelectVersion: the first relation (``<v``, ``=v``, ``default``) the value does not exceed."""

    __slots__ = ()

    def __init__(self, parameters: tuple[str, ...], items: Sequence[tuple[object, object]]):
        super().__init__(parameters, items, key_of=_relation)

    def choose(self, header: Mapping[str, str]) -> object:
        name = self.parameters[0]
        value = header[name]
        if value.replace("=", "").strip() != "default":
            _number(name, value, "SelectVersion")
        target = _relation(value)
        for key, choice in zip(self.keys, self.choices):
            if not key < target:
                return _choose(choice, header)
        raise LookupFailure("list index out of range")  # the reference runs off its list here


_SIMPLE = {"UseAfter": UseAfterSelector, "SelectVersion": SelectVersionSelector, "VersionAfter": VersionAfterSelector,
           "ClosestTime": ClosestTimeSelector, "GeometricallyNearest": GeometricallyNearestSelector,
           "Bracket": BracketSelector}


def build_selector(call: SelectorCall, parkeys: Sequence[Sequence[str]], rmap_header: Mapping,
                   name: str, depth: int = 0) -> Selector:
    """Build the selector tree of one rmap; selector depth ``i`` uses ``parkeys[i]``."""
    if depth >= len(parkeys):
        raise RulesError(f"{name}: selector nesting is deeper than the parkey header ({len(parkeys)} levels)")
    parameters = tuple(str(p).upper() for p in parkeys[depth])
    items = [(key, build_selector(value, parkeys, rmap_header, name, depth + 1)
              if isinstance(value, SelectorCall) else value) for key, value in call.choices]
    if call.name == "Match":
        return MatchSelector(parameters, items, rmap_header, name)
    if call.name in _SIMPLE:
        return _SIMPLE[call.name](parameters, items)
    raise RulesError(f"{name}:{call.lineno}: the {call.name} selector is not supported for evaluation")
