"""Soundness checks for mapping files, each problem one line naming file and line.

Checks, in order: the text parses as a mapping (never executed), the ``sha1sum``
header matches, required header keys exist, ``parkey`` is a legal tuple of
keyword names whose shape matches the selector nesting, every selector key has
the right number of legal values (dates and versions parse), no key is repeated
and no two Match keys mean the same thing after the reference's value
conditioning, sub-mappings named by a context exist in the cache, and
(optionally) the references named by an rmap exist in the cache.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import ChecksumError, CrdsError, MappingSyntaxError
from .checksum import verify_mapping_checksum
from .contexts import is_mapping_name
from .inspect import is_special_value, mapping_kind, parkey_levels
from .model import check_mapping, plain_name_problem
from .parse import ParsedMapping, SelectorCall, parse_mapping_text

__all__ = ["Problem", "certify_mapping_text", "REQUIRED_HEADER_KEYS", "MAX_CERTIFY_CHARS"]

REQUIRED_HEADER_KEYS = {
    "pmap": ("mapping", "observatory", "parkey", "name", "derived_from"),
    "imap": ("mapping", "observatory", "instrument", "parkey", "name", "derived_from"),
    "rmap": ("mapping", "observatory", "instrument", "filekind", "parkey", "name", "derived_from"),
}
_MAPPING_FIELD = {"pmap": "pipeline", "imap": "instrument", "rmap": "reference"}
_CHILD_KIND = {"pmap": "imap", "imap": "rmap"}
#: A dataset keyword: FITS (``DATE-OBS``), JWST/Roman data model paths (``META.X.Y``).
_PARKEY = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
_VERSION = re.compile(r"^\d{1,8}(\.\d{1,8}(\.\d{1,8})?)?[A-Za-z0-9_+\-.]{0,128}$")
MAX_CERTIFY_CHARS = 256 * 1024 * 1024
#: Keys the reference adds to every JWST rmap's required parkeys.
_JWST_EXTRA_KEYS = ("META.VISIT.TSOVISIT", "META.INSTRUMENT.LAMP_STATE")


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect found in one mapping."""

    file: str
    check: str  # syntax | checksum | header | parkey | value | duplicate | overlap | missing | rules
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.check}: {self.message}"


