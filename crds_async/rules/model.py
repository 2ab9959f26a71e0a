"""The mapping model: context (.pmap) -> instrument mappings (.imap) -> reference mappings (.rmap).

:func:`build_context` turns a parsed context, and the parsed mappings a
``load`` function hands it by name, into selector trees and compiled
expressions (nothing is executed: see :mod:`.parse`).  It reads no files
itself: ``crds_async.engine.loader`` gives it the cache's mappings.  Per-instrument
errors are kept as values, so that one bad rmap fails only the datasets of its
instrument (as in the reference, which loads an instrument's rmaps when a
dataset of that instrument needs them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import RulesError
from .contexts import is_mapping_name
from .expressions import Expression, compile_expression
from .parse import ParsedMapping, SelectorCall
from .selectors import Selector, build_selector

__all__ = [
    "NA_VALUES",
    "OMIT_VALUES",
    "NOT_FOUND_NA",
    "ReferenceMapping",
    "InstrumentMapping",
    "Context",
    "build_context",
    "build_reference_mapping",
    "header_value",
    "plain_name_problem",
    "check_mapping",
]

#: The answer for a type that does not apply to a dataset (one spelling for the whole project).
NOT_FOUND_NA = "NOT FOUND n/a"
NA_VALUES = frozenset({"N/A", "TEMP_N/A", "n/a", "temp_n/a"})
OMIT_VALUES = frozenset({"OMIT", "TEMP_OMIT", "omit", "temp_n/a"})


def header_value(header: Mapping, key: str, default: object = None) -> object:
    """A mapping header value as the reference sees it: strings lower-cased unless in ``(...)``."""
    if key not in header:
        return default
    value = header[key]
    if isinstance(value, str) and not (value.startswith("(") and value.endswith(")")):
        return value.lower()
    return value


# Letters, digits, '_', '-', '.', '+'; starts with a letter or digit (no '.x', no '-x').
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")
_MAX_NAME_LENGTH = 255


def plain_name_problem(name: object) -> str | None:
    """Why ``name`` is not one plain file name (no directory part, no ``..``, no control or
    shell characters), or None if it is.  The one name check: ``fetch.names.check_name``
    adds the suffix rules of its kinds to it."""
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL byte"
    if "/" in name or "\\" in name:
        return "has a directory part"
    if ".." in name:
        return "contains '..'"
    if len(name) > _MAX_NAME_LENGTH:
        return f"is longer than {_MAX_NAME_LENGTH} characters"
    if not _PLAIN_NAME.fullmatch(name):
        return "has characters other than letters, digits, '_', '-', '.', '+' (or starts with '.'/'-')"
    return None


def _check_reference_names(name: str, selector: "Selector") -> None:
    """Every file an rmap can answer must be a plain file name: it is joined to cache
    paths and written into dataset headers."""
    names: set[str] = set()
    for leaf in selector.leaves():
        for item in (leaf if isinstance(leaf, tuple) else leaf.values() if isinstance(leaf, dict) else (leaf,)):
            if isinstance(item, str) and item not in NA_VALUES and item not in OMIT_VALUES:
                names.add(item)
    for reference in sorted(names):
        if (problem := plain_name_problem(reference)) is not None:
            raise RulesError(f"{name}: reference file name {reference!r} {problem}")


def _check_hooks(name: str, header: dict) -> None:
    hooks = header.get("hooks")
    if hooks is None:
        return
    if not isinstance(hooks, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in hooks.items()):
        raise RulesError(f"{name}: 'hooks' must be a dict of hook kind: hook name, not {hooks!r}")


def _flat_parkeys(parkey: object) -> list[str]:
    out: list[str] = []
    for item in parkey if isinstance(parkey, (tuple, list)) else (parkey,):
        out.extend(item if isinstance(item, (tuple, list)) else (item,))
    return [str(p) for p in out]


@dataclass(eq=False)
class ReferenceMapping:
    """One .rmap: its selector tree, relevance/omit expressions and hooks' names."""

    name: str
    observatory: str
    instrument: str
    filekind: str
    header: dict
    parkeys: tuple[tuple[str, ...], ...]
    selector: Selector
    reffile_switch: str
    reffile_required: str
    required_parkeys: tuple[str, ...]
    relevance: Expression
    omit: Expression
    parkey_relevance: dict[str, Expression]

    def reference_names(self) -> list[str]:
        """Every file name the rules can return (special values excluded)."""
        names: set[str] = set()
        for leaf in self.selector.leaves():
            for item in (leaf if isinstance(leaf, tuple) else leaf.values() if isinstance(leaf, dict) else (leaf,)):
                if isinstance(item, str) and item not in NA_VALUES and item not in OMIT_VALUES:
                    names.add(item)
        return sorted(names)


