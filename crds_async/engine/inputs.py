"""Datasets that are not files: parameter dumps and a server's archive, as batch items.

A batch (:func:`crds_async.engine.batch.run_batch`) evaluates ``(dataset_id, parameters)``
items as well as file paths.  This module produces those items the way the reference's
``crds bestrefs`` chooses its datasets:

- :class:`Selection`: ``--only-ids``, ``--drop-ids`` and ``--datasets-since`` (one date, or
  one per instrument as ``--datasets-since auto`` computes it: :func:`auto_datasets_since`).
- :func:`dump_items`: ``--load-pickles`` dumps in sorted id order with bounded memory: one
  dump whose ids are already in order (the reference's ``--save-pickle`` JSON) is streamed
  twice (checked, then read); otherwise the datasets are spilled to a temporary SQLite table
  (several dumps merged there as the reference merges them) and read back in id order.
- :func:`iterate_async`: an async iterator of a server's pages turned into the synchronous
  iterator the batch consumes: one thread with its own event loop, a bounded queue of
  chunks between them (see :func:`crds_async.archive.remote.server_items`).
- :class:`DumpWriter`: ``--save-pickle``, fed as the datasets stream by.

Every item a dataset yields is ``(id, parameters)``, or ``(id, error)`` where ``error`` is a
:class:`~crds_async.errors.HeaderError` naming the dataset and the problem.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import CrdsError, HeaderError
from ..instruments import header_instrument
from ..rules.conditioning import condition_value
from ..rules.timestamps import format_date, parse_date
from ..sources.dump_spans import survey_dump
from ..sources.dumps import DatasetParametersError, DumpError, dump_ids, iter_dump, iter_dump_lines

__all__ = [
    "MIN_DATE", "MAX_DATE", "Selection", "exposure_time", "normalize_id", "since_date",
    "dump_items", "DumpItems", "iterate_async", "auto_datasets_since", "affected_instruments",
]

#: the reference's earliest and latest dates for ``--datasets-since``
MIN_DATE = "1900-01-01 00:00:00"
MAX_DATE = "9999-01-01 23:59:59"

#: the (date, time) keyword pairs the reference's ``get_exptime`` reads, in its order (its
#: one-keyword entries are plain strings there, so never match: left out here on purpose)
_DATE_TIME_PAIRS = (("DATE-OBS", "TIME-OBS"), ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME"),
                    ("META_OBSERVATION_DATE", "META_OBSERVATION_TIME"))


def exposure_time(params: Mapping[str, object]) -> str:
    """A dataset's observation time as the reference's bestrefs compares it with ``--datasets-since``.

    >>> exposure_time({"DATE-OBS": "2012-03-12", "TIME-OBS": "05:58:39"})
    '2012-03-12 05:58:39'
    >>> exposure_time({"DATE-OBS": "2012-03-12"})
    '1900-01-01 00:00:00'
    """
    for date, time in _DATE_TIME_PAIRS:
        if date in params and time in params:
            return f"{params[date]} {params[time]}"
    return MIN_DATE


def normalize_id(dataset: str) -> str:
    """A command-line id as the reference's ``--only-ids``/``--drop-ids`` read it: upper case, ``X`` -> ``X:X``."""
    dataset = dataset.upper()
    return dataset if ":" in dataset else f"{dataset}:{dataset}"


def since_date(text: str) -> str:
    """A ``--datasets-since`` value in the reference's form (``"auto"`` kept).

    Raises
    ------
    ValueError
        Not a date the reference reads.
    """
    if text.lower() == "auto":
        return "auto"
    return format_date(parse_date(text).isoformat(" ")) if "T" in text else format_date(text)


