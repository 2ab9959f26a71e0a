"""Read dataset parameter dumps: the files ``crds bestrefs --load-pickles`` reads.

A dump maps dataset ids (``"<DATASET>:<EXPOSURE>"``) to their parameters
(``{KEYWORD: value}``), including the archive's recorded best references
(``"DARKFILE": "jref$x1y2z3_drk.fits"``).  Three forms, told apart by content:

- one JSON object ``{id: {...}, ...}`` as the archive dumps it, on one line or
  pretty-printed;
- JSON lines, ``{id: {...}}`` on each line, as ``--save-pickle x.json`` writes;
- a Python pickle of one ``{id: {...}}`` dict, as ``--save-pickle x.pkl``
  writes, read by an unpickler that refuses every global (nothing in the file
  is ever imported or called), so only dicts, lists, tuples, strings, numbers,
  booleans and None come out.

JSON is streamed member by member from buffered chunks with
``json.JSONDecoder.raw_decode``: memory holds one chunk and one dataset, never
the file.  A pickle is loaded whole (the format cannot be streamed).

Errors: a file that cannot be read as a dump raises :class:`DumpError`, one
line ``"<file>:<line>:<column>: <problem>"`` (``"<file>: byte <n>: ..."`` for
pickles).  One bad dataset (parameters that are not an object of plain
values, such as the error text the reference stores for a dataset it could
not dump) does not stop the stream: its value is a
:class:`DatasetParametersError` the caller reports.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import pickle
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

from ..errors import CrdsError, HeaderError
from ..rules.conditioning import condition_value
from .deferred import Deferred

__all__ = [
    "DumpError",
    "DatasetParametersError",
    "iter_dump",
    "iter_dump_lines",
    "DumpLine",
    "read_dump_lines",
    "load_dumps",
    "count_datasets",
    "dump_ids",
    "recorded_bestrefs",
    "normalize_bestref",
    "clean_reference_name",
]

#: Characters read per chunk; a dataset larger than this grows the buffer.
CHUNK_CHARS = 1 << 20

_PLAIN = frozenset((str, int, float, bool, type(None)))
_STR = frozenset((str,))
_BLANKS = " \t\n\r"
_WS = re.compile(r"[ \t\n\r]*")
_SCAN = json.JSONDecoder().scan_once  # (value, end) of the JSON value at a position, at C speed
_PICKLE_SUFFIXES = (".pkl", ".pickle")


class DumpError(HeaderError):
    """A parameter dump file cannot be read: names the file and the position."""


class DatasetParametersError(HeaderError):
    """One dataset of a dump has unusable parameters; the rest of the dump is read."""


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problem(value: object) -> str | None:
    """Why ``value`` is not an object of plain values (None when it is one)."""
    if isinstance(value, str):
        return f"no parameters, the dump holds the text {_short(value)}"
    if type(value) is not dict:  # noqa: E721 - a dict subclass cannot come out of the readers
        return f"parameters are a {type(value).__name__}, not an object"
    if set(map(type, value)) <= _STR and set(map(type, value.values())) <= _PLAIN:
        return None  # the usual case, checked at C speed
    for key, item in value.items():
        if type(key) is not str:  # noqa: E721
            return f"parameter name {_short(key)} is not a string"
        if type(item) not in _PLAIN:
            return f"parameter {key!r} holds a {type(item).__name__}, not a plain value"
    return None


# ----------------------------------------------------------------------------- JSON


class _JsonStream:
    """Members of the top-level JSON objects of a text stream, one at a time."""

    def __init__(self, raw: io.BufferedIOBase, path: str, chunk_chars: int) -> None:
        self.raw, self.path, self.chunk = raw, path, max(1, int(chunk_chars))
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos = "", 0
        self.eof = False
        self.bytes_read = 0
        self.lines_before = 0  # newlines in the text dropped before buf
        self.column_before = 0  # characters after the last of them in the dropped text
        self.line_mark = (0, 0)  # (pos in buf, newlines in buf before it): line counting resumes there

    # -- buffer
    def fill(self) -> bool:
        """Append the next chunk (at least as much as is still unread); False at end of file."""
        if self.eof:
            return False
        want = max(self.chunk, len(self.buf) - self.pos)
        data = self.raw.read(want)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise DumpError(f"{self.path}: byte {self.bytes_read + max(exc.start, 0)}: not UTF-8 text") from None
        self.bytes_read += len(data)
        self.lines_before += self.buf.count("\n", 0, self.pos)
        newline = self.buf.rfind("\n", 0, self.pos)
        self.column_before = self.pos - newline - 1 if newline >= 0 else self.column_before + self.pos
        self.buf = self.buf[self.pos:] + text
        self.pos = 0
        self.line_mark = (0, 0)
        self.eof = not data
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at end of file), with the position on it."""
        buf, pos = self.buf, self.pos
        if pos < len(buf) and buf[pos] not in _BLANKS:
            return buf[pos]
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def where(self, pos: int | None = None) -> str:
        """``"<file>:<line>:<column>"`` of a position in the buffer (default: the current one)."""
        pos = self.pos if pos is None else pos
        mark, lines = self.line_mark
        if pos < mark:
            mark, lines = 0, 0
        lines += self.buf.count("\n", mark, pos)
        self.line_mark = (pos, lines)
        newline = self.buf.rfind("\n", 0, pos)
        column = pos - newline if newline >= 0 else self.column_before + pos + 1
        return f"{self.path}:{self.lines_before + lines + 1}:{column}"

    def error(self, problem: str, pos: int | None = None) -> DumpError:
        return DumpError(f"{self.where(pos)}: {problem}")

    # -- tokens
    def value(self) -> object:
        """Decode the JSON value at the current position, reading more text while it is cut short."""
        while True:
            try:
                try:
                    value, end = _SCAN(self.buf, self.pos)
                except StopIteration as stop:
                    raise json.JSONDecodeError("Expecting value", self.buf, stop.value) from None
            except json.JSONDecodeError as exc:
                cut_short = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buf) - 16
                if cut_short and self.fill():
                    continue
                if self.eof and self._ends_inside(exc):
                    raise self.error(f"truncated: the file ends inside a value ({exc.msg})", exc.pos) from None
                raise self.error(exc.msg, exc.pos) from None
            except RecursionError:
                raise self.error("values nested too deeply") from None
            if end == len(self.buf) and self.fill():
                continue  # a number may go on in the next chunk
            self.pos = end
            return value

    def _ends_inside(self, exc: json.JSONDecodeError) -> bool:
        """At end of file: did the decoder fail because the text stops (not because it is wrong)?"""
        rest = self.buf[exc.pos:].rstrip()
        return (exc.msg.startswith("Unterminated string") or not rest
                or any(word.startswith(rest) for word in ("true", "false", "null", "-Infinity", "NaN")))

    def expect(self, char: str, problem: str) -> None:
        found = self.peek()
        if found != char:
            raise self.error(problem + ("" if found else " (the file ends here: truncated?)"))
        self.pos += 1

    # -- members
    def members(self) -> Iterator[tuple[str, object, int]]:
        """``(dataset_id, value, position of the value in the buffer)`` for each member of each top-level object."""
        if self.peek() == "\ufeff":
            self.pos += 1
        while True:
            found = self.peek()
            if found == "":
                return
            if found != "{":
                raise self.error("expected a JSON object of {dataset_id: parameters}")
            self.pos += 1
            if self.peek() == "}":
                self.pos += 1
                continue
            while True:
                if self.peek() != '"':
                    self.expect('"', "expected a dataset id in double quotes")
                dataset_id = self.value()
                self.expect(":", f"expected ':' after dataset id {_short(dataset_id)}")
                self.peek()
                at = self.pos
                value = self.value()
                yield dataset_id, value, at  # the buffer still holds ``at`` while the caller looks
                found = self.peek()
                if found == ",":
                    self.pos += 1
                    continue
                if found == "}":
                    self.pos += 1
                    break
                raise self.error(f"expected ',' or '}}' after dataset {_short(dataset_id)}"
                                 + ("" if found else " (the file ends here: truncated?)"))