@dataclass(eq=False)
class InstrumentMapping:
    """One .imap: reftype -> rmap name or a special value; rmaps loaded."""

    name: str
    instrument: str
    header: dict
    reftypes: dict[str, str]                 # lower-case reftype -> rmap name | N/A | OMIT
    rmaps: dict[str, ReferenceMapping] = field(default_factory=dict)
    required_parkeys: tuple[str, ...] = ()

    def rmap(self, reftype: str) -> ReferenceMapping | None:
        return self.rmaps.get(reftype.lower())

    def mapping_names(self) -> list[str]:
        return [self.name] + sorted(r.name for r in self.rmaps.values())

    def reference_names(self) -> list[str]:
        return sorted({n for r in self.rmaps.values() for n in r.reference_names()})


@dataclass(eq=False)
class Context:
    """A loaded .pmap with its instruments; an instrument that failed to load keeps its error."""

    name: str
    observatory: str
    header: dict
    instrument_key: str
    instrument_names: dict[str, str]          # lower-case instrument -> imap name
    instruments: dict[str, InstrumentMapping] = field(default_factory=dict)
    load_errors: dict[str, RulesError] = field(default_factory=dict)
    bad_files: frozenset[str] = frozenset()

    def instrument(self, name: str) -> InstrumentMapping:
        """The loaded imap of ``name``, or the error that loading it raised."""
        if name in self.load_errors:
            raise self.load_errors[name]
        return self.instruments[name]

    def mapping_names(self) -> list[str]:
        """The closure: this pmap, its imaps and their rmaps (as the reference lists them)."""
        names = {self.name}
        for imap in self.instruments.values():
            names.update(imap.mapping_names())
        return sorted(names)

    def reference_names(self) -> list[str]:
        return sorted({n for imap in self.instruments.values() for n in imap.reference_names()})


def _parkey_levels(name: str, parkey: object) -> tuple[tuple[str, ...], ...]:
    if not isinstance(parkey, (tuple, list)):
        raise RulesError(f"{name}: 'parkey' must be a tuple of parameter names, not {parkey!r}")
    return tuple(tuple(str(p).upper() for p in (level if isinstance(level, (tuple, list)) else (level,)))
                 for level in parkey)


def _names_tuple(name: str, header: dict, key: str) -> tuple[str, ...]:
    """A header entry that must be a tuple or list of names (``extra_keys``, ``comment_parkeys``)."""
    value = header.get(key, ())
    if not isinstance(value, (tuple, list)):
        raise RulesError(f"{name}: {key!r} must be a tuple of parameter names, not {value!r}")
    return tuple(str(k) for k in value)


