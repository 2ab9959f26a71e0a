"""Row-by-row differences between the table HDUs of two FITS files (``crds-batch rowdiff``).

Column-wise comparison (astropy's ``TableDataDiff``) decides whether a table
differs at all; the rows themselves are then lined up with :mod:`difflib` the
way the reference's ``crds rowdiff`` does, so both report the same rows:

- **rows** (default): the rows of the compared columns become one text line
  each; the report lists the ranges of rows removed from A, added to B and
  replaced, then a unified diff of the lines.  As in the reference, a table
  whose lines are at least 99 % similar is reported as having no differences.
- **modes** (``mode_fields``): the named columns are keys.  Both tables are
  sorted on them and compared with every combination of the key values seen in
  either table and with each other (missing, duplicated and changed modes);
  rows of the modes found in both are then compared on the other columns.

Both files must have the same number of HDUs of the same types; otherwise
the report is one ``rowdiff:`` line and no tables are compared.
Values are printed plainly (``'yes', 2988, -2779.0352``), not as numpy reprs.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from ..errors import CrdsError

__all__ = ["RowDiffError", "TableRowDiff", "TableModeDiff", "RowDiffReport", "row_diff", "render_cell"]

#: lines at least this similar (difflib ratio) count as no row difference, as in the reference
SIMILARITY_LIMIT = 0.99


class RowDiffError(CrdsError):
    """A file cannot be row-differenced (unreadable, not FITS, conflicting column switches)."""


def render_cell(value: object) -> str:
    """One table value as text: strings quoted, numbers as numpy prints them, arrays in full."""
    if isinstance(value, np.ndarray):
        return np.array2string(value, separator=", ", threshold=sys.maxsize)
    if isinstance(value, (bytes, np.bytes_)):
        return repr(bytes(value).decode("ascii", "replace"))
    if isinstance(value, (str, np.str_)):
        return repr(str(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, np.integer):
        return str(int(value))
    if isinstance(value, np.floating):
        return str(value)  # shortest repr of its own precision: float32 6357.9727, not 6357.97265625
    return repr(value)


def _row_lines(table) -> list[str]:
    """Each row of an astropy Table as one line of comma-separated values."""
    return [", ".join(render_cell(value) for value in row) for row in table]


@dataclass(slots=True)
class TableRowDiff:
    """Row differences of one table HDU: difflib opcodes (without ``equal``) and unified-diff lines."""

    hdu: int
    opcodes: list[tuple[str, int, int, int, int]]
    unified: list[str]

    def summary(self) -> list[str]:
        """One line per changed block; row ranges are inclusive, counted from 0."""
        lines = []
        for op, a0, a1, b0, b1 in self.opcodes:
            if op == "replace":
                lines.append(f"a rows {a0}-{a1 - 1} differ from b rows {b0}-{b1 - 1}")
            elif op == "delete":
                lines.append(f"Remove from a rows {a0}-{a1 - 1}")
            elif op == "insert":
                lines.append(f"Add to b rows {b0}-{b1 - 1}")
        return lines

    def rows(self) -> dict[str, list[int]]:
        """``{"removed": [...], "added": [...], "changed_a": [...], "changed_b": [...]}`` row numbers."""
        out: dict[str, list[int]] = {"removed": [], "added": [], "changed_a": [], "changed_b": []}
        for op, a0, a1, b0, b1 in self.opcodes:
            if op == "replace":
                out["changed_a"].extend(range(a0, a1))
                out["changed_b"].extend(range(b0, b1))
            elif op == "delete":
                out["removed"].extend(range(a0, a1))
            elif op == "insert":
                out["added"].extend(range(b0, b1))
        return out


@dataclass(slots=True)
class _ModePair:
    """Two tables lined up by difflib: rows only in the first, only in the second, and replaced."""

    first: object  # astropy Table
    second: object
    opcodes: list

    def parts(self) -> tuple:
        missing = np.zeros(len(self.first), dtype=bool)
        added = np.zeros(len(self.second), dtype=bool)
        changed_a = np.zeros(len(self.first), dtype=bool)
        changed_b = np.zeros(len(self.second), dtype=bool)
        for op, a0, a1, b0, b1 in self.opcodes:
            if op == "delete":
                missing[a0:a1] = True
            elif op == "insert":
                added[b0:b1] = True
            elif op == "replace":
                changed_a[a0:a1] = True
                changed_b[b0:b1] = True
        return (self.first[missing], self.second[added], self.first[changed_a], self.second[changed_b])

    def text(self) -> str:
        missing, added, changed_a, changed_b = self.parts()
        out = ""
        if len(missing):
            out += f"\n        Missing Modes:\n{missing}\n"
        if len(added):
            out += f"\n        Duplicated Modes:\n{added}\n"
        if len(changed_a):
            out += f"\n        Changed Modes:\n        From Table A:\n{changed_a}\n\n        To Table B:\n{changed_b}\n"
        return out


@dataclass(slots=True)
class TableModeDiff:
    """Mode differences of one table HDU (``mode_fields``)."""

    hdu: int
    modes_vs_a: _ModePair
    modes_vs_b: _ModePair
    a_vs_b: _ModePair
    common: _ModePair | None

    def text(self) -> str:
        parts = [f"Difference for HDU extension #{self.hdu}\n"]
        for pair, title, same in (
            (self.modes_vs_a, "Table A changes", "Table A has all modes."),
            (self.modes_vs_b, "Table B changes", "Table B has all modes."),
            (self.a_vs_b, "Table A to B changes", "Table A and B share all modes."),
        ):
            body = pair.text()
            parts.append(f"\n    {title}:\n{body}" if body else f"\n    {same}\n")
        body = self.common.text() if self.common is not None else ""
        if body:
            parts.append("\n    Common mode changes:\n"
                         "    If there were duplicate modes, the following may be nonsensical.\n" + body)
        else:
            parts.append("\n    All common modes are equivalent.\n")
        return "".join(parts)


@dataclass(slots=True)
class RowDiffReport:
    """The row differences of every table HDU of two files, and how to print them."""

    path_a: str
    path_b: str
    tables: list[int] = field(default_factory=list)  # HDU indices of the tables compared
    rows: list[TableRowDiff] = field(default_factory=list)
    modes: list[TableModeDiff] = field(default_factory=list)
    problem: str | None = None  # the files' HDUs do not correspond
    mode_fields: tuple[str, ...] = ()

    @property
    def different(self) -> bool:
        """True when any table has a row (or mode) difference, or the files cannot be compared."""
        if self.problem:
            return True
        if self.mode_fields:
            return any(m.a_vs_b.opcodes and any(op[0] != "equal" for op in m.a_vs_b.opcodes)
                       or (m.common is not None and any(op[0] != "equal" for op in m.common.opcodes))
                       for m in self.modes)
        return bool(self.rows)

    def text(self) -> str:
        """The report as the reference's ``crds rowdiff`` lays it out."""
        if self.problem is not None:
            return f"rowdiff: {self.problem}\n"
        if not self.tables:
            return ""
        if self.mode_fields:
            return "".join(m.text() for m in self.modes)
        if not self.rows:
            return f"    HDU extension #{self.tables[-1]} contains no differences"
        out = []
        for diff in self.rows:
            out.append(f"Row differences for HDU extension #{diff.hdu}\n\n    Summary:\n")
            out.extend(f"        {line}\n" for line in diff.summary())
            out.append("\n    Row difference, unified diff format:\n")
            out.extend(f"        {line}\n" for line in diff.unified)
        return "".join(out)