# ----------------------------------------------------------------------------- pickles


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler that imports and calls nothing: every global is refused."""

    def __init__(self, file, path: str) -> None:
        super().__init__(file)
        self._file, self._path = file, path

    def find_class(self, module: str, name: str):  # noqa: D102 - refuses, see the class
        raise DumpError(
            f"{self._path}: byte {self._file.tell()}: the pickle names {module}.{name}; refused "
            "(only dicts, lists, tuples, strings, numbers, booleans and None are read)")

    def persistent_load(self, pid):  # noqa: D102
        raise DumpError(f"{self._path}: byte {self._file.tell()}: the pickle holds a persistent id; refused")


def _load_pickle(path: str, raw: io.BufferedIOBase) -> object:
    try:
        return _PlainUnpickler(raw, path).load()
    except DumpError:
        raise
    except RecursionError:
        raise DumpError(f"{path}: byte {raw.tell()}: values nested too deeply") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        problem = "truncated" if isinstance(exc, EOFError) else f"not a readable pickle ({exc})"
        raise DumpError(f"{path}: byte {raw.tell()}: {problem}".replace("\n", " ")) from None


def _pickle_members(path: str, raw: io.BufferedIOBase) -> Iterator[tuple[str, object]]:
    data = _load_pickle(path, raw)
    if type(data) is not dict:  # noqa: E721
        raise DumpError(f"{path}: byte 0: the pickle holds a {type(data).__name__}, "
                        "not a dict of {dataset_id: parameters}")
    for dataset_id, value in data.items():
        if type(dataset_id) is not str:  # noqa: E721
            yield str(dataset_id), DatasetParametersError(
                f"{path}: dataset id {_short(dataset_id)} is not a string")
            continue
        problem = _problem(value)
        yield dataset_id, value if problem is None else DatasetParametersError(
            f"{path}: dataset {_short(dataset_id)}: {problem}")


# ----------------------------------------------------------------------------- public


def _sniff(path: str, raw: io.BufferedReader) -> str:
    """``'json'`` or ``'pickle'`` from the first bytes (the suffix decides only for old pickles)."""
    head = raw.peek(64)[:64].lstrip(b" \t\r\n")
    if head.startswith(b"\x80"):
        return "pickle"
    if head.startswith((b"{", b"[", b"\xef\xbb\xbf")) or not head:
        return "json"
    if path.lower().endswith(_PICKLE_SUFFIXES):
        return "pickle"  # protocols 0 and 1 have no magic number
    raise DumpError(f"{path}: byte 0: not a parameter dump (neither a JSON object nor a pickle)")


def _open(path) -> tuple[str, io.BufferedReader]:
    name = os.fspath(path)
    try:
        return name, open(name, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise DumpError(f"{name}: {exc.strerror or exc}") from None


def iter_dump(path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[str, dict | DatasetParametersError]]:
    """Stream ``(dataset_id, parameters)`` from one dump file, in file order.

    Parameters
    ----------
    path : str or os.PathLike
        A JSON object, JSON-lines or pickle dump, told apart by content.
    chunk_chars : int
        Characters read at a time from a JSON dump (memory is about twice this
        plus the largest dataset).

    Yields
    ------
    tuple of (str, dict or DatasetParametersError)
        The id and its parameters exactly as stored (keys and values not
        conditioned), or the error of that one dataset.  An id stored twice is
        yielded twice; :func:`load_dumps` keeps the last, as the reference does.

    Raises
    ------
    DumpError
        The file cannot be read as a dump (one line naming the file and where).
    """
    name, raw = _open(path)
    with raw:
        kind = _sniff(name, raw)
        if kind == "pickle":
            yield from _pickle_members(name, raw)
            return
        stream = _JsonStream(raw, name, chunk_chars)
        for dataset_id, value, at in stream.members():
            problem = _problem(value)
            yield dataset_id, value if problem is None else DatasetParametersError(
                f"{stream.where(at)}: dataset {_short(dataset_id)}: {problem}")


def _bestrefs_condition(value: object) -> str:
    """A later dump's value as the reference merges it: conditioned, ``NOT FOUND N/A`` -> ``N/A``."""
    text = condition_value(value)
    return "N/A" if text == "NOT FOUND N/A" else text