def build_reference_mapping(parsed: ParsedMapping, observatory: str,
                            extra_keys: tuple[str, ...] = ()) -> ReferenceMapping:
    """Compile one parsed .rmap (raises :class:`RulesError` naming the file).

    ``extra_keys``: parameters every rmap of the observatory reads besides its own
    (the personality's ``extra_keys``).
    """
    header = parsed.header
    name = parsed.filename
    if not isinstance(parsed.selector, SelectorCall):
        raise RulesError(f"{name}: an rmap's selector must be a selector call such as Match({{...}})")
    parkey = header["parkey"]
    levels = _parkey_levels(name, parkey)
    try:
        selector = build_selector(parsed.selector, levels, header, name)
    except RulesError:
        raise
    except Exception as exc:  # noqa: BLE001 - odd literals in a rules file are that file's error
        raise RulesError(f"{name}: cannot build the selector: {exc.__class__.__name__}: {exc}") from None
    _check_reference_names(name, selector)
    _check_hooks(name, header)
    switch = str(header_value(header, "reffile_switch", "NONE")).upper()
    required = _flat_parkeys(parkey)
    if switch != "NONE":
        required.append(switch)
    required += list(_names_tuple(name, header, "extra_keys"))
    required += list(extra_keys)
    dotted = tuple(required)
    relevance_text = str(header_value(header, "rmap_relevance", "always")).replace("always", "True")
    omit_text = str(header_value(header, "rmap_omit", "False"))
    relevances = header.get("parkey_relevance") or {}
    if not isinstance(relevances, dict):
        raise RulesError(f"{name}: 'parkey_relevance' must be a dict of parameter: expression")
    parkey_relevance = dict(relevances)
    for comment_key in _names_tuple(name, header, "comment_parkeys"):
        parkey_relevance[comment_key] = "keep_comments"
    return ReferenceMapping(
        name=name,
        observatory=observatory,
        instrument=str(header_value(header, "instrument", "")),
        filekind=str(header_value(header, "filekind", "")),
        header=header,
        parkeys=levels,
        selector=selector,
        reffile_switch=switch,
        reffile_required=str(header_value(header, "reffile_required", "NONE")).upper(),
        required_parkeys=tuple(required),
        relevance=compile_expression(relevance_text, f"{name} rmap_relevance", dotted),
        omit=compile_expression(omit_text, f"{name} rmap_omit", dotted),
        parkey_relevance={str(k).lower(): compile_expression(str(v), f"{name} parkey_relevance", dotted)
                          for k, v in parkey_relevance.items()},
    )


#: ``load(name) -> ParsedMapping``: how a context's builder is handed its mappings by name
MappingLoader = Callable[[str], ParsedMapping]


def _check_instrument(parsed: ParsedMapping) -> dict[str, str]:
    """An imap's own checks (not its rmaps'): its reftypes (lower case) -> rmap name or special value."""
    if not isinstance(parsed.selector, dict):
        raise RulesError(f"{parsed.filename}: an imap's selector must be a dict")
    reftypes = {str(k).lower(): str(v) for k, v in parsed.selector.items()}
    _parkey_levels(parsed.filename, parsed.header["parkey"])  # the type is checked
    _names_tuple(parsed.filename, parsed.header, "extra_keys")
    for reftype, rmap_name in reftypes.items():
        if rmap_name not in NA_VALUES and rmap_name not in OMIT_VALUES and not is_mapping_name(rmap_name):
            raise RulesError(f"{parsed.filename}: {reftype!r} names {rmap_name!r}, which is not a mapping file name")
    return reftypes


def _check_context(parsed: ParsedMapping) -> None:
    name = parsed.filename
    if not isinstance(parsed.selector, dict):
        raise RulesError(f"{name}: a context's selector must be a dict")
    _parkey_levels(name, parsed.header["parkey"])
    if not _flat_parkeys(parsed.header["parkey"]):
        raise RulesError(f"{name}: 'parkey' names no instrument keyword")
    for instrument, imap_name in parsed.selector.items():
        if not is_mapping_name(str(imap_name)):
            raise RulesError(f"{name}: {str(instrument).lower()!r} names {imap_name!r}, "
                             "which is not a mapping file name")