def _open(path: str | Path):
    from astropy.io import fits

    try:
        return fits.open(path, memmap=False)
    except FileNotFoundError:
        raise RowDiffError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RowDiffError(f"{path}: is a directory") from None
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RowDiffError(f"{path}: not a readable FITS file: {first}") from None


def _correspondence_problem(hdul_a, hdul_b) -> str | None:
    if len(hdul_a) != len(hdul_b):
        return f"HDUs have different lengths: FITS A = {len(hdul_a)}, FITS B = {len(hdul_b)}"
    for index, (hdu_a, hdu_b) in enumerate(zip(hdul_a, hdul_b)):
        xa, xb = hdu_a.header.get("XTENSION"), hdu_b.header.get("XTENSION")
        if xa != xb:
            return f"Extension {index} different: FITS A = {xa}, FITS B = {xb}"
    return None


def _lowered_table(data):
    from astropy.table import Table

    table = Table(data)
    table.rename_columns(table.colnames, [name.lower() for name in table.colnames])
    return table


def _compared_fields(data_a, data_diff, fields: list[str]) -> list[str]:
    """The columns to compare: ``fields`` in their order, else A's columns in file order."""
    common = data_diff.common_column_names
    if fields:
        return [name for name in fields if name in common]
    return [name.lower() for name in data_a.columns.names if name.lower() in common]


def _rows_of_table(hdu: int, data_a, data_b, fields, ignore_fields) -> TableRowDiff | None:
    from astropy.io.fits import TableDataDiff

    data_diff = TableDataDiff(data_a, data_b, ignore_fields=ignore_fields, numdiffs=1)
    if not data_diff.diff_rows and not data_diff.diff_values:
        return None
    names = _compared_fields(data_a, data_diff, fields)
    if not names:
        return None
    lines_a = _row_lines(_lowered_table(data_a)[names])
    lines_b = _row_lines(_lowered_table(data_b)[names])
    matcher = difflib.SequenceMatcher(None, lines_a, lines_b)
    if matcher.ratio() >= SIMILARITY_LIMIT:
        return None
    opcodes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not opcodes:
        return None
    unified = list(difflib.unified_diff(lines_a, lines_b, "Table A", "Table B"))
    return TableRowDiff(hdu, opcodes, unified)


