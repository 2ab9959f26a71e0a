"""JWST type screening: the reference types ``crds bestrefs`` evaluates for a dataset.

Without explicit types the reference's bestrefs tool does not evaluate every type of a
JWST instrument: it asks a SYSTEM CRDSCFG table which calibration pipelines the dataset's
``EXP_TYPE`` runs (corrected for TSO visits, lamp exposures and WFSC visits by the table's
``pipeline_exceptions``), which steps those pipelines have and which types the steps need.
The tables are shipped as package data (``data/jwst_crdscfg/``, see its ``ATTRIBUTION.md``);
which one applies is chosen by the dataset's calibration software version (``CAL_VER``).

Anything that keeps the reference from finding a list -- no ``CAL_VER`` (the reference then
asks the installed ``jwst`` package, which crds_async never has), a version it cannot parse,
an ``EXP_TYPE`` the table lacks, a pipeline or step it does not describe, an empty result --
means "every type of the instrument's imap": :func:`applicable_reftypes` returns None then.

Pure: the tables are read once each, lazily; answers are memoised per table, ``EXP_TYPE``
and the values of the table's exception keywords, so a dataset costs a few dict lookups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources

import yaml

from crds_async.errors import RulesError

__all__ = [
    "TABLE_VERSIONS",
    "CAL_VER_KEYS",
    "EXP_TYPE_KEYS",
    "SCREENING_KEYWORDS",
    "CrdsCfgTable",
    "table_name_for_version",
    "load_table",
    "table_for_version",
    "applicable_reftypes",
    "cli_reftypes",
]

#: (first calibration software version, bundled table) in increasing order: a dataset uses
#: the last row whose version is <= its ``CAL_VER`` (compared as (major, minor, micro)).
TABLE_VERSIONS: tuple[tuple[str, str], ...] = (
    ("0.7.7", "jwst_system_crdscfg_b7.yaml"),
    ("0.9.0", "jwst_system_crdscfg_b7.1.yaml"),
    ("0.9.1", "jwst_system_crdscfg_b7.1.1.yaml"),
    ("0.9.3", "jwst_system_crdscfg_b7.1.3.yaml"),
    ("0.10.0", "jwst_system_crdscfg_b7.2.yaml"),
    ("0.13.0", "jwst_system_crdscfg_b7.3.yaml"),
    ("0.13.8", "jwst_system_crdscfg_b7.4.yaml"),
    ("0.16.0", "jwst_system_crdscfg_b7.5.yaml"),
    ("0.17.0", "jwst_system_crdscfg_b7.6.yaml"),
    ("1.1.0", "jwst_system_crdscfg_b7.8.yaml"),
)

#: Keys holding the calibration software version / exposure type, the first present wins.
CAL_VER_KEYS = ("META.CALIBRATION_SOFTWARE_VERSION", "CAL_VER")
EXP_TYPE_KEYS = ("META.EXPOSURE.TYPE", "EXP_TYPE")

#: Every header keyword the screening can read (upper case; data-model names and their FITS
#: keywords): a reader limited to the keywords the rules use must keep these too.
SCREENING_KEYWORDS = frozenset({
    *CAL_VER_KEYS, *EXP_TYPE_KEYS,
    "META.VISIT.TSOVISIT", "TSOVISIT", "META.INSTRUMENT.LAMP_STATE", "LAMP", "META.VISIT.TITLE",
})

_DATA_DIR = "jwst_crdscfg"
_MEMO_LIMIT = 1 << 14   # distinct (EXP_TYPE, exception values) per table; cleared when full

# A PEP 440 version, case-insensitive, surrounding white space allowed.
_VERSION_RE = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?:alpha|a|beta|b|preview|pre|c|rc)[-_.]?[0-9]*)?
    (?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?
    (?:[-_.]?dev[-_.]?[0-9]*)?
    (?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)


def _safe_load(text: str) -> object:
    """``yaml.safe_load``, by libyaml's C build of the safe loader when PyYAML has it.

    Same loader rules (plain YAML types only), about 12 times faster: a table is ~0.35 s
    in pure Python and every worker process loads the tables its datasets need.
    """
    loader = getattr(yaml, "CSafeLoader", None)
    return yaml.safe_load(text) if loader is None else yaml.load(text, Loader=loader)  # noqa: S506


def _version_triple(text: object) -> tuple[int, int, int] | None:
    """(major, minor, micro) of a version text; None when the reference could not compare it.

    Pre/post/dev/local parts are ignored (``1.8.2rc1`` -> (1, 8, 2)); a non-zero epoch
    (``1!2.0``) or a text that is not a version is not comparable.
    """
    if not isinstance(text, str):
        return None
    match = _VERSION_RE.match(text)
    if match is None or int(match["epoch"] or 0) != 0:
        return None
    parts = [int(part) for part in match["release"].split(".")][:3]
    return tuple(parts + [0] * (3 - len(parts)))  # type: ignore[return-value]


_TABLE_TRIPLES = tuple((_version_triple(version), name) for version, name in TABLE_VERSIONS)


def table_name_for_version(cal_ver: str) -> str | None:
    """The bundled table for a calibration software version; None if ``cal_ver`` is no version.

    >>> table_name_for_version("0.9.7")
    'jwst_system_crdscfg_b7.1.3.yaml'
    >>> table_name_for_version("1.12.5")
    'jwst_system_crdscfg_b7.8.yaml'
    >>> table_name_for_version("0.1")   # older than every table: the first one
    'jwst_system_crdscfg_b7.yaml'
    """
    triple = _version_triple(cal_ver)
    if triple is None:
        return None
    name = _TABLE_TRIPLES[0][1]
    for first, candidate in _TABLE_TRIPLES[1:]:
        if triple < first:
            break
        name = candidate
    return name


class CrdsCfgTable:
    """One SYSTEM CRDSCFG table: ``EXP_TYPE`` (+ exception keywords) -> reference types.

    Parameters
    ----------
    name : str
        The table's file name, for messages.
    data : Mapping
        The parsed YAML: ``exptypes_to_pipelines``, ``pipeline_cfgs_to_steps``,
        ``steps_to_reftypes`` and optionally ``pipeline_exceptions`` are used.
    """

    def __init__(self, name: str, data: Mapping):
        if not isinstance(data, Mapping):
            raise RulesError(f"{name}: not a CRDSCFG table (the YAML is not a mapping)")
        self.name = name
        self._data = data
        self._exceptions = data.get("pipeline_exceptions") or {}
        #: the header keys the exceptions read, in table order
        self.exception_keys: tuple[str, ...] = tuple(str(param).upper() for param in self._exceptions)
        self._memo: dict[tuple, frozenset[str] | None] = {}

    @classmethod
    def from_yaml_text(cls, text: str, name: str) -> CrdsCfgTable:
        """Parse a table's YAML text (safe loader); RulesError naming ``name`` if it is not YAML."""
        try:
            data = _safe_load(text)
        except yaml.YAMLError as exc:
            raise RulesError(f"{name}: not valid YAML: {str(exc).splitlines()[0]}") from None
        return cls(name, data)

    def __repr__(self) -> str:
        return f"CrdsCfgTable({self.name!r})"

    @property
    def exp_types(self) -> tuple[str, ...]:
        """The ``EXP_TYPE`` values the table describes, in table order."""
        return tuple(self._data.get("exptypes_to_pipelines") or ())

    def reftypes(self, exp_type: object, header: Mapping[str, object]) -> frozenset[str] | None:
        """The types an ``EXP_TYPE`` needs, given the header's exception keywords; None if unknown.

        Parameters
        ----------
        exp_type : str
            The dataset's exposure type, exactly as the header has it (no case folding).
        header : Mapping[str, object]
            Read for :attr:`exception_keys` (``META.VISIT.TSOVISIT`` ...).
        """
        key = (exp_type, tuple(header.get(param) for param in self.exception_keys))
        try:
            return self._memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: the reference fails on it too
            return None
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        found = self._memo[key] = self._compute(exp_type, header)
        return found

    def pipelines(self, exp_type: object, header: Mapping[str, object]) -> list[str]:
        """The pipeline .cfg names an ``EXP_TYPE`` runs, after the exception corrections.

        Raises KeyError / TypeError / re.error where the table cannot answer.
        """
        corrected = []
        for cfg in self._data["exptypes_to_pipelines"][exp_type]:
            for param, exceptions in self._exceptions.items():
                replacements = dict(exceptions)
                dont_replace = replacements.pop("dont_replace", [])
                do_replace = replacements.pop("do_replace", [])
                value = header.get(param.upper(), replacements.pop("default_missing", "UNDEFINED"))
                # a string list (old tables write "F, FALSE, NONE, OFF") counts character by
                # character, as in the reference
                if dont_replace and not any(re.match("^" + pattern + "$", value) for pattern in dont_replace):
                    cfg = replacements.get(cfg, cfg)
                for pattern in do_replace:
                    if re.match("^" + pattern + "$", value):
                        cfg = replacements.get(cfg, cfg)
            corrected.append(cfg)
        return corrected

    def _compute(self, exp_type: object, header: Mapping[str, object]) -> frozenset[str] | None:
        steps_of = self._data.get("pipeline_cfgs_to_steps") or {}
        types_of = self._data.get("steps_to_reftypes") or {}
        try:
            found: set[str] = set()
            for cfg in self.pipelines(exp_type, header):
                for step in steps_of[cfg]:
                    found.update(types_of[step])
        except (KeyError, TypeError, AttributeError, re.error):
            return None
        return frozenset(found) or None


