"""A one-dataset-a-line dump cut into spans of whole lines, listed by the workers, not the batch.

A campaign that only reports (``engine.batch.run_tallied``) needs no dataset id in the
batch's own process, yet listing a million ids there (a ``DumpLine`` each, handed to the
workers) cost about 8 us a dataset: on a cluster, a tenth of a worker's time, spent by the
one process every worker waits on.  So the batch surveys the dump once, a block at a time
at C speed (each block's ids found by one regex, their order checked pairwise in C), and
cuts it into :class:`DumpSpan`: file, offset, size, first line number and dataset count.
A worker reads its span in one read and lists its datasets itself
(:meth:`DumpSpan.datasets`), each line's text already in hand.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from .dumps import DumpError, _blocks, _one_dataset_per_line, _open, _problem, _sniff, block_datasets, block_plain_ids

__all__ = ["DumpSpan", "DumpSurvey", "survey_dump", "expand_spans", "SPAN_BYTES"]

#: bytes a span holds, about: a few hundred archive parameter sets; a task takes several
SPAN_BYTES = 1 << 18


@dataclass(frozen=True, slots=True)
class DumpSpan:
    """Whole lines of a one-dataset-a-line dump: ``size`` bytes from ``offset``, the first
    of them line ``first_line``, holding ``count`` datasets (blank lines aside)."""

    path: str
    offset: int
    size: int
    first_line: int
    count: int

    def datasets(self) -> list[tuple[str, object]]:
        """``(dataset_id, parameters)`` of the span in file order.

        The span's lines are decoded as one JSON array (a third faster than a parse per
        line); each dataset is then checked as :meth:`DumpLine.parameters` checks it.  When
        one is not plain (a line that is not JSON, a dataset that is not an object of plain
        values, a blank line), every dataset of the span comes as its :class:`DumpLine`
        instead, whose ``parameters()`` raises that dataset's own error.

        Raises
        ------
        DumpError
            The file cannot be read, or is no longer what the survey found (the dump
            changed during the batch): the batch stops, as a changed dump stops it when
            its datasets are listed in the batch's process.
        """
        before = 1 if self.offset else 0  # the newline that ends the line before the span
        try:
            with open(self.path, "rb") as raw:
                raw.seek(self.offset - before)
                block = raw.read(self.size + before)
        except OSError as exc:
            raise DumpError(f"{self.path}: {exc.strerror or exc}") from None
        if len(block) != self.size + before or (before and block[:1] != b"\n"):
            raise self._changed("its lines are not where they were")
        block = block[before:]
        found = _decoded_whole(block)
        if found is None or len(found) != self.count:
            found = list(block_datasets(self.path, self.offset, self.first_line - 1, block, with_text=True))
        if len(found) != self.count:
            raise self._changed(f"{len(found)} datasets where there were {self.count}")
        ids = [dataset_id for dataset_id, _parameters in found]
        if not all(map(operator.lt, ids, islice(ids, 1, None))):
            raise self._changed("its ids are no longer in order")
        return found

    def _changed(self, what: str) -> DumpError:
        return DumpError(f"{self.path}:{self.first_line}: the dump changed during the batch ({what})")


@dataclass(frozen=True)
class DumpSurvey:
    """What one pass over a one-dataset-a-line dump found."""

    ordered: bool           # ids strictly ascending (what --save-pickle writes)
    total: int              # datasets
    spans: list[DumpSpan]


def survey_dump(path, span_bytes: int = SPAN_BYTES) -> DumpSurvey | None:
    """Survey a dump for :class:`DumpSpan` listing; None when it is not one dataset a line
    with plain (unescaped) ids, which the batch then lists itself.

    Raises
    ------
    DumpError
        The file cannot be opened or read.
    """
    name, raw = _open(path)
    spans: list[DumpSpan] = []
    ordered, total, number, previous = True, 0, 0, None
    with raw:
        if _sniff(name, raw) != "json" or not _one_dataset_per_line(raw):
            return None
        try:
            for base, block in _blocks(raw, span_bytes):
                ids, lines = block_plain_ids(block)
                if ids is None:
                    return None  # an id with escapes: decoded line by line elsewhere
                if ids and ordered:
                    ordered = ((previous is None or ids[0] > previous)
                               and all(map(operator.lt, ids, islice(ids, 1, None))))
                    previous = ids[-1]
                spans.append(DumpSpan(name, base, len(block), number + 1, len(ids)))
                total += len(ids)
                number += lines
        except OSError as exc:
            raise DumpError(f"{name}: {exc.strerror or exc}") from None
    return DumpSurvey(ordered, total, spans)


def _decoded_whole(block: bytes) -> list[tuple[str, dict]] | None:
    """The ``(dataset_id, parameters)`` of a block of whole lines decoded as one JSON array,
    or None when one line is not a plain one-dataset object (JSON strings hold no raw
    newline, so newlines separate the lines' values)."""
    try:
        values = json.loads(b"[" + block.rstrip(b"\r\n").replace(b"\n", b",") + b"]")
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
        return None
    found = []
    for value in values:
        if type(value) is not dict or len(value) != 1:
            return None
        ((dataset_id, parameters),) = value.items()
        if _problem(parameters) is not None:
            return None
        found.append((dataset_id, parameters))
    return found


def expand_spans(items: Iterable[object]) -> list:
    """``items`` with each :class:`DumpSpan` replaced by its datasets (:meth:`DumpSpan.datasets`)."""
    out: list = []
    for item in items:
        if type(item) is DumpSpan:
            out.extend(item.datasets())
        else:
            out.append(item)
    return out