@dataclass(frozen=True)
class Selection:
    """Which datasets a batch takes, as the reference's bestrefs chooses them.

    ``since``: None (every date), one ``"YYYY-MM-DD HH:MM:SS"``, or ``{instrument: date}``
    (lower-case instruments; an instrument not named gets every date, as in the reference).
    """

    only_ids: frozenset[str] | None = None
    drop_ids: frozenset[str] = field(default_factory=frozenset)
    since: str | Mapping[str, str] | None = None

    @classmethod
    def of(cls, only_ids: Iterable[str] | None = None, drop_ids: Iterable[str] = (),
           since: str | Mapping[str, str] | None = None) -> "Selection":
        """Ids normalized as the reference normalizes them (an empty ``only_ids`` is none)."""
        only = frozenset(map(normalize_id, only_ids)) if only_ids else None
        return cls(only, frozenset(map(normalize_id, drop_ids or ())), since)

    def since_of(self, instrument: str | None) -> str | None:
        if isinstance(self.since, Mapping):
            return self.since.get((instrument or "").lower(), MIN_DATE)
        return self.since

    def wanted(self, dataset_id: str) -> bool:
        """Not dropped, and among ``only_ids`` when given."""
        return dataset_id not in self.drop_ids and (self.only_ids is None or dataset_id in self.only_ids)

    def recent(self, params: object) -> bool:
        """Observed on or after the cut-off of its instrument (errors pass: the batch reports them)."""
        if self.since is None or not isinstance(params, Mapping):
            return True
        try:
            instrument = header_instrument(params)
        except Exception:  # noqa: BLE001 - the batch reports a dataset without an instrument
            return True
        since = self.since_of(instrument)
        return since is None or exposure_time(params) >= since

    @property
    def takes_all(self) -> bool:
        """No id or date narrows it: every dataset is taken (and none need be tested)."""
        return self.only_ids is None and not self.drop_ids and self.since is None

    def filter(self, items: Iterable[tuple[str, object]]) -> Iterator[tuple[str, object]]:
        """The items this selection takes, in their order."""
        if self.takes_all:
            return iter(items)  # a million-dataset dump: no test per dataset
        return self._filtered(items)

    def _filtered(self, items: Iterable[tuple[str, object]]) -> Iterator[tuple[str, object]]:
        plain = self.since is None
        for item in items:
            if self.wanted(item[0]) and (plain or self.recent(item[1])):
                yield item


# ----------------------------------------------------------------------------- dumps

_ERROR_MARK = "\x00error:"


def _dump_order_total(path: str, selection: Selection) -> tuple[bool, int]:
    """One pass over a dump: (ids strictly ascending, datasets the selection takes).

    Without a date cut-off only the ids are read (:func:`crds_async.sources.dump_ids`)."""
    previous = None
    ordered, total = True, 0
    if selection.since is None:
        takes_all = selection.takes_all
        for dataset_id in dump_ids(path):
            if previous is not None and dataset_id <= previous:
                ordered = False
            previous = dataset_id
            total += 1 if takes_all else selection.wanted(dataset_id)
        return ordered, total
    for dataset_id, params in iter_dump(path):
        if previous is not None and dataset_id <= previous:
            ordered = False
        previous = dataset_id
        if selection.wanted(dataset_id) and selection.recent(params):
            total += 1
    return ordered, total


def _merged_value(value: object) -> str:
    text = condition_value(value)
    return "N/A" if text == "NOT FOUND N/A" else text