_TABLES: dict[str, CrdsCfgTable] = {}


def load_table(name: str) -> CrdsCfgTable:
    """A bundled table by file name (one of :data:`TABLE_VERSIONS`), parsed once."""
    table = _TABLES.get(name)
    if table is None:
        if name not in {row[1] for row in TABLE_VERSIONS}:
            raise RulesError(f"{name}: not a bundled JWST CRDSCFG table")
        text = resources.files("crds_async.instruments").joinpath("data", _DATA_DIR, name).read_text("utf-8")
        table = _TABLES[name] = CrdsCfgTable.from_yaml_text(text, name)
    return table


_TABLE_OF_VERSION: dict[object, CrdsCfgTable | None] = {}


def table_for_version(cal_ver: object) -> CrdsCfgTable | None:
    """The bundled table a ``CAL_VER`` value selects (memoised); None if it is no version."""
    try:
        return _TABLE_OF_VERSION[cal_ver]
    except KeyError:
        pass
    except TypeError:
        return None
    name = table_name_for_version(cal_ver) if isinstance(cal_ver, str) else None
    table = load_table(name) if name else None
    if len(_TABLE_OF_VERSION) >= _MEMO_LIMIT:
        _TABLE_OF_VERSION.clear()
    _TABLE_OF_VERSION[cal_ver] = table
    return table