def check_mapping(parsed: ParsedMapping, observatory: str = "") -> None:
    """Run the checks the builder runs on one mapping alone (``certify`` uses it).

    Raises
    ------
    RulesError
        What :func:`build_context` would refuse in this file (an .rmap is built; an
        .imap or .pmap is checked without its sub-mappings).
    """
    kind = parsed.filename.rsplit(".", 1)[-1]
    try:
        if kind == "rmap":
            build_reference_mapping(parsed, observatory)
        elif kind == "imap":
            _check_instrument(parsed)
        elif kind == "pmap":
            _check_context(parsed)
    except RulesError:
        raise
    except Exception as exc:  # noqa: BLE001 - as build_context words it
        raise RulesError(f"{parsed.filename}: cannot load the rules: {exc.__class__.__name__}: {exc}") from None


def _build_instrument(parsed: ParsedMapping, instrument: str, observatory: str, load: MappingLoader,
                      extra_keys: tuple[str, ...]) -> InstrumentMapping:
    reftypes = _check_instrument(parsed)
    imap = InstrumentMapping(parsed.filename, instrument, parsed.header, reftypes)
    required = {str(p) for p in _flat_parkeys(parsed.header["parkey"])}
    required |= set(_names_tuple(parsed.filename, parsed.header, "extra_keys"))
    for reftype, rmap_name in reftypes.items():
        if rmap_name in NA_VALUES or rmap_name in OMIT_VALUES:
            continue
        rmap = build_reference_mapping(load(rmap_name), observatory, extra_keys)
        imap.rmaps[reftype] = rmap
        required |= set(rmap.required_parkeys)
    imap.required_parkeys = tuple(sorted(required))
    return imap


def build_context(parsed: ParsedMapping, observatory: str, load: MappingLoader, *,
                  extra_keys: tuple[str, ...] = (), bad_files: frozenset[str] = frozenset()) -> Context:
    """Build a whole context from its parsed .pmap and ``load(name)`` for the mappings it names.

    Parameters
    ----------
    parsed : ParsedMapping
        The context (.pmap).
    observatory : str
        Recorded in every mapping.
    load : callable
        ``name -> ParsedMapping`` of an .imap or .rmap (checked and parsed; raises
        :class:`RulesError` naming the file).
    extra_keys : tuple of str
        Parameters every rmap of the observatory reads (the personality's).
    bad_files : frozenset of str
        The server's list of scientifically invalid files.

    Raises
    ------
    RulesError
        The .pmap itself is unusable.  Errors in an instrument's .imap or .rmaps
        (whatever they are) are kept in ``Context.load_errors`` and raised when that
        instrument is evaluated.
    """
    name = parsed.filename
    if not isinstance(parsed.selector, dict):
        raise RulesError(f"{name}: a context's selector must be a dict")
    _parkey_levels(name, parsed.header["parkey"])
    if not _flat_parkeys(parsed.header["parkey"]):
        raise RulesError(f"{name}: 'parkey' names no instrument keyword")
    ctx = Context(
        name=name,
        observatory=observatory,
        header=parsed.header,
        instrument_key=_flat_parkeys(parsed.header["parkey"])[0].upper(),
        instrument_names={str(k).lower(): str(v) for k, v in parsed.selector.items()},
        bad_files=bad_files,
    )
    for instrument, imap_name in ctx.instrument_names.items():
        try:
            if not is_mapping_name(imap_name):
                raise RulesError(f"{name}: {instrument!r} names {imap_name!r}, which is not a mapping file name")
            ctx.instruments[instrument] = _build_instrument(load(imap_name), instrument, observatory, load,
                                                            extra_keys)
        except RulesError as exc:
            ctx.load_errors[instrument] = exc
        except Exception as exc:  # noqa: BLE001 - one instrument's odd rules fail that instrument only
            ctx.load_errors[instrument] = RulesError(
                f"{imap_name}: cannot load the rules of {instrument}: {exc.__class__.__name__}: {exc}")
    return ctx
