"""Safe loader for CRDS mappings (.pmap/.imap/.rmap): an AST walk, never exec.

A mapping is Python-syntax text holding only ``header = {...}``, optionally
``comment = "..."``, and ``selector = ...`` where the selector is a dict (contexts)
or a tree of selector calls (``Match({...})``).  The reference compiles and
execs the text after a whitelist check; we only read literals out of the
syntax tree, so nothing in a rules file can run.  Sizes and nesting are
bounded before and during parsing so that a hostile file fails fast.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..errors import MappingSyntaxError, RulesError

__all__ = [
    "SELECTOR_NAMES",
    "SelectorCall",
    "ParsedMapping",
    "parse_mapping_text",
    "parse_checked_mapping",
    "check_required_header",
    "mapping_class",
    "MAX_MAPPING_BYTES",
    "MAX_LITERAL_CHARS",
    "MAX_DEPTH",
    "MAX_MAPPING_TOKENS",
    "MAX_SEQUENCE_ITEMS",
    "token_estimate",
]

SELECTOR_NAMES = ("Match", "UseAfter", "VersionAfter", "SelectVersion",
                  "ClosestTime", "GeometricallyNearest", "Bracket")
_SELECTORS = frozenset(SELECTOR_NAMES)

#: The largest real mapping is a few MB (HST rmaps with ~100k dates); 64 MB
#: leaves room and still refuses absurd inputs before parsing them.
MAX_MAPPING_BYTES = 64 * 1024 * 1024
#: No single string literal in a real mapping comes close to this.
MAX_LITERAL_CHARS = 1024 * 1024
#: Real mappings nest at most ~6 levels (header dicts, Match -> UseAfter).
MAX_DEPTH = 64
#: Bound on :func:`token_estimate` before the text is parsed: parsing costs ~1 us and
#: ~250 bytes per syntax node, so the byte cap alone admits tens of GB of work (an 8 MB
#: tuple took 53 s and 4 GB).  The largest mapping in a full HST/JWST/Roman cache
#: estimates ~50,000; an rmap of 100,000 dated files ~600,000.
MAX_MAPPING_TOKENS = 1_000_000
#: No tuple or list in a real mapping (Match keys, parkeys, leaves) has more than ~20 items.
MAX_SEQUENCE_ITEMS = 10_000
#: Characters that separate or open the nodes of a literal (dates' '-' and ':' left out).
_NODE_PUNCTUATION = str.maketrans("", "", ",;=([{.")

_ASSIGNABLE = ("header", "comment", "selector")
_REQUIRED = {
    "PIPELINE": ("mapping", "parkey", "name", "derived_from", "observatory"),
    "INSTRUMENT": ("mapping", "parkey", "name", "derived_from", "instrument"),
    "REFERENCE": ("mapping", "parkey", "name", "derived_from", "observatory", "instrument", "filekind"),
}
_BASE_REQUIRED = ("mapping", "parkey", "name", "derived_from")


@dataclass(frozen=True, slots=True)
class SelectorCall:
    """One selector call such as ``UseAfter({...})``: its name and (key, value) choices."""

    name: str
    choices: tuple[tuple[object, object], ...]
    lineno: int


@dataclass(frozen=True, slots=True)
class ParsedMapping:
    """The literal content of one mapping file."""

    filename: str
    header: dict
    selector: SelectorCall | dict
    comment: str | None


class _Walker:
    """Turns whitelisted AST nodes into Python values; anything else is an error."""

    __slots__ = ("filename",)

    def __init__(self, filename: str):
        self.filename = filename

    def fail(self, node: ast.AST | None, problem: str) -> MappingSyntaxError:
        line = getattr(node, "lineno", "?")
        return MappingSyntaxError(f"{self.filename}:{line}: {problem}")

    def value(self, node: ast.AST, depth: int = 0) -> object:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels")
        kind = type(node)
        if kind is ast.Constant:
            value = node.value
            if isinstance(value, str):
                if len(value) > MAX_LITERAL_CHARS:
                    raise self.fail(node, f"string literal longer than {MAX_LITERAL_CHARS} characters")
                return value
            if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                return value
            raise self.fail(node, f"literal of type {type(value).__name__} is not allowed")
        if kind is ast.Dict:
            out: dict = {}
            for key, val in zip(node.keys, node.values):
                if key is None:
                    raise self.fail(val, "'**' unpacking is not allowed")
                out[self.key(key, depth + 1)] = self.value(val, depth + 1)
            return out
        if kind is ast.Tuple or kind is ast.List:
            if len(node.elts) > MAX_SEQUENCE_ITEMS:
                raise self.fail(node, f"{kind.__name__.lower()} of {len(node.elts)} items: "
                                f"more than {MAX_SEQUENCE_ITEMS}")
            items = tuple(self.value(elt, depth + 1) for elt in node.elts)
            return items if kind is ast.Tuple else list(items)
        if kind is ast.UnaryOp and type(node.op) is ast.USub:
            operand = self.value(node.operand, depth + 1)
            if isinstance(operand, (int, float)):
                return -operand
            raise self.fail(node, "unary minus applies only to numbers")
        if kind is ast.Call:
            return self.call(node, depth)
        raise self.fail(node, f"{kind.__name__} is not allowed in a mapping")

    def key(self, node: ast.AST, depth: int) -> object:
        value = self.value(node, depth)
        if isinstance(value, (dict, list, SelectorCall)):
            raise self.fail(node, "a dict key must be a string, number or tuple")
        try:
            hash(value)
        except TypeError:  # a tuple holding a list or dict
            raise self.fail(node, f"dict key {value!r} is not hashable (a list or dict inside a tuple)") from None
        return value

    def call(self, node: ast.Call, depth: int) -> SelectorCall:
        func = node.func
        if type(func) is not ast.Name or func.id not in _SELECTORS:
            what = func.id if type(func) is ast.Name else type(func).__name__
            raise self.fail(node, f"call of {what!r} is not allowed: only selectors {', '.join(SELECTOR_NAMES)}")
        if node.keywords or len(node.args) != 1 or type(node.args[0]) is not ast.Dict:
            raise self.fail(node, f"{func.id}() takes exactly one dict argument")
        arg = node.args[0]
        choices: dict = {}
        for key, val in zip(arg.keys, arg.values):
            if key is None:
                raise self.fail(val, "'**' unpacking is not allowed")
            choices[self.key(key, depth + 2)] = self.value(val, depth + 2)  # duplicate key: last wins
        return SelectorCall(func.id, tuple(choices.items()), node.lineno)


def token_estimate(text: str) -> int:
    """An upper bound of the syntax nodes ``text`` can parse into, computed at C speed.

    Every literal item is separated from the next by a comma, opens a bracket, or is a
    word between blanks (``1 and 1 and ...``), so commas, brackets, ``=``, ``;``, dots and
    whitespace-separated words bound the node count from above.
    """
    return len(text) - len(text.translate(_NODE_PUNCTUATION)) + len(text.split())


def parse_mapping_text(text: str, filename: str) -> ParsedMapping:
    """Parse mapping ``text`` without executing it.

    Parameters
    ----------
    text : str
        The file's text.
    filename : str
        Used in error messages (``<filename>:<line>: <problem>``).

    Raises
    ------
    MappingSyntaxError
        For anything that is not a legal CRDS mapping.
    """
    if len(text) > MAX_MAPPING_BYTES:
        raise MappingSyntaxError(f"{filename}:1: mapping larger than {MAX_MAPPING_BYTES // 2**20} MB")
    if "\0" in text:
        raise MappingSyntaxError(f"{filename}:1: NUL byte in mapping text")
    if (tokens := token_estimate(text)) > MAX_MAPPING_TOKENS:
        raise MappingSyntaxError(f"{filename}:1: mapping of ~{tokens:,} syntax items: more than "
                                 f"{MAX_MAPPING_TOKENS:,}, far beyond any real mapping")
    try:
        tree = ast.parse(text, filename=filename, mode="exec")
    except SyntaxError as exc:
        raise MappingSyntaxError(f"{filename}:{exc.lineno or '?'}: Python syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise MappingSyntaxError(f"{filename}:?: mapping too deeply nested or too large to parse") from None
    except ValueError as exc:
        raise MappingSyntaxError(f"{filename}:?: {exc}") from None

    walker = _Walker(filename)
    found: dict[str, object] = {}
    for stmt in tree.body:
        if (type(stmt) is not ast.Assign or len(stmt.targets) != 1
                or type(stmt.targets[0]) is not ast.Name or stmt.targets[0].id not in _ASSIGNABLE):
            raise walker.fail(stmt, f"{type(stmt).__name__} statement is not allowed: "
                              "only 'header = ', 'comment = ' and 'selector = ' assignments")
        name = stmt.targets[0].id
        if name in found:
            raise walker.fail(stmt, f"{name!r} is assigned twice")
        if type(stmt.value) not in (ast.Dict, ast.Call, ast.Constant):
            raise walker.fail(stmt, f"{name!r} must be a dict, a selector call or a constant")
        try:
            found[name] = walker.value(stmt.value)
        except RecursionError:
            raise walker.fail(stmt, "mapping too deeply nested") from None

    header = found.get("header")
    if not isinstance(header, dict):
        raise MappingSyntaxError(f"{filename}:1: no 'header = {{...}}' dict")
    selector = found.get("selector")
    if not isinstance(selector, (dict, SelectorCall)):
        raise MappingSyntaxError(f"{filename}:1: no 'selector = ...' dict or selector call")
    comment = found.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise MappingSyntaxError(f"{filename}:1: 'comment' must be a string")
    return ParsedMapping(filename, header, selector, comment)


def mapping_class(filename: str, header: dict) -> str:
    """PIPELINE, INSTRUMENT or REFERENCE: from the extension, else the header."""
    for ext, kind in ((".pmap", "PIPELINE"), (".imap", "INSTRUMENT"), (".rmap", "REFERENCE")):
        if filename.endswith(ext):
            return kind
    return str(header.get("mapping", "")).upper()


def check_required_header(parsed: ParsedMapping) -> None:
    """Raise :class:`RulesError` if a required header key is missing."""
    required = _REQUIRED.get(mapping_class(parsed.filename, parsed.header), _BASE_REQUIRED)
    for key in required:
        if key not in parsed.header:
            raise RulesError(f"{parsed.filename}: Required header key {key!r} is missing.")


def parse_checked_mapping(text: str, filename: str, *, verify_checksum: bool = True) -> ParsedMapping:
    """Parse one mapping's text and check it: size, required header keys, and ``sha1sum``.

    Raises
    ------
    MappingSyntaxError, ChecksumError, RulesError
        Oversize or illegal text, a wrong/missing ``sha1sum``, missing header keys (the
        message names the file).
    """
    from .checksum import verify_mapping_checksum

    if len(text) > MAX_MAPPING_BYTES:
        raise MappingSyntaxError(f"{filename}:1: mapping larger than {MAX_MAPPING_BYTES // 2**20} MB")
    parsed = parse_mapping_text(text, filename)
    check_required_header(parsed)
    if verify_checksum:
        verify_mapping_checksum(text, parsed.header, filename)
    return parsed
