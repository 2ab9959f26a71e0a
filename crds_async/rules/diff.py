"""Logical differences between two mappings (contexts, imaps or rmaps).

The result is the same set of difference tuples the reference's ``crds diff``
prints by default (no header differences, no recursion into whole added or
deleted mappings): each is a path of ``(old, new)`` mapping pairs and selector
keys, ending with a message such as ``replaced x.fits with y.fits``.  Context
selections are followed into replaced sub-mappings; rmap selectors are compared
key by key on the keys exactly as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RulesError
from .inspect import MappingStore, is_special_value, mapping_kind, match_item, parkey_levels
from .parse import SelectorCall

__all__ = ["Difference", "diff_mappings"]


@dataclass(frozen=True, slots=True)
class Difference:
    """One logical difference.

    ``path`` holds ``(old, new)`` mapping pairs and selector keys (tuples of
    strings), like the reference's diff tuples; ``message`` is the last element.
    """

    path: tuple[tuple[str, ...], ...]
    message: str
    action: str  # added | deleted | replaced | changed
    instrument: str | None = None
    filekind: str | None = None
    old_file: str | None = None
    new_file: str | None = None
    mapping_pair: tuple[str, str] | None = field(default=None)

    def as_tuple(self) -> tuple:
        """The reference's diff tuple, quotes removed from the message."""
        return self.path + (self.message,)

    def text(self) -> str:
        return repr(self.as_tuple())

    def as_dict(self) -> dict[str, object]:
        return {
            "instrument": self.instrument,
            "filekind": self.filekind,
            "action": self.action,
            "old": self.old_file,
            "new": self.new_file,
            "mappings": list(self.mapping_pair) if self.mapping_pair else None,
            "path": [list(p) for p in self.path],
            "message": self.message,
        }


def _unquote(text: str) -> str:
    return text.replace("'", "")


def _sha1(store: MappingStore, name: str) -> object:
    return store.load(name).header.get("sha1sum")


def _context_selections(store: MappingStore, name: str) -> dict[str, str]:
    selector = store.load(name).selector
    if not isinstance(selector, dict):
        raise RulesError(f"{name}: a context's selector must be a dict")
    # Context keys are compared lower-cased (instrument names, filekinds).
    return {str(k).lower(): v for k, v in selector.items()}


