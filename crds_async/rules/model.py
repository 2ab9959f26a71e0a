"""The mapping model: context (.pmap) -> instrument mappings (.imap) -> reference mappings (.rmap).

``load_context`` reads a whole context from the cache once (never executing
anything: see :mod:`.parse`), builds every rmap's selector tree and compiled
expressions, and keeps per-instrument load errors as values, so that one bad
rmap fails only the datasets of its instrument (as in the reference, which
loads an instrument's rmaps when a dataset of that instrument needs them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import ConfigError, RulesError
from ..instruments import personality
from .contexts import cached_server_config, is_mapping_name, observatory_of_spec, resolve_cached_context
from .expressions import Expression, compile_expression
from .parse import SelectorCall, load_mapping_file
from .selectors import Selector, build_selector

__all__ = [
    "NA_VALUES",
    "OMIT_VALUES",
    "ReferenceMapping",
    "InstrumentMapping",
    "Context",
    "load_context",
    "load_reference_mapping",
    "header_value",
]

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


def load_reference_mapping(path: Path, observatory: str, *, verify_checksum: bool = True) -> ReferenceMapping:
    """Load and compile one .rmap (raises :class:`RulesError` naming the file)."""
    parsed = load_mapping_file(path, verify_checksum=verify_checksum)
    header = parsed.header
    name = parsed.filename
    if not isinstance(parsed.selector, SelectorCall):
        raise RulesError(f"{name}: an rmap's selector must be a selector call such as Match({{...}})")
    parkey = header["parkey"]
    levels = tuple(tuple(str(p).upper() for p in (level if isinstance(level, (tuple, list)) else (level,)))
                   for level in (parkey if isinstance(parkey, (tuple, list)) else (parkey,)))
    selector = build_selector(parsed.selector, levels, header, name)
    switch = str(header_value(header, "reffile_switch", "NONE")).upper()
    required = _flat_parkeys(parkey)
    if switch != "NONE":
        required.append(switch)
    required += [str(k) for k in header.get("extra_keys", ())]
    required += list(personality(observatory).EXTRA_KEYS) if observatory in ("hst", "jwst", "roman") else []
    dotted = tuple(required)
    relevance_text = str(header_value(header, "rmap_relevance", "always")).replace("always", "True")
    omit_text = str(header_value(header, "rmap_omit", "False"))
    parkey_relevance = dict(header.get("parkey_relevance") or {})
    for comment_key in header.get("comment_parkeys", ()):
        parkey_relevance[str(comment_key)] = "keep_comments"
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


def _load_instrument(path: Path, instrument: str, observatory: str, mapping_dir: Path,
                     verify: bool) -> InstrumentMapping:
    parsed = load_mapping_file(path, verify_checksum=verify)
    if not isinstance(parsed.selector, dict):
        raise RulesError(f"{parsed.filename}: an imap's selector must be a dict")
    reftypes = {str(k).lower(): str(v) for k, v in parsed.selector.items()}
    imap = InstrumentMapping(parsed.filename, instrument, parsed.header, reftypes)
    required = {str(p) for p in _flat_parkeys(parsed.header["parkey"])}
    required |= {str(k) for k in parsed.header.get("extra_keys", ())}
    for reftype, rmap_name in reftypes.items():
        if rmap_name in NA_VALUES or rmap_name in OMIT_VALUES:
            continue
        if not is_mapping_name(rmap_name):
            raise RulesError(f"{parsed.filename}: {reftype!r} names {rmap_name!r}, which is not a mapping file name")
        rmap = load_reference_mapping(mapping_dir / rmap_name, observatory, verify_checksum=verify)
        imap.rmaps[reftype] = rmap
        required |= set(rmap.required_parkeys)
    imap.required_parkeys = tuple(sorted(required))
    return imap


def load_context(context: str, cfg: Config, observatory: str | None = None) -> Context:
    """Load a context (literal ``.pmap`` or symbolic name) from the cache.

    Parameters
    ----------
    context : str
        ``hst_0729.pmap``, ``jwst-operational``, ``hst-edit``, ...
    cfg : Config
        Where the cache is; ``ignore_mapping_checksum``.
    observatory : str, optional
        Needed only when ``context`` does not name it (``latest``).

    Raises
    ------
    ConfigError
        Unresolvable context name or unknown observatory.
    RulesError
        The .pmap itself cannot be loaded.  Errors in an instrument's .imap or
        .rmaps are kept in ``Context.load_errors`` and raised when that
        instrument is evaluated.
    """
    observatory = (observatory or observatory_of_spec(context) or cfg.observatory or "").lower()
    if not observatory:
        raise ConfigError(f"cannot tell the observatory of context {context!r}: set CRDS_OBSERVATORY")
    config_dir = cfg.config_dir(observatory)
    name = resolve_cached_context(context, config_dir)
    mapping_dir = cfg.mapping_dir(observatory)
    if not (mapping_dir / name).is_file():
        raise ConfigError(f"{name} is not in {mapping_dir}: set CRDS_PATH to a CRDS cache that has it, "
                          "or fetch it with `crds-batch sync --contexts " + name + "`")
    verify = not cfg.ignore_mapping_checksum
    parsed = load_mapping_file(mapping_dir / name, verify_checksum=verify)
    if not isinstance(parsed.selector, dict):
        raise RulesError(f"{name}: a context's selector must be a dict")
    parkey = _flat_parkeys(parsed.header["parkey"])
    ctx = Context(
        name=name,
        observatory=observatory,
        header=parsed.header,
        instrument_key=parkey[0].upper(),
        instrument_names={str(k).lower(): str(v) for k, v in parsed.selector.items()},
        bad_files=frozenset(str(f) for f in cached_server_config(config_dir).get("bad_files_list", ())),
    )
    for instrument, imap_name in ctx.instrument_names.items():
        try:
            if not is_mapping_name(imap_name):
                raise RulesError(f"{name}: {instrument!r} names {imap_name!r}, which is not a mapping file name")
            ctx.instruments[instrument] = _load_instrument(mapping_dir / imap_name, instrument, observatory,
                                                           mapping_dir, verify)
        except RulesError as exc:
            ctx.load_errors[instrument] = exc
    return ctx