def load_dumps(paths: Iterable, *, only_ids: Collection[str] | None = None,
               on_skipped: Callable[[DatasetParametersError], None] | None = None,
               chunk_chars: int = CHUNK_CHARS) -> dict[str, dict | DatasetParametersError]:
    """Combine dumps given worst to best, as ``crds bestrefs --load-pickles A B ...`` does.

    Within one file an id stored twice keeps its last parameters, whole.  The
    first file that holds any dataset is taken as it is (keys and values as
    stored).  Each later file is merged over it parameter by parameter (a
    later dump may hold only corrections such as recorded best references):
    keys upper-cased, values conditioned as the reference conditions header
    values, ``NOT FOUND N/A`` read as ``N/A``; other parameters of the dataset
    stay.  A dataset new in a later file starts empty.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Dump files in worst-to-best order.
    only_ids : collection of str, optional
        Keep only these dataset ids.
    on_skipped : callable, optional
        Called with the error of each bad dataset of a later file; those are
        skipped, so the dataset keeps what earlier files gave it (the
        reference means to skip them with a warning).  A bad dataset of the
        first file stays in the result as its error.

    Returns
    -------
    dict
        ``{dataset_id: parameters or DatasetParametersError}`` in first-seen
        order (the reference processes datasets in sorted id order).
    """
    merged: dict[str, dict | DatasetParametersError] = {}
    for path in paths:
        this: dict[str, dict | DatasetParametersError] = {}
        for dataset_id, params in iter_dump(path, chunk_chars=chunk_chars):
            if only_ids is None or dataset_id in only_ids:
                this[dataset_id] = params
        if not merged:
            merged.update(this)
            continue
        for dataset_id, params in this.items():
            if isinstance(params, CrdsError):
                if on_skipped is not None:
                    on_skipped(params)
                continue
            target = merged.get(dataset_id)
            if not isinstance(target, dict):
                target = merged[dataset_id] = {}
            for key, value in params.items():
                target[key.upper()] = _bestrefs_condition(value)
    return merged