class _Differ:
    def __init__(self, old_store: MappingStore, new_store: MappingStore) -> None:
        self.old_store = old_store
        self.new_store = new_store
        self.found: list[Difference] = []

    # ----------------------------------------------------------- contexts
    def contexts(self, old: str, new: str, path: tuple, instrument: str | None) -> None:
        old_sel = _context_selections(self.old_store, old)
        new_sel = _context_selections(self.new_store, new)
        pair = (old, new)
        is_pmap = mapping_kind(old) == "pmap"
        for key, old_value in old_sel.items():
            instr = key if is_pmap else instrument
            kind = None if is_pmap else key
            where = path + (pair, (key,))
            if key not in new_sel:
                self._add(where, f"deleted {old_value}", "deleted", instr, kind, old_value, None, pair)
                continue
            new_value = new_sel[key]
            if old_value == new_value:
                continue
            old_normal, new_normal = not is_special_value(old_value), not is_special_value(new_value)
            old_sum = _sha1(self.old_store, old_value) if old_normal else old_value
            new_sum = _sha1(self.new_store, new_value) if new_normal else new_value
            replaced = old_sum != new_sum
            nested_start = len(self.found)
            if old_normal and new_normal:
                if is_pmap:
                    self.contexts(old_value, new_value, path + (pair,), key)
                else:
                    self.rmaps(old_value, new_value, path + (pair,), instr, key)
            # Same basename on both sides with nothing below: a path-only difference.
            if replaced and not (old == new and len(self.found) == nested_start):
                self.found.insert(
                    nested_start,
                    Difference(where, f"replaced {old_value} with {new_value}", "replaced",
                               instr, kind, old_value, new_value, pair),
                )
        for key, new_value in new_sel.items():
            if key not in old_sel:
                instr = key if is_pmap else instrument
                kind = None if is_pmap else key
                self._add(path + (pair, (key,)), f"added {new_value}", "added", instr, kind, None, new_value, pair)

    # ----------------------------------------------------------- rmaps
    def rmaps(self, old: str, new: str, path: tuple, instrument: str | None, filekind: str | None) -> None:
        old_parsed = self.old_store.load(old)
        new_parsed = self.new_store.load(new)
        pair = (old, new)
        levels = parkey_levels(old_parsed.header)
        self.selectors(old_parsed.selector, new_parsed.selector, path + (pair,), levels, 0, True,
                       instrument, filekind, pair)

    def selectors(self, old: object, new: object, path: tuple, levels: tuple, depth: int, top: bool,
                  instrument: str | None, filekind: str | None, pair: tuple[str, str]) -> None:
        def note(where: tuple, message: str, action: str, old_file=None, new_file=None) -> None:
            self._add(where, _unquote(message), action, instrument, filekind, old_file, new_file, pair)

        if not isinstance(old, SelectorCall) or not isinstance(new, SelectorCall) or old.name != new.name:
            old_name = old.name if isinstance(old, SelectorCall) else type(old).__name__
            new_name = "N/A" if new == "N/A" else (new.name if isinstance(new, SelectorCall) else type(new).__name__)
            note(path, f"different classes {old_name} : {new_name}", "changed")
            return
        parkeys = levels[depth] if depth < len(levels) else ()
        new_levels = parkey_levels(self.new_store.load(pair[1]).header)
        new_parkeys = new_levels[depth] if depth < len(new_levels) else ()
        if parkeys != new_parkeys:
            note(path, f"different parameter lists  {parkeys!r} : {new_parkeys!r}", "changed")
            return

        def diff_key(key: object) -> tuple[str, ...]:
            return tuple(value for _name, value in match_item(old, parkeys, key))

        old_map = dict(old.choices)
        new_map = dict(new.choices)
        for key, choice in _sorted_choices(old.choices):
            where = path + (diff_key(key),)
            if key not in new_map:
                if isinstance(choice, SelectorCall):
                    self.flat(choice, f"deleted {old.name} rule for", where, levels, depth + 1, "deleted",
                              instrument, filekind, pair)
                elif top:
                    note(where, f"deleted {old.name} rule for {choice!r}", "deleted", _file(choice))
                else:
                    note(where, f"deleted terminal {choice!r}", "deleted", _file(choice))
            else:
                new_choice = new_map[key]
                if isinstance(choice, SelectorCall):
                    self.selectors(choice, new_choice, where, levels, depth + 1, False, instrument, filekind, pair)
                elif choice != new_choice:
                    note(where, f"replaced {choice!r} with {_show(new_choice)}", "replaced",
                         _file(choice), _file(new_choice))
        for key, new_choice in _sorted_choices(new.choices):
            if key in old_map:
                continue
            where = path + (diff_key(key),)
            if isinstance(new_choice, SelectorCall):
                self.flat(new_choice, f"added {new.name} rule for", where, levels, depth + 1, "added",
                          instrument, filekind, pair)
            elif top:
                note(where, f"added {new.name} rule for {new_choice!r}", "added", None, _file(new_choice))
            else:
                note(where, f"added terminal {new_choice!r}", "added", None, _file(new_choice))

    def flat(self, selector: SelectorCall, change: str, path: tuple, levels: tuple, depth: int, action: str,
             instrument: str | None, filekind: str | None, pair: tuple[str, str]) -> None:
        """Every leaf of a wholly added or deleted rule, one difference each."""
        parkeys = levels[depth] if depth < len(levels) else ()
        for key, choice in _sorted_choices(selector.choices):
            where = path + (tuple(v for _n, v in match_item(selector, parkeys, key)),)
            if isinstance(choice, SelectorCall):
                self.flat(choice, change, where, levels, depth + 1, action, instrument, filekind, pair)
            else:
                old_file, new_file = (_file(choice), None) if action == "deleted" else (None, _file(choice))
                self._add(where, _unquote(f"{change} {choice!r}"), action, instrument, filekind,
                          old_file, new_file, pair)

    def _add(self, path, message, action, instrument, filekind, old_file, new_file, pair) -> None:
        self.found.append(Difference(path, message, action, instrument, filekind, old_file, new_file, pair))


def _file(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _show(value: object) -> str:
    return value.name + "(...)" if isinstance(value, SelectorCall) else repr(value)


def _sorted_choices(choices) -> list:
    # Keys are compared as text, field by field (the order rmaps are written in).
    def sort_key(item):
        key = item[0]
        return tuple(str(f) for f in key) if isinstance(key, tuple) else (str(key),)

    deduped = dict(choices)  # a repeated key: the last one counts
    return sorted(deduped.items(), key=sort_key)


def diff_mappings(old: str, new: str, old_store: MappingStore, new_store: MappingStore | None = None,
                  ) -> list[Difference]:
    """Logical differences from mapping ``old`` to mapping ``new``.

    Parameters
    ----------
    old, new : str
        Mapping file names of the same kind (both ``.pmap``, ``.imap`` or ``.rmap``).
    old_store, new_store : MappingStore
        Where each side is loaded from (the same store for two names in one cache).

    Returns
    -------
    list of Difference
        Sorted by path; empty when the mappings select the same files.
    """
    new_store = new_store or old_store
    kind = mapping_kind(old)
    if kind != mapping_kind(new):
        raise RulesError(f"{old} and {new} are not the same kind of mapping (.pmap/.imap/.rmap)")
    differ = _Differ(old_store, new_store)
    if kind == "rmap":
        header = old_store.load(old).header
        differ.rmaps(old, new, (), str(header.get("instrument", "")).lower() or None,
                     str(header.get("filekind", "")).lower() or None)
    else:
        instrument = None
        if kind == "imap":
            instrument = str(old_store.load(old).header.get("instrument", "")).lower() or None
        differ.contexts(old, new, (), instrument)
    return sorted(differ.found, key=lambda d: (d.path, d.message))