def _literal_key(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _duplicate_keys(tree: ast.Module, filename: str) -> Iterator[Problem]:
    """Keys written twice in one dict literal; the reference silently keeps the last."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        seen: dict[object, int] = {}
        for key_node in node.keys:
            if key_node is None:
                continue
            key = _literal_key(key_node)
            if key is None:
                continue
            try:
                hash(key)
            except TypeError:
                continue
            if key in seen:
                yield Problem(filename, "duplicate",
                              f"key {key!r} repeats the key on line {seen[key]}; only the last one would count",
                              key_node.lineno)
            else:
                seen[key] = key_node.lineno


def _conditioned(element: object) -> str:
    from .conditioning import condition_match_key

    return condition_match_key(element)


def _check_date(key: object) -> str | None:
    from .timestamps import parse_date

    if not isinstance(key, str):
        return f"date key {key!r} is not a string"
    try:
        parse_date(key)
    except ValueError as exc:
        return f"date key {key!r} is not a valid date/time ({exc})"
    return None


class _SelectorChecker:
    def __init__(self, filename: str, levels: tuple[tuple[str, ...], ...]) -> None:
        self.filename = filename
        self.levels = levels
        self.problems: list[Problem] = []

    def problem(self, check: str, message: str, line: int | None) -> None:
        self.problems.append(Problem(self.filename, check, message, line))

    def walk(self, selector: object, depth: int) -> None:
        if not isinstance(selector, SelectorCall):
            if depth != len(self.levels) and not is_special_value(selector):
                self.problem("parkey", f"a file is selected after {depth} selector level(s) but parkey has "
                             f"{len(self.levels)} level(s)", None)
            self.leaf(selector)
            return
        if depth >= len(self.levels):
            self.problem("parkey", f"{selector.name} at nesting level {depth + 1} has no parkey tuple "
                         f"(parkey has {len(self.levels)} level(s))", selector.lineno)
            return
        parkeys = self.levels[depth]
        if selector.name == "Match":
            self.match_keys(selector, parkeys)
        elif selector.name in ("UseAfter", "ClosestTime"):
            for key, _value in selector.choices:
                if (message := _check_date(key)) is not None:
                    self.problem("value", f"{selector.name}: {message}", selector.lineno)
        elif selector.name == "VersionAfter":
            for key, _value in selector.choices:
                if not isinstance(key, str) or not _VERSION.match(key):
                    self.problem("value", f"VersionAfter key {key!r} is not a version string", selector.lineno)
        for _key, value in selector.choices:
            self.walk(value, depth + 1)

    def match_keys(self, selector: SelectorCall, parkeys: tuple[str, ...]) -> None:
        seen: dict[tuple[str, ...], object] = {}
        wrong_arity = []
        for key, _value in selector.choices:
            elements = key if isinstance(key, tuple) else (key,)
            if len(elements) != len(parkeys):
                wrong_arity.append(key)
                continue
            bad = [e for e in elements if not isinstance(e, (str, int, float)) or isinstance(e, bool)]
            if bad:
                self.problem("value", f"Match key {key!r}: value {bad[0]!r} is not a string or number",
                             selector.lineno)
                continue
            try:
                conditioned = tuple(_conditioned(e) for e in elements)
            except (CrdsError, ValueError) as exc:
                self.problem("value", f"Match key {key!r}: {exc}", selector.lineno)
                continue
            if conditioned in seen and seen[conditioned] != key:
                self.problem("overlap", f"Match keys {seen[conditioned]!r} and {key!r} select the same "
                             "datasets (equal after value conditioning)", selector.lineno)
            seen.setdefault(conditioned, key)
        if wrong_arity:  # one line for the whole selector: the usual cause is one parkey edit
            first = wrong_arity[0]
            count = len(first) if isinstance(first, tuple) else 1
            self.problem("parkey", f"{len(wrong_arity)} Match key(s) such as {first!r} have {count} value(s) "
                         f"but parkey {parkeys!r} names {len(parkeys)}", selector.lineno)

    def leaf(self, value: object) -> None:
        # Tuple and dict leaves are legal: the reference returns them as they are.
        members = value if isinstance(value, tuple) else tuple(value.values()) if isinstance(value, dict) else (value,)
        for member in members:
            if not isinstance(member, str) or not member.strip():
                self.problem("value", f"selection {value!r} is not a file name", None)
            elif not is_special_value(member) and (problem := plain_name_problem(member)) is not None:
                self.problem("value", f"reference file name {member!r} {problem}", None)


def certify_mapping_text(
    text: str,
    filename: str,
    *,
    mapping_exists: Callable[[str], bool] | None = None,
    reference_exists: Callable[[str, dict], bool] | None = None,
    child_header: Callable[[str], dict | None] | None = None,
) -> list[Problem]:
    """Check one mapping's text; an empty list means it is sound.

    Parameters
    ----------
    text : str
        The mapping file's text (``crds_async.engine.mapping_files.certify_mapping_file``
        reads it from a file).
    filename : str
        Its file name, which says its kind.
    mapping_exists : callable, optional
        ``f(name) -> bool``: is a sub-mapping named by a context present?  Skipped if None.
    reference_exists : callable, optional
        ``f(name, rmap_header) -> bool``: is a reference named by an rmap present?
        Skipped if None.
    child_header : callable, optional
        ``f(name) -> header | None``: the header of a sub-mapping, to check that it
        is for the instrument or reftype it is selected for.  Skipped if None.
    """
    kind = mapping_kind(filename)
    if kind not in REQUIRED_HEADER_KEYS:
        return [Problem(filename, "syntax", "not a .pmap, .imap or .rmap file name")]
    if len(text) > MAX_CERTIFY_CHARS:
        return [Problem(filename, "syntax", "file is too large to be a mapping")]
    try:
        parsed = parse_mapping_text(text, filename)
    except MappingSyntaxError as exc:
        line, message = _split_location(_strip_prefix(str(exc), filename))
        return [Problem(filename, "syntax", message, line)]
    except CrdsError as exc:
        return [Problem(filename, "header", _strip_prefix(str(exc), filename))]

    problems: list[Problem] = []
    try:
        verify_mapping_checksum(text, parsed.header, filename)
    except ChecksumError as exc:
        problems.append(Problem(filename, "checksum", _strip_prefix(str(exc), filename)))

    problems.extend(_check_header(parsed, kind, filename))
    problems.extend(_duplicate_keys(ast.parse(text), filename))
    if kind == "rmap":
        problems.extend(_check_expressions(parsed.header, filename))
        problems.extend(_check_rmap_selector(parsed, filename))
        if reference_exists is not None:
            problems.extend(_check_references(parsed, filename, reference_exists))
    else:
        problems.extend(_check_context_selector(parsed, kind, filename, mapping_exists, child_header))
    if not any(p.check in _LOADER_CHECKS for p in problems):
        # whatever else the loader refuses (odd header values): certify flags what loading would
        try:
            check_mapping(parsed, str(parsed.header.get("observatory", "")).lower())
        except CrdsError as exc:
            problems.append(Problem(filename, "rules", _strip_prefix(str(exc), filename)))
    return problems


#: Problems of kinds the loader refuses too: when one is found, the loader's own check adds nothing.
_LOADER_CHECKS = frozenset({"syntax", "header", "parkey", "value"})


def _strip_prefix(message: str, filename: str) -> str:
    # Errors from the loader already name the file; Problem adds it once.
    for prefix in (f"{filename}:", f"'{filename}':"):
        if message.startswith(prefix):
            return message[len(prefix):].strip()
    return message


def _split_location(message: str) -> tuple[int | None, str]:
    """``"21: problem"`` -> ``(21, "problem")``: the loader's messages lead with the line."""
    head, sep, rest = message.partition(":")
    if sep and head.strip().isdigit():
        return int(head), rest.strip()
    return None, message