def count_datasets(path, *, chunk_chars: int = CHUNK_CHARS) -> int:
    """How many datasets a dump holds (members, an id stored twice counts twice): a progress total.

    A JSON-lines dump written one dataset a line (the reference's
    ``--save-pickle``, :func:`crds_async.sources.save_pickle`) is counted by
    its lines without being parsed; any other JSON dump is parsed as a stream;
    a pickle is loaded.

    Raises
    ------
    DumpError
        As :func:`iter_dump`, when the file has to be parsed.
    """
    name, raw = _open(path)
    with raw:
        kind = _sniff(name, raw)
        if kind == "json" and _one_dataset_per_line(raw):
            return _count_object_lines(raw)
    return sum(1 for _ in iter_dump(name, chunk_chars=chunk_chars))


def dump_ids(path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """The dataset ids of a dump, in file order (an id stored twice comes twice).

    A JSON-lines dump written one dataset a line (``--save-pickle``) is read in blocks
    and only each line's id is decoded (about a microsecond a dataset); other dumps are
    parsed as :func:`iter_dump` parses them.

    Raises
    ------
    DumpError
        As :func:`iter_dump`, when the file has to be parsed; a line that does not start
        with a quoted id sends the whole file to the parser, which names the problem.
    """
    name, raw = _open(path)
    yielded = 0
    with raw:
        if _sniff(name, raw) == "json" and _one_dataset_per_line(raw):
            for _base, block in _blocks(raw):
                ids, _lines = block_plain_ids(block)
                if ids is None:
                    break
                yield from ids
                yielded += len(ids)
            else:
                return
    # not the simple layout after all: parse it (ids already given are not repeated)
    for index, (dataset_id, _value) in enumerate(iter_dump(name, chunk_chars=chunk_chars)):
        if index >= yielded:
            yield dataset_id


class DumpLine(Deferred):
    """One dataset of a one-dataset-a-line JSON dump: where its line is, not its content.

    The process that reads a dump for a batch only splits lines and reads ids; a batch
    task carries each dataset as its file, line number, byte offset and size (tens of
    bytes, whatever its parameters' size), and the process that evaluates it reads and
    decodes the line (:func:`read_dump_lines` reads a task's lines in one read).  So a
    million-dataset campaign is bound neither by one process decoding every parameter
    set nor by shipping them to workers or through a cluster's scheduler (a cluster's
    workers need the dump on a shared file system, as they need dataset files).
    :meth:`parameters` gives what :func:`iter_dump` gives for that dataset, or raises
    the error naming the file, line and column.
    """

    __slots__ = ("path", "line", "dataset_id", "offset", "size", "text")

    def __init__(self, path: str, line: int, dataset_id: str, offset: int, size: int,
                 text: bytes | None = None) -> None:
        self.path, self.line, self.dataset_id = path, line, dataset_id
        self.offset, self.size, self.text = offset, size, text

    def __reduce__(self):
        # the text stays behind: the evaluating process reads it (read_dump_lines)
        return DumpLine, (self.path, self.line, self.dataset_id, self.offset, self.size)

    def _key(self) -> tuple:
        return self.path, self.line, self.dataset_id, self.offset, self.size

    def __eq__(self, other: object) -> bool:
        return type(other) is DumpLine and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DumpLine({self.path!r}, line {self.line}, {self.dataset_id!r})"

    def identity(self) -> bytes:
        # like a dataset file's, its content is not part of a journal's identity: its place is
        return f"{self.path}\0{self.line}\0{self.offset}\0{self.size}".encode("utf-8", "surrogateescape")

    @classmethod
    def prefetch(cls, group: list) -> None:
        try:
            read_dump_lines(group)
        except CrdsError:
            pass  # a line that cannot be read is its dataset's error

    def read(self) -> bytes:
        """The line's bytes (read from the file unless :func:`read_dump_lines` did already).

        Raises
        ------
        DumpError
            The file cannot be read there, or has changed (the line is cut short).
        """
        if self.text is None:
            read_dump_lines([self])
        return self.text  # type: ignore[return-value]

    def parameters(self) -> dict:
        """The dataset's parameters, exactly as stored.

        Raises
        ------
        DumpError
            The line is not one JSON object holding this one dataset.
        DatasetParametersError
            The dataset's value is not an object of plain values.
        """
        where = f"{self.path}:{self.line}"
        try:
            text = self.read().decode("utf-8").rstrip("\r\n")  # a column counts within the line
        except UnicodeDecodeError as exc:
            raise DumpError(f"{where}: byte {exc.start} of the line: not UTF-8 text") from None
        try:
            found = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DumpError(f"{where}:{exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise DumpError(f"{where}: values nested too deeply") from None
        if type(found) is not dict or len(found) != 1 or self.dataset_id not in found:
            raise DumpError(f"{where}: expected one dataset, {_short(self.dataset_id)}, on the line")
        value = found[self.dataset_id]
        problem = _problem(value)
        if problem is not None:
            _, end = _SCAN(text, text.index('"'))
            column = _WS.match(text, text.index(":", end) + 1).end() + 1
            raise DatasetParametersError(f"{where}:{column}: dataset {_short(self.dataset_id)}: {problem}")
        return value


def iter_dump_lines(path) -> Iterator[tuple[str, DumpLine]] | None:
    """``(dataset_id, DumpLine)`` of a one-dataset-a-line JSON dump (``--save-pickle``'s
    layout), in file order; None when the file is another form (use :func:`iter_dump`).

    Only each line's id is decoded here (as :func:`dump_ids` does); a line whose id is
    not a plain quoted string is decoded whole to find it.

    Raises
    ------
    DumpError
        The file cannot be opened, or a line holds no dataset id.
    """
    name, raw = _open(path)
    with raw:
        if _sniff(name, raw) != "json" or not _one_dataset_per_line(raw):
            return None
    return _dump_lines(name)


def _dump_lines(name: str) -> Iterator[tuple[str, DumpLine]]:
    _, raw = _open(name)
    number = 0  # lines before the block
    with raw:
        for base, block in _blocks(raw):
            yield from block_datasets(name, base, number, block)
            number += _lines_in(block)


def block_datasets(name: str, base: int, number: int, block: bytes, *,
                   with_text: bool = False) -> Iterator[tuple[str, DumpLine]]:
    """``(dataset_id, DumpLine)`` of a block of whole lines of dump ``name``, which starts at
    byte ``base`` after ``number`` lines; ``with_text``: each line's bytes kept (its reader
    has them already).

    Raises
    ------
    DumpError
        A line holds no dataset id.
    """
    lines = _lines_in(block)
    matches = list(_SIMPLE_LINE.finditer(block))
    if len(matches) != lines:  # a blank line, an escaped id: line by line
        yield from _block_lines(name, base, number, block, with_text)
        return
    # the usual block: every line a plain id, found at C speed
    for index, match in enumerate(matches, number + 1):
        dataset_id = match.group(1).decode("utf-8", "surrogateescape")
        start, end = match.span()
        yield dataset_id, DumpLine(name, index, dataset_id, base + start, end - start,
                                   block[start:end] if with_text else None)


def _block_lines(name: str, base: int, number: int, block: bytes,
                 with_text: bool = False) -> Iterator[tuple[str, DumpLine]]:
    """The datasets of a block line by line (blank lines, ids with escapes)."""
    offset = 0
    for number, line in enumerate(block.splitlines(keepends=True), number + 1):
        at, offset = offset, offset + len(line)
        plain = _plain_id(line)
        if plain is not None:
            dataset_id = plain.decode("utf-8", "surrogateescape")
        elif not line.strip():
            continue
        else:
            dataset_id = _line_id(name, number, line)
        yield dataset_id, DumpLine(name, number, dataset_id, base + at, len(line), line if with_text else None)


def _plain_id(line: bytes) -> bytes | None:
    """The id of a line that starts with a plain quoted one (no escape), else None."""
    end = line.find(b'"', 2) if line.startswith(b'{"') else -1
    return line[2:end] if end > 0 and b"\\" not in line[2:end] else None


#: a line that starts with a plain quoted id (no escape), through its newline
_SIMPLE_LINE = re.compile(rb'^\{"([^"\\\n]*)"[^\n]*(?:\n|\Z)', re.MULTILINE)
#: bytes read at a time when lines are listed
_BLOCK_BYTES = 1 << 20


def _blocks(raw, size: int = _BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(offset, block)``: the file in blocks of whole lines of about ``size`` bytes (a line
    longer than that is a block of its own; the last may lack its newline)."""
    base, rest = 0, b""
    while True:
        data = raw.read(size)
        if not data:
            if rest:
                yield base, rest
            return
        data = rest + data if rest else data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
            continue
        yield base, data[:cut]
        base += cut
        rest = data[cut:]


def _lines_in(block: bytes) -> int:
    return block.count(b"\n") + (not block.endswith(b"\n"))


def block_plain_ids(block: bytes) -> tuple[list[str] | None, int]:
    """``(ids, lines)`` of a block of whole lines of a one-dataset-a-line dump: the ids in
    order (blank lines skipped), found at C speed, or None when a line has no plain id
    (an escape: that line must be decoded whole); and how many lines the block holds."""
    lines = _lines_in(block)
    found = _SIMPLE_LINE.findall(block)
    if len(found) != lines:  # a blank line, an escaped id: line by line
        found = _block_ids(block)
        if found is None:
            return None, lines
    return [i.decode("utf-8", "surrogateescape") for i in found], lines


def _block_ids(block: bytes) -> list[bytes] | None:
    """The ids of a block's lines (blank lines skipped); None when a line has no plain id."""
    ids = []
    for line in block.splitlines():
        plain = _plain_id(line)
        if plain is not None:
            ids.append(plain)
        elif line.strip():
            return None
    return ids


#: the most bytes read at once for a task's dump lines (a span of lines, or one line)
_SPAN_BYTES = 1 << 24


def read_dump_lines(lines: Iterable[object]) -> None:
    """Read the text of the :class:`DumpLine` among ``lines`` that have none, each run of
    lines of one file in one read (a task's lines are consecutive in its dump).

    A line that cannot be read keeps no text; its :meth:`DumpLine.parameters` then raises
    the error (the file and the problem), for that dataset alone.
    """
    pending = [line for line in lines if type(line) is DumpLine and line.text is None]
    i = 0
    while i < len(pending):
        first = pending[i]
        j = i + 1
        while (j < len(pending) and pending[j].path == first.path and pending[j].offset >= pending[j - 1].offset
               and pending[j].offset + pending[j].size - first.offset <= _SPAN_BYTES):
            j += 1
        run, i = pending[i:j], j
        start, stop = first.offset, max(line.offset + line.size for line in run)
        try:
            with open(first.path, "rb") as raw:
                raw.seek(start)
                block = raw.read(stop - start)
        except OSError as exc:
            if len(run) == 1:
                raise DumpError(f"{first.path}:{first.line}: {exc.strerror or exc}") from None
            continue  # each line will try alone and name its own problem
        for line in run:
            text = block[line.offset - start:line.offset - start + line.size]
            if len(text) != line.size:
                if len(run) == 1:
                    raise DumpError(f"{line.path}:{line.line}: the dump is shorter than when it was read "
                                    "(changed during the batch?)")
                continue
            line.text = text


def _line_id(name: str, number: int, line: bytes) -> str:
    """The id of a line whose id is not plain (escapes): the line decoded whole."""
    try:
        found = json.loads(line)
    except ValueError as exc:
        raise DumpError(f"{name}:{number}: {exc}") from None
    if type(found) is not dict or len(found) != 1:
        raise DumpError(f"{name}:{number}: expected one {{dataset_id: parameters}} object on the line")
    return next(iter(found))


def _one_dataset_per_line(raw: io.BufferedReader) -> bool:
    """True when the first line is a whole one-dataset object (the --save-pickle layout)."""
    line = raw.readline(1 << 22)
    raw.seek(0)
    if not line.startswith(b"{") or not line.endswith(b"\n"):
        return False
    try:
        first = json.loads(line)
    except ValueError:
        return False
    return isinstance(first, dict) and len(first) == 1


def _count_object_lines(raw: io.BufferedReader) -> int:
    """Lines that begin with '{' (each a one-dataset object in this layout)."""
    count, previous = 0, b"\n"
    while block := raw.read(1 << 20):
        count += block.count(b"\n{") + (previous == b"\n" and block.startswith(b"{"))
        previous = block[-1:]
    return count


# ----------------------------------------------------------------------------- recorded best references


def clean_reference_name(name: str) -> str:
    """A recorded reference without its IRAF prefix or ``crds://`` (the reference's ``cleanpath``).

    As in the reference, only a lower-case ``...ref$`` prefix is an IRAF
    prefix: ``JREF$X.FITS`` and ``mtab$x.fits`` stay as they are.

    Examples
    --------
    >>> clean_reference_name("jref$n4e12510j_crr.fits")
    'n4e12510j_crr.fits'
    >>> clean_reference_name("crds://jwst_nircam_flat_0001.fits")
    'jwst_nircam_flat_0001.fits'
    """
    if "ref$" in name:
        return name.split("$")[-1].strip()
    if name.startswith("crds://"):
        return name[len("crds://"):]
    return name


def normalize_bestref(value: object, *, undefined_is_error: bool = False) -> tuple[bool, str]:
    """``(ok, name)`` as ``crds bestrefs`` compares a best reference, recorded or new.

    ``name`` is upper case without its prefix; ``N/A`` for a natural n/a and,
    unless ``undefined_is_error`` (``--undefined-differences-matter``), for
    ``UNDEFINED``, ``NONE``, ``*``, an empty value and ``No match found.``;
    ``ok`` is False for another ``NOT FOUND`` answer.

    Examples
    --------
    >>> normalize_bestref("jref$x1y2z3_drk.fits")
    (True, 'X1Y2Z3_DRK.FITS')
    >>> normalize_bestref("NOT FOUND n/a")
    (True, 'N/A')
    >>> normalize_bestref("NOT FOUND parameter 'X' is missing")
    (False, "NOT FOUND PARAMETER 'X' IS MISSING")
    """
    name = clean_reference_name(str(value)).strip().upper()
    if name.startswith("NOT FOUND N/A"):
        return True, "N/A"
    if name in ("NOT FOUND NO MATCH FOUND.", "UNDEFINED", "NONE", "", "*"):
        return (False, name) if undefined_is_error else (True, "N/A")
    if name.startswith("NOT FOUND"):
        return False, name
    return True, name


def recorded_bestrefs(params: Mapping[str, object], reftypes: Iterable[str], *,
                      keyword_of: Callable[[str], str | None] | None = None) -> dict[str, str]:
    """The archive's recorded best references of one dataset, as ``--compare-source-bestrefs`` reads them.

    For each type the value is the parameter named ``keyword_of(reftype)``
    (default: the type upper-cased, HST's keyword; a JWST caller passes the
    schema keyword, e.g. ``R_FLAT`` for ``flat``), else the parameter named as
    the type upper-cased, else ``UNDEFINED``; then normalized by
    :func:`normalize_bestref` and lower-cased as ``--print-new-references``
    prints it (``jref$X1Y2Z3_DRK.FITS`` -> ``x1y2z3_drk.fits``, an undefined
    one -> ``n/a``, but ``JREF$X.FITS`` -> ``jref$x.fits`` as in the reference).

    Returns
    -------
    dict
        ``{reftype (lower case): recorded name}``.
    """
    result = {}
    for reftype in reftypes:
        keyword = keyword_of(reftype) if keyword_of is not None else reftype.upper()
        if keyword is not None and keyword in params:
            value = params[keyword]
        else:
            value = params.get(reftype.upper(), "UNDEFINED")
        result[reftype.lower()] = normalize_bestref(value)[1].lower()
    return result