class _Spill:
    """Datasets merged in a temporary SQLite table, read back in id order."""

    def __init__(self, directory: str | None) -> None:
        fd, self.path = tempfile.mkstemp(prefix="crds_async-dumps-", suffix=".db", dir=directory)
        os.close(fd)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
                              "CREATE TABLE d (id TEXT PRIMARY KEY, params TEXT NOT NULL) WITHOUT ROWID;"
                              "CREATE TABLE s (id TEXT PRIMARY KEY, params TEXT NOT NULL) WITHOUT ROWID;")
        self.count = 0

    @staticmethod
    def _text(params: object) -> str:
        return _ERROR_MARK + str(params) if isinstance(params, BaseException) else json.dumps(params)

    def load(self, paths: Sequence[str], on_skipped: Callable[[CrdsError], None] | None,
             only_ids: Collection[str] | None) -> None:
        db = self.db
        first = True
        for path in paths:
            table = "d" if first else "s"
            db.execute("BEGIN")
            db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)",
                           ((i, self._text(p)) for i, p in iter_dump(path)
                            if first or only_ids is None or i in only_ids))
            db.execute("COMMIT")
            if first:
                first = db.execute("SELECT 1 FROM d LIMIT 1").fetchone() is None  # an empty dump
                continue
            db.execute("BEGIN")
            for dataset_id, text in db.execute("SELECT id, params FROM s ORDER BY id").fetchall():
                if text.startswith(_ERROR_MARK):
                    if on_skipped is not None:
                        on_skipped(DatasetParametersError(text[len(_ERROR_MARK):]))
                    continue
                row = db.execute("SELECT params FROM d WHERE id = ?", (dataset_id,)).fetchone()
                target = {} if row is None or row[0].startswith(_ERROR_MARK) else json.loads(row[0])
                for key, value in json.loads(text).items():
                    target[key.upper()] = _merged_value(value)
                db.execute("INSERT OR REPLACE INTO d VALUES (?, ?)", (dataset_id, json.dumps(target)))
            db.execute("DELETE FROM s")
            db.execute("COMMIT")
        self.count = db.execute("SELECT count(*) FROM d").fetchone()[0]

    def items(self, page: int = 2048) -> Iterator[tuple[str, object]]:
        last = ""
        first = True
        while True:
            rows = self.db.execute("SELECT id, params FROM d WHERE id > ? OR ? ORDER BY id LIMIT ?",
                                   (last, first, page)).fetchall()
            first = False
            if not rows:
                return
            for dataset_id, text in rows:
                if text.startswith(_ERROR_MARK):
                    yield dataset_id, DatasetParametersError(text[len(_ERROR_MARK):])
                else:
                    yield dataset_id, json.loads(text)
            last = rows[-1][0]

    def get(self, dataset_id: str) -> object | None:
        row = self.db.execute("SELECT params FROM d WHERE id = ?", (dataset_id,)).fetchone()
        if row is None:
            return None
        text = row[0]
        return DatasetParametersError(text[len(_ERROR_MARK):]) if text.startswith(_ERROR_MARK) else json.loads(text)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _only_in_order(only: Sequence[str], items: Iterable[tuple[str, object]], source: str,
                   ) -> Iterator[tuple[str, object]]:
    """For each of the sorted ``only`` ids, its item of the sorted ``items``, or its error."""
    it = iter(items)
    current = next(it, None)
    for wanted in only:
        while current is not None and current[0] < wanted:
            current = next(it, None)
        if current is not None and current[0] == wanted:
            yield current
        else:
            yield wanted, HeaderError(f"{wanted}: no parameters for this dataset in {source}")


@dataclass
class DumpItems:
    """The datasets of ``--load-pickles`` dumps, in id order: iterate it once."""

    paths: tuple[str, ...]
    selection: Selection
    #: datasets the batch gets (None until known)
    total: int | None
    _items: Iterator[tuple[str, object]]
    _spill: _Spill | None = None
    #: the same datasets as spans of the dump, for a batch whose workers list them
    #: (:mod:`crds_async.sources.dump_spans`); None when the batch must list them itself
    spans: list | None = None

    def __iter__(self) -> Iterator[tuple[str, object]]:
        try:
            yield from self._items
        finally:
            self.close()

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None