def _first(header: Mapping[str, object], keys: tuple[str, ...], default: object) -> object:
    for key in keys:
        if key in header:
            return header[key]
    return default


def applicable_reftypes(parameters: Mapping[str, object],
                        table: CrdsCfgTable | None = None) -> frozenset[str] | None:
    """The reference types ``crds bestrefs`` evaluates for a JWST dataset; None means all.

    Parameters
    ----------
    parameters : Mapping[str, object]
        The dataset's bestrefs parameters (``bestrefs_parameters(dataset_header(raw))``):
        ``META.*`` names and/or bare FITS keywords, upper case. ``META.EXPOSURE.TYPE`` /
        ``EXP_TYPE`` and ``META.CALIBRATION_SOFTWARE_VERSION`` / ``CAL_VER`` are read, and the
        table's exception keywords (``META.VISIT.TSOVISIT``, ``META.INSTRUMENT.LAMP_STATE``,
        ``META.VISIT.TITLE``).
    table : CrdsCfgTable, optional
        The table the context's SYSTEM ``crdscfg`` rmap selects for this dataset, when the
        context has one and its file is at hand; default: the bundled table for ``CAL_VER``.

    Returns
    -------
    frozenset of str, or None
        Lower-case type names -- they may include types the instrument's imap lacks (the
        tables span every instrument); None when no list applies (no ``CAL_VER``, an
        unparsable one, an unknown ``EXP_TYPE``, ...): evaluate every type of the imap.
    """
    cal_ver = _first(parameters, CAL_VER_KEYS, None)
    if cal_ver is None:
        return None
    if table is None:
        table = table_for_version(cal_ver)
        if table is None:
            return None
    return table.reftypes(_first(parameters, EXP_TYPE_KEYS, "UNDEFINED"), parameters)


def cli_reftypes(parameters: Mapping[str, object], imap_reftypes: Iterable[str],
                 table: CrdsCfgTable | None = None) -> list[str]:
    """The sorted type list ``crds bestrefs`` passes to getrecommendations for a JWST dataset.

    :func:`applicable_reftypes`, or every type of ``imap_reftypes`` (the instrument's imap
    keys) when that is None. The list is not cut down to the imap: as in the reference, a
    type the imap lacks is asked for too (getrecommendations answers it ``NOT FOUND``).
    """
    types = applicable_reftypes(parameters, table)
    return sorted(imap_reftypes if types is None else types)