def _check_header(parsed: ParsedMapping, kind: str, filename: str) -> Iterator[Problem]:
    header = parsed.header
    for key in REQUIRED_HEADER_KEYS[kind]:
        if key not in header:
            yield Problem(filename, "header", f"required header key {key!r} is missing")
    mapping = header.get("mapping")
    if isinstance(mapping, str) and mapping.lower() != _MAPPING_FIELD[kind]:
        yield Problem(filename, "header", f"header 'mapping' is {mapping!r} but a .{kind} is "
                      f"{_MAPPING_FIELD[kind].upper()!r}")
    if "parkey" not in header:
        return
    parkey = header["parkey"]
    if kind == "rmap":
        if not isinstance(parkey, tuple) or not all(isinstance(level, tuple) for level in parkey):
            yield Problem(filename, "parkey", f"parkey {parkey!r} is not a tuple of tuples of keyword names")
            return
        names = [name for level in parkey for name in level]
    else:
        if not isinstance(parkey, tuple):
            yield Problem(filename, "parkey", f"parkey {parkey!r} is not a tuple of keyword names")
            return
        names = list(parkey)
    for name in names:
        if not isinstance(name, str) or not _PARKEY.match(name):
            yield Problem(filename, "parkey", f"parkey name {name!r} is not a legal keyword name")