def dump_items(paths: Sequence, selection: Selection = Selection(), *,
               on_skipped: Callable[[CrdsError], None] | None = None,
               saved: Callable[[str, object], None] | None = None,
               spill_dir: str | None = None) -> DumpItems:
    """``(dataset_id, parameters or error)`` of dumps given worst to best, in sorted id order.

    The parameters of one one-dataset-a-line dump whose ids are in order come as
    :class:`~crds_async.sources.DumpLine` (decoded by whoever evaluates them,
    :func:`.datasets.dataset_parameters`) unless a date cut-off or ``saved`` needs them here.

    Parameters
    ----------
    paths : sequence of path-like
        Dump files (:func:`crds_async.sources.iter_dump` forms), merged as
        :func:`crds_async.sources.load_dumps` merges them.
    selection : Selection
        Which datasets the batch gets.  With ``only_ids``, each of them in order, and one
        that no dump holds comes as its error (the reference fails that dataset too).
    on_skipped : callable, optional
        Told of each bad dataset of a later dump (skipped).
    saved : callable, optional
        Called with every loaded dataset that ``only_ids`` allows, before the dropped ids and
        the date cut-off are applied: what the reference's ``--save-pickle`` writes.
    spill_dir : str, optional
        Directory of the temporary table when one is needed (default: the system's).

    Raises
    ------
    DumpError
        A dump cannot be read (before any item is produced).
    """
    names = tuple(os.fspath(p) for p in paths)
    spill = spans = None
    survey = None
    if len(names) == 1 and selection.takes_all and saved is None:
        survey = survey_dump(names[0])  # one pass at C speed, and the dump cut into spans
    if survey is not None:
        ordered, total = survey.ordered, survey.total
        spans = survey.spans if survey.ordered else None
    elif len(names) == 1:
        ordered, total = _dump_order_total(names[0], selection)
    else:
        ordered, total = False, None
    if ordered:
        # Nothing here needs the parameters (no date cut-off, no --save-pickle): a
        # one-dataset-a-line dump's lines go to the workers undecoded (DumpLine).
        lines = iter_dump_lines(names[0]) if selection.since is None and saved is None else None
        loaded: Iterable[tuple[str, object]] = _still_ordered(lines or iter_dump(names[0]), names[0])
    else:
        spill = _Spill(spill_dir)
        try:
            spill.load(names, on_skipped, selection.only_ids)
        except BaseException:
            spill.close()
            raise
        loaded = spill.items()
    if selection.only_ids is not None:
        total = len(selection.only_ids - selection.drop_ids) if selection.since is None else total
        loaded = _only_in_order(sorted(selection.only_ids), loaded, ", ".join(names))
    if saved is not None:
        loaded = _tap(loaded, saved)
    return DumpItems(names, selection, total, selection.filter(loaded), spill, spans)


def _still_ordered(items: Iterable[tuple[str, object]], name: str) -> Iterator[tuple[str, object]]:
    """The items of a dump checked in order while they stream (the first pass said so)."""
    previous = None
    for item in items:
        if previous is not None and item[0] <= previous:
            raise DumpError(f"{name}: dataset {item[0]!r} comes after {previous!r}: the dump changed while "
                            "it was read, or holds several datasets on a line after one alone on the first")
        previous = item[0]
        yield item


def _tap(items: Iterable[tuple[str, object]], saved: Callable[[str, object], None]) -> Iterator:
    for item in items:
        if not isinstance(item[1], HeaderError) or isinstance(item[1], DatasetParametersError):
            saved(*item)
        yield item


# ----------------------------------------------------------------------------- async bridge

_END = object()


def iterate_async(factory: Callable[[], AsyncIterator], *, chunk: int = 256, queued_chunks: int = 8) -> Iterator:
    """The items of an async iterator, produced in a thread with its own event loop.

    At most ``queued_chunks`` chunks of ``chunk`` items wait between the thread and the
    consumer (bounded memory); the producer's failure is raised in the consumer, where it
    stands in the sequence.  Closing the returned generator (or dropping it) stops the
    thread and cancels its pending work.
    """
    import asyncio

    handoff: queue.Queue = queue.Queue(maxsize=max(1, queued_chunks))
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    async def pump() -> None:
        batch: list = []
        try:
            async for item in factory():
                batch.append(item)
                if len(batch) >= chunk:
                    if not await asyncio.to_thread(put, batch):
                        return
                    batch = []
                if stop.is_set():
                    return
            if batch and not await asyncio.to_thread(put, batch):
                return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            if batch:
                put(batch)
            put(exc)

    thread = threading.Thread(target=lambda: asyncio.run(pump()), name="crds_async-inputs", daemon=True)

    def consume() -> Iterator:
        thread.start()
        try:
            while True:
                got = handoff.get()
                if got is _END:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield from got
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    handoff.get_nowait()
            thread.join(timeout=30)

    return consume()


