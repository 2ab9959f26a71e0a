"""Read-only questions about loaded mappings: closures, match cases, who uses a file.

Everything here works on the parsed form of mappings (:mod:`crds_async.rules.parse`),
which keeps the match keys exactly as written; that is what ``crds matches`` and
``crds uses`` report.  Mappings are parsed once per :class:`MappingStore` and
shared by every question asked of it, so a whole-cache ``uses`` index costs one
pass over the cache and each later question is a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..errors import CrdsError, RulesError
from .contexts import is_mapping_name
from .parse import ParsedMapping, SelectorCall, parse_checked_mapping

__all__ = [
    "SPECIAL_VALUES",
    "is_special_value",
    "MappingStore",
    "MatchCase",
    "UsesIndex",
    "direct_names",
    "selector_reference_names",
    "match_item",
    "file_matches",
    "required_parkeys",
    "minimize_header",
]

#: Keys the reference adds to the required parkeys of every JWST rmap.
JWST_EXTRA_KEYS = ("META.VISIT.TSOVISIT", "META.INSTRUMENT.LAMP_STATE")

#: Selections that name no file: "not applicable" and "omit" markers.
SPECIAL_VALUES = frozenset({"N/A", "TEMP_N/A", "n/a", "temp_n/a", "OMIT", "TEMP_OMIT", "omit"})

#: Selectors whose keys are dates or versions written as one string for several parkeys.
_SPLIT_KEYS = {"UseAfter": None, "ClosestTime": None, "VersionAfter": "."}


def is_special_value(value: object) -> bool:
    """True for ``N/A``/``OMIT`` style selections that name no file."""
    return isinstance(value, str) and value in SPECIAL_VALUES


def mapping_kind(name: str) -> str:
    """``pmap``, ``imap`` or ``rmap`` from a mapping file name."""
    return name.rsplit(".", 1)[-1]


class MappingStore:
    """Parsed mappings by name, loaded on demand and kept.

    Pure: a subclass says where the text comes from (:meth:`read_text`, :meth:`all_names`);
    ``crds_async.engine.mapping_files.FileMappingStore`` reads a cache directory.

    Parameters
    ----------
    verify_checksum : bool
        Check each file's ``sha1sum`` header while loading.
    """

    def __init__(self, *, verify_checksum: bool = True) -> None:
        self.verify_checksum = verify_checksum
        self._parsed: dict[str, ParsedMapping] = {}

    def read_text(self, name: str) -> str:
        """The text of mapping ``name`` (RulesError naming it if there is none)."""
        raise NotImplementedError

    def all_names(self) -> list[str]:
        """Every mapping name the store holds, sorted."""
        raise NotImplementedError

    def load(self, name: str) -> ParsedMapping:
        """The parsed mapping ``name`` (RulesError naming the file if it cannot be loaded)."""
        parsed = self._parsed.get(name)
        if parsed is None:
            if not is_mapping_name(name):
                raise RulesError(f"{name!r} is not a plain mapping file name (.pmap/.imap/.rmap)")
            parsed = parse_checked_mapping(self.read_text(name), name, verify_checksum=self.verify_checksum)
            self._parsed[name] = parsed
        return parsed

    def children(self, name: str) -> list[str]:
        """Mappings one level below ``name`` (imaps of a pmap, rmaps of an imap)."""
        if mapping_kind(name) == "rmap":
            return []
        selector = self.load(name).selector
        if not isinstance(selector, dict):
            raise RulesError(f"{name}: a context's selector must be a dict")
        return sorted({v for v in selector.values() if isinstance(v, str) and not is_special_value(v)})

    def closure(self, name: str) -> list[str]:
        """``name`` and every mapping below it, sorted (the reference's ``mapping_names``)."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(self.children(current))
        return sorted(seen)

    def reference_names(self, name: str) -> list[str]:
        """Every reference file named by the rmaps under ``name``, sorted."""
        names: set[str] = set()
        for mapping in self.closure(name):
            if mapping_kind(mapping) == "rmap":
                names.update(selector_reference_names(self.load(mapping).selector))
        return sorted(names)


def _leaves(selector: object) -> Iterator[object]:
    if isinstance(selector, SelectorCall):
        for _key, value in selector.choices:
            yield from _leaves(value)
    elif isinstance(selector, dict):
        for value in selector.values():
            yield from _leaves(value)
    else:
        yield selector


def selector_reference_names(selector: object) -> set[str]:
    """File names at the leaves of an rmap selector, without ``N/A``/``OMIT``."""
    names: set[str] = set()
    for leaf in _leaves(selector):
        members = leaf if isinstance(leaf, tuple) else tuple(leaf.values()) if isinstance(leaf, dict) else (leaf,)
        names.update(m for m in members if isinstance(m, str) and not is_special_value(m))
    return names


# --------------------------------------------------------------------------- required parkeys
def _rmap_required(header: dict) -> list[str]:
    names = [p for level in parkey_levels(header) for p in level]
    switch = header.get("reffile_switch")
    if isinstance(switch, str) and switch.upper() != "NONE":
        names.append(switch.upper())
    extra = header.get("extra_keys", ())
    names.extend(str(k) for k in (extra if isinstance(extra, tuple) else (extra,)))
    if str(header.get("observatory", "")).lower() == "jwst":
        names.extend(JWST_EXTRA_KEYS)
    return names


def required_parkeys(store: MappingStore, mapping: str) -> list[str]:
    """Dataset keywords the rules of ``mapping`` (an .imap or .rmap) look at, sorted.

    For an imap: its own parkey (``REFTYPE``) and extra keys plus, for every rmap it
    selects, the rmap's parkeys, ``reffile_switch`` and ``extra_keys``.
    """
    header = store.load(mapping).header
    if mapping_kind(mapping) == "rmap":
        return sorted(set(_rmap_required(header)))
    names: set[str] = set()
    parkey = header.get("parkey", ())
    names.update(str(p) for p in (parkey if isinstance(parkey, tuple) else (parkey,)))
    extra = header.get("extra_keys", ())
    names.update(str(k) for k in (extra if isinstance(extra, tuple) else (extra,)))
    for child in store.children(mapping):
        names.update(_rmap_required(store.load(child).header))
    return sorted(names)


def minimize_header(header: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """``header`` cut down to ``keys``; a missing key is ``UNDEFINED`` (looked up lower then upper case)."""
    return {key: header.get(key.lower(), header.get(key.upper(), "UNDEFINED")) for key in keys}


# --------------------------------------------------------------------------- matches
def match_item(selector: SelectorCall, parkeys: tuple[str, ...], key: object) -> tuple[tuple[str, str], ...]:
    """``((parkey, value), ...)`` that one selector key stands for, values as text.

    Date and version keys of UseAfter-like selectors are one string covering
    several parkeys (``'2006-07-04 11:32:35'`` -> DATE-OBS, TIME-OBS).
    """
    if selector.name in _SPLIT_KEYS:
        if len(parkeys) == 1:
            return ((parkeys[0], str(key)),)
        return tuple(zip(parkeys, str(key).split(_SPLIT_KEYS[selector.name])))
    elements = key if isinstance(key, tuple) else (key,)
    return tuple(zip(parkeys, (str(e) for e in elements)))


def parkey_levels(header: dict) -> tuple[tuple[str, ...], ...]:
    """The rmap ``parkey`` header as one tuple of names per selector depth."""
    raw = header.get("parkey", ())
    if not isinstance(raw, tuple):
        return ((str(raw),),)
    if raw and all(isinstance(level, str) for level in raw):
        return (tuple(raw),)  # a flat tuple: one level
    return tuple(tuple(str(p) for p in level) if isinstance(level, tuple) else (str(level),) for level in raw)


@dataclass(frozen=True, slots=True)
class MatchCase:
    """One way the rules reach a reference: who, and the parameter values per selector depth."""

    reference: str
    rmap: str
    observatory: str
    instrument: str
    filekind: str
    sections: tuple[tuple[tuple[str, str], ...], ...]

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        """All ``(parkey, value)`` pairs, match keys first, then useafter."""
        return tuple(pair for section in self.sections for pair in section)

    def format(self) -> str:
        """``ACS BIASFILE DETECTOR='HRC' ... DATE-OBS='2006-07-04' TIME-OBS='11:32:35'``."""
        pars = " ".join(f"{name}={value!r}" for name, value in self.parameters)
        return f"{self.instrument.upper()} {self.filekind.upper()} {pars}".rstrip()

    def as_dict(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "rmap": self.rmap,
            "observatory": self.observatory,
            "instrument": self.instrument,
            "filekind": self.filekind,
            "parameters": [list(pair) for pair in self.parameters],
        }


def _rmap_matches(store: MappingStore, rmap_name: str, reference: str) -> list[MatchCase]:
    parsed = store.load(rmap_name)
    header = parsed.header
    levels = parkey_levels(header)
    cases: list[MatchCase] = []

    def walk(selector: object, depth: int, sofar: tuple) -> None:
        if not isinstance(selector, SelectorCall):
            members = selector if isinstance(selector, tuple) else (selector,)
            if reference in members:
                cases.append(
                    MatchCase(
                        reference=reference,
                        rmap=rmap_name,
                        observatory=str(header.get("observatory", "")).lower(),
                        instrument=str(header.get("instrument", "")).lower(),
                        filekind=str(header.get("filekind", "")).lower(),
                        sections=sofar,
                    )
                )
            return
        parkeys = levels[depth] if depth < len(levels) else ()
        for key, value in selector.choices:
            walk(value, depth + 1, sofar + (match_item(selector, parkeys, key),))

    walk(parsed.selector, 0, ())
    return cases


def file_matches(store: MappingStore, mapping: str, reference: str) -> list[MatchCase]:
    """Every match case under ``mapping`` (any level) that selects ``reference``, sorted."""
    cases: list[MatchCase] = []
    for name in store.closure(mapping):
        if mapping_kind(name) == "rmap":
            cases.extend(_rmap_matches(store, name, reference))
    return sorted(cases, key=lambda c: (c.observatory, c.instrument, c.filekind, c.sections))


# --------------------------------------------------------------------------- uses
def direct_names(store: MappingStore, name: str) -> set[str]:
    """Files a mapping names itself: references of an rmap, sub-mappings of a context."""
    if mapping_kind(name) == "rmap":
        return selector_reference_names(store.load(name).selector)
    return set(store.children(name))


class UsesIndex:
    """Reverse index ``file -> mappings that name it directly``.

    Parameters
    ----------
    direct : mapping of str to iterable of str
        For each indexed mapping, the files it names itself (:func:`direct_names`).
    failures : mapping of str to str, optional
        Mappings that could not be loaded, with the reason (the reference also
        skips them, with an error message).
    """

    def __init__(self, direct: Mapping[str, Iterable[str]], failures: Mapping[str, str] | None = None) -> None:
        self.failures: dict[str, str] = dict(failures or {})
        self._parents: dict[str, set[str]] = {}
        for name, children in direct.items():
            for child in children:
                self._parents.setdefault(child, set()).add(name)

    @classmethod
    def build(cls, store: MappingStore, names: Iterable[str]) -> "UsesIndex":
        """Load every mapping in ``names`` once and index it."""
        direct: dict[str, set[str]] = {}
        failures: dict[str, str] = {}
        for name in names:
            try:
                direct[name] = direct_names(store, name)
            except CrdsError as exc:
                failures[name] = str(exc)
        return cls(direct, failures)

    def uses(self, filename: str) -> list[str]:
        """Every indexed mapping that refers to ``filename`` directly or through lower mappings."""
        found: set[str] = set()
        todo = [filename]
        while todo:
            for parent in self._parents.get(todo.pop(), ()):
                if parent not in found:
                    found.add(parent)
                    todo.append(parent)
        return sorted(found)