def _modes_of_table(hdu: int, data_a, data_b, fields, ignore_fields, mode_fields) -> TableModeDiff:
    from astropy.io.fits import TableDataDiff
    from astropy.table import Table

    data_diff = TableDataDiff(data_a, data_b, ignore_fields=ignore_fields, numdiffs=1)
    if not set(mode_fields) <= data_diff.common_column_names:
        raise RowDiffError(f"HDU {hdu}: mode columns {', '.join(mode_fields)} are not in both tables")
    names = _compared_fields(data_a, data_diff, fields)
    table_a, table_b = _lowered_table(data_a), _lowered_table(data_b)
    table_a.sort(list(mode_fields))
    table_b.sort(list(mode_fields))
    modes_a, modes_b = table_a[list(mode_fields)], table_b[list(mode_fields)]
    values = [sorted(set(modes_a[name]) | set(modes_b[name])) for name in mode_fields]
    every_mode = Table(np.array(list(product(*values)), dtype=modes_a.dtype))
    lines_a, lines_b, lines_all = _row_lines(modes_a), _row_lines(modes_b), _row_lines(every_mode)

    def pair(first, second, first_lines, second_lines) -> tuple[_ModePair, list]:
        matcher = difflib.SequenceMatcher(None, first_lines, second_lines)
        return _ModePair(first, second, matcher.get_opcodes()), matcher.get_matching_blocks()

    modes_vs_a, _ = pair(every_mode, modes_a, lines_all, lines_a)
    modes_vs_b, _ = pair(every_mode, modes_b, lines_all, lines_b)
    a_vs_b, blocks = pair(modes_a, modes_b, lines_a, lines_b)
    common = None
    if (data_diff.diff_rows or data_diff.diff_values) and len(blocks) > 1:
        wanted = set(mode_fields) | set(names)
        columns = [name for name in table_a.colnames if name in wanted]
        rows_a = [i for a0, _b0, n in blocks for i in range(a0, a0 + n)]
        rows_b = [i for _a0, b0, n in blocks for i in range(b0, b0 + n)]
        matched_a, matched_b = table_a[columns][rows_a], table_b[columns][rows_b]
        common, _ = pair(matched_a, matched_b, _row_lines(matched_a), _row_lines(matched_b))
    return TableModeDiff(hdu, modes_vs_a, modes_vs_b, a_vs_b, common)


def row_diff(path_a: str | Path, path_b: str | Path, *, fields=(), ignore_fields=(),
             mode_fields=()) -> RowDiffReport:
    """Row (or mode) differences between the table HDUs of two FITS files.

    Parameters
    ----------
    path_a, path_b : str or Path
        The FITS files ("Table A" and "Table B").
    fields : sequence of str
        Compare only these columns (any case), in this order.
    ignore_fields : sequence of str
        Compare every column but these.  Not together with ``fields``.
    mode_fields : sequence of str
        Key columns: compare the tables as sets of modes instead of row by row.

    Returns
    -------
    RowDiffReport

    Raises
    ------
    RowDiffError
        A file is missing or not FITS, both ``fields`` and ``ignore_fields`` are
        given, or a mode column is not in both tables.
    """
    from astropy.io import fits

    fields = [name.lower() for name in fields]
    ignore_fields = [name.lower() for name in ignore_fields]
    mode_fields = tuple(name.lower() for name in mode_fields)
    if fields and ignore_fields:
        raise RowDiffError("--fields and --ignore-fields cannot be used together")
    report = RowDiffReport(str(path_a), str(path_b), mode_fields=mode_fields)
    with _open(path_a) as hdul_a, _open(path_b) as hdul_b:
        report.problem = _correspondence_problem(hdul_a, hdul_b)
        if report.problem is not None:
            return report
        for index, (hdu_a, hdu_b) in enumerate(zip(hdul_a, hdul_b)):
            if not isinstance(hdu_a, (fits.BinTableHDU, fits.TableHDU)):
                continue
            report.tables.append(index)
            try:
                data_a, data_b = hdu_a.data, hdu_b.data
                if mode_fields:
                    report.modes.append(_modes_of_table(index, data_a, data_b, fields, ignore_fields,
                                                        mode_fields))
                else:
                    diff = _rows_of_table(index, data_a, data_b, fields, ignore_fields)
                    if diff is not None:
                        report.rows.append(diff)
            except RowDiffError:
                raise
            except (ValueError, TypeError, KeyError, OSError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise RowDiffError(f"{path_a} vs {path_b}: HDU {index} cannot be compared: {first}") from None
    return report