def _expression_sources(header: dict) -> Iterator[tuple[str, str]]:
    """``(where, source)`` of every relevance/omit expression the rmap header defines."""
    for field in ("rmap_relevance", "rmap_omit"):
        value = header.get(field)
        if isinstance(value, str):
            yield field, value
    relevance = header.get("parkey_relevance")
    if isinstance(relevance, dict):
        for parkey, value in relevance.items():
            if isinstance(value, str):
                yield f"parkey_relevance[{parkey!r}]", value


def _check_expressions(header: dict, filename: str) -> Iterator[Problem]:
    """Parenthesised expressions must compile in the rules' expression language.

    Bare words (``ALWAYS``, ``True``) are lower-cased by the reference before use and
    only ever fail softly at evaluation time, so they are not flagged here.
    """
    from .expressions import compile_expression

    parkey = header.get("parkey")
    names = [p for level in parkey if isinstance(level, tuple) for p in level] if isinstance(parkey, tuple) else []
    extra = header.get("extra_keys")
    names += list(extra) if isinstance(extra, tuple) else []
    names.append(header.get("reffile_switch"))
    if str(header.get("observatory", "")).lower() == "jwst":
        names += list(_JWST_EXTRA_KEYS)
    # The reference rewrites the rmap's required dotted parkeys to their _ form first.
    dotted = sorted({p for p in names if isinstance(p, str) and "." in p}, key=len, reverse=True)
    for where, source in _expression_sources(header):
        text = source.strip()
        if not (text.startswith("(") and text.endswith(")")):
            continue
        for name in dotted:
            text = text.replace(name, name.replace(".", "_"))
        try:
            compile_expression(text, f"{filename} {where}")
        except CrdsError as exc:
            yield Problem(filename, "value", f"{where} {source!r} is not a valid expression: "
                          f"{_strip_prefix(str(exc), filename)}")


def _check_rmap_selector(parsed: ParsedMapping, filename: str) -> list[Problem]:
    if not isinstance(parsed.selector, SelectorCall):
        return [Problem(filename, "syntax", "an rmap's selector must be a selector call such as Match({...})")]
    parkey = parsed.header.get("parkey")
    if not isinstance(parkey, tuple) or not all(isinstance(level, tuple) for level in parkey):
        return []  # already reported by the header check
    checker = _SelectorChecker(filename, parkey_levels(parsed.header))
    checker.walk(parsed.selector, 0)
    return checker.problems


def _check_context_selector(parsed: ParsedMapping, kind: str, filename: str,
                            mapping_exists: Callable[[str], bool] | None,
                            child_header: Callable[[str], dict | None] | None) -> Iterator[Problem]:
    selector = parsed.selector
    if not isinstance(selector, dict):
        yield Problem(filename, "syntax", f"a .{kind}'s selector must be a dict")
        return
    child_kind = _CHILD_KIND[kind]
    for key, value in selector.items():
        if not isinstance(value, str):
            yield Problem(filename, "value", f"selection {key!r}: {value!r} is not a file name")
            continue
        if is_special_value(value):
            continue
        if not is_mapping_name(value) or mapping_kind(value) != child_kind:
            yield Problem(filename, "value", f"selection {key!r}: {value!r} is not a .{child_kind} name")
            continue
        if mapping_exists is not None and not mapping_exists(value):
            yield Problem(filename, "missing", f"selection {key!r}: mapping {value!r} is not in the cache")
            continue
        if child_header is not None and (header := child_header(value)) is not None:
            field = "instrument" if kind == "pmap" else "filekind"
            if str(header.get(field, "")).lower() != str(key).lower():
                yield Problem(filename, "value", f"selection {key!r} names {value!r}, whose header "
                              f"{field} is {header.get(field)!r}")


def _check_references(parsed: ParsedMapping, filename: str,
                      reference_exists: Callable[[str, dict], bool]) -> Iterator[Problem]:
    from .inspect import selector_reference_names

    for name in sorted(selector_reference_names(parsed.selector)):
        if not reference_exists(name, parsed.header):
            yield Problem(filename, "missing", f"reference {name!r} is not in the cache")