# ----------------------------------------------------------------------------- context differences


def _imaps(store, pmap: str) -> dict[str, str]:
    selector = store.load(pmap).selector
    choices = getattr(selector, "choices", None)
    items = choices if choices is not None else dict(selector).items()
    return {str(k).lower(): str(v) for k, v in items}


def _earliest_times(store, imap: str) -> dict[str, str]:
    """Each reference of ``imap``'s rmaps -> the least observation time of its match cases
    (the reference's ``matches.get_minimum_exptime`` of one file), one walk per rmap."""
    from ..rules.inspect import mapping_kind, match_item, parkey_levels
    from ..rules.parse import SelectorCall

    earliest: dict[str, str] = {}
    for name in store.closure(imap):
        if mapping_kind(name) != "rmap":
            continue
        parsed = store.load(name)
        levels = parkey_levels(parsed.header)

        def walk(selector: object, depth: int, found: dict) -> None:
            if not isinstance(selector, SelectorCall):
                members = selector if isinstance(selector, tuple) else (selector,)
                when = exposure_time(found)
                for member in members:
                    if isinstance(member, str) and (member not in earliest or when < earliest[member]):
                        earliest[member] = when
                return
            parkeys = levels[depth] if depth < len(levels) else ()
            for key, value in selector.choices:
                walk(value, depth + 1, {**found, **dict(match_item(selector, parkeys, key))})

        walk(parsed.selector, 0, {})
    return earliest


def auto_datasets_since(store, old: str, new: str) -> dict[str, str]:
    """``--datasets-since auto``: per instrument, the earliest observation time the references
    added or deleted from ``old`` to ``new`` are selected for (the reference's computation:
    the least ``DATE-OBS TIME-OBS`` of their match cases).  Instruments without such
    references are absent (they then get every date).

    ``store`` is a :class:`crds_async.rules.inspect.MappingStore` holding both contexts.
    """
    since: dict[str, str] = {}
    old_imaps, new_imaps = _imaps(store, old), _imaps(store, new)
    for instrument, old_imap in old_imaps.items():
        new_imap = new_imaps.get(instrument)
        if new_imap is None:
            continue
        old_refs = set(store.reference_names(old_imap))
        new_refs = set(store.reference_names(new_imap))
        added, deleted = new_refs - old_refs, old_refs - new_refs
        times = []
        for imap, refs in ((new_imap, added), (old_imap, deleted)):
            if refs:
                earliest = _earliest_times(store, imap)
                times.extend(earliest.get(ref, MIN_DATE) for ref in refs)
        if times:
            since[instrument] = min(times)
    return since


#: differences the reference's ``--diffs-only`` ignores (its ``diff.BORING_VARS``, lower-cased)
_BORING = ("name", "derived_from", "sha1sum", "row_keys")


def affected_instruments(store, old: str, new: str) -> tuple[list[str], bool]:
    """``--diffs-only``: (the instruments whose rules differ from ``old`` to ``new``, sorted;
    whether a rules header changed or a file was deleted, when the reference's
    ``--datasets-since auto`` takes every date instead)."""
    from ..rules.diff import diff_mappings

    instruments: set[str] = set()
    every_date = False
    for difference in diff_mappings(old, new, store):
        if any(boring in difference.message for boring in _BORING):
            continue   # the reference's remove_boring()
        rmap_level = difference.filekind is not None or (
            difference.action in ("added", "deleted") and difference.message.rstrip("'").endswith(".rmap"))
        if not rmap_level:
            continue   # an imap added or replaced alone names no type (as in the reference)
        if difference.instrument:
            instruments.add(difference.instrument.lower())
        if "header" in difference.message.lower() or difference.action == "deleted":
            every_date = True
    return sorted(instruments), every_date
