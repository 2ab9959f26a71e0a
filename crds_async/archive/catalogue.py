"""An embedded SQLite catalogue of dataset parameters: what a CRDS server's archive answers.

One row per dataset: its compound id as the archive spells it (``"<PRODUCT>:<MEMBER>"``,
upper case, e.g. ``"I04BZQ010:I04BZQ0VQ"``), its instrument, its observation time as the
reference's bestrefs reads it (``"DATE-OBS TIME-OBS"``, the ``--datasets-since`` key) and
its parameters as JSON text.  Indexes make an instrument's id list (optionally since a date)
and a page of ids index lookups.  The database is in WAL mode, so a server may read it while
a build adds to it.

Builds are incremental: a dataset file or a dump already catalogued with the same size and
mtime is skipped.  A served catalogue is opened read-only (``file:...?mode=ro``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CrdsError, HeaderError
from ..headers import read_header
from ..instruments import dataset_header, header_instrument

from ..sources.dumps import iter_dump

__all__ = ["DatasetCatalogue", "BuildCounts", "dataset_id_of", "exposure_time", "normalize_id", "MIN_DATE"]

#: the reference's date for a dataset whose header names no observation time
MIN_DATE = "1900-01-01 00:00:00"

#: the reference's (date, time) keyword pairs for a dataset's exposure time, in its order
_DATE_TIME_KEYS = (("DATE-OBS", "TIME-OBS"), ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME"),
                   ("META_OBSERVATION_DATE", "META_OBSERVATION_TIME"), ("META.EXPOSURE.START_TIME",),
                   ("META_EXPOSURE_START_TIME",), ("ROMAN.META.EXPOSURE.START_TIME",))

#: keywords never worth serving (free text, often kilobytes)
_DROPPED_KEYS = frozenset(("COMMENT", "HISTORY", ""))

_NO_ASSOCIATION = frozenset(("", "NONE", "N/A", "UNDEFINED"))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    member TEXT NOT NULL,
    instrument TEXT NOT NULL,
    date TEXT NOT NULL,
    params TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS datasets_by_instrument ON datasets (instrument, id, date);
CREATE INDEX IF NOT EXISTS datasets_by_member ON datasets (member);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    dataset TEXT,
    error TEXT
) WITHOUT ROWID;
"""


def _archive_id_part(part: str) -> str:
    """``JW..._00001_NRS1`` -> ``JW..._00001.NRS1`` (the archive's JWST form); others unchanged."""
    if "_" in part and "." not in part:
        fileset, _, detector = part.rpartition("_")
        return f"{fileset}.{detector}"
    return part


def normalize_id(dataset: str) -> str:
    """The reference's form of a command-line dataset id: upper case, ``X`` -> ``X:X``."""
    dataset = dataset.upper()
    return dataset if ":" in dataset else f"{dataset}:{dataset}"


def exposure_time(params: Mapping[str, object]) -> str:
    """The observation time the reference's bestrefs filters ``--datasets-since`` on."""
    for keys in _DATE_TIME_KEYS:
        try:
            return " ".join(str(params[k]) for k in keys)
        except KeyError:
            continue
    return MIN_DATE


def dataset_id_of(header: Mapping[str, str], path: str | os.PathLike) -> str:
    """The archive's compound id of a dataset file.

    HST: ``<ASN_ID>:<ROOTNAME>`` (``<ROOTNAME>:<ROOTNAME>`` when not associated), the
    root name from the file name's first ``_`` field when the header has none.  Other
    observatories: the file name without its last ``_`` field, in the archive's
    ``<fileset>.<DETECTOR>`` form (``jw..._00004_nrs1_uncal.fits`` ->
    ``JW..._00004.NRS1:JW..._00004.NRS1``).
    """
    name = os.path.basename(os.fspath(path)).split(".")[0]
    root = header.get("ROOTNAME")
    if root is None:
        fields = name.split("_")
        if name.lower().startswith("jw") and len(fields) > 2:
            fields = fields[:-1] if len(fields) > 4 else fields
            root = "_".join(fields[:-1]) + "." + fields[-1]
        else:
            root = fields[0]
    root = str(root).strip().upper()
    product = str(header.get("ASN_ID", "")).strip().upper()
    return f"{product if product not in _NO_ASSOCIATION else root}:{root}"


@dataclass
class BuildCounts:
    """What one build did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    datasets: int = 0

    def line(self) -> str:
        return (f"{self.datasets} datasets: {self.added} added, {self.updated} updated, "
                f"{self.unchanged} sources unchanged, {len(self.errors)} errors")


class DatasetCatalogue:
    """A dataset catalogue database.

    Parameters
    ----------
    path : str or Path
        The SQLite file.
    readonly : bool
        Open with ``mode=ro`` (a server never writes); the file must exist.
    """

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.is_file():
                    raise CrdsError(f"{self.path}: no such dataset catalogue")
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                try:
                    self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                    self._db.execute("SELECT 1 FROM datasets LIMIT 1")
                except sqlite3.OperationalError:
                    # a WAL database on read-only storage: no -shm can be made beside it
                    self._db = sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)
                    self._db.execute("SELECT 1 FROM datasets LIMIT 1")
            else:
                self._db = sqlite3.connect(self.path, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise CrdsError(f"{self.path}: not a dataset catalogue ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DatasetCatalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def count(self) -> int:
        return self._db.execute("SELECT count(*) FROM datasets").fetchone()[0]

    def instruments(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT instrument FROM datasets ORDER BY instrument")]

    def ids(self, instrument: str, since: str | None = None) -> list[str]:
        """Sorted ids of ``instrument``'s datasets observed at or after ``since``."""
        if since:
            rows = self._db.execute("SELECT id FROM datasets WHERE instrument = ? AND date >= ? ORDER BY id",
                                    (instrument.upper(), since))
        else:
            rows = self._db.execute("SELECT id FROM datasets WHERE instrument = ? ORDER BY id",
                                    (instrument.upper(),))
        return [r[0] for r in rows]

    def params_json(self, ids: Iterable[str], since: str | None = None) -> dict[str, str]:
        """``{id: parameters as JSON text}`` for ``ids``; an unknown id is absent.

        A one-part id ``X`` stands for every member of product ``X``, or for the dataset
        whose member is ``X``, as the archive expands it.  JWST ids may be given in the
        common ``<fileset>_<detector>`` form.
        """
        since = since or ""
        whole, parts = [], []
        for dataset in ids:
            dataset = ":".join(_archive_id_part(p) for p in str(dataset).upper().split(":"))
            (whole if ":" in dataset else parts).append(dataset)
        # one statement for a whole page of compound ids
        found = dict(self._db.execute(
            "SELECT id, params FROM datasets WHERE id IN (SELECT value FROM json_each(?)) AND date >= ?",
            (json.dumps(whole), since)))
        for dataset in parts:
            found.update(self._db.execute(
                "SELECT id, params FROM datasets WHERE ((id >= ? AND id < ?) OR member = ?) AND date >= ? "
                "ORDER BY id", (dataset + ":", dataset + ";", dataset, since)))
        return found

    def headers_json(self, ids: Iterable[str], since: str | None = None) -> str:
        """:meth:`params_json` as one JSON object text ``{"id": {...}, ...}``, nothing re-encoded."""
        dumps = json.dumps
        return "{" + ",".join(f"{dumps(k)}:{v}" for k, v in self.params_json(ids, since).items()) + "}"

    def headers(self, ids: Iterable[str], since: str | None = None) -> dict[str, dict]:
        """``{id: parameters}`` for ``ids`` (see :meth:`params_json`)."""
        return {k: json.loads(v) for k, v in self.params_json(ids, since).items()}

    # ------------------------------------------------------------------ building
    def _known(self, path: str) -> tuple[int, int, str | None, str | None]:
        """(size, mtime_ns, dataset id, error) recorded for a source, or (-1, -1, None, None)."""
        row = self._db.execute("SELECT size, mtime_ns, dataset, error FROM sources WHERE path = ?",
                               (path,)).fetchone()
        return tuple(row) if row else (-1, -1, None, None)

    def _put(self, counts: BuildCounts, dataset: str, params: Mapping[str, object]) -> None:
        dataset = normalize_id(dataset)
        clean = {k.upper(): v for k, v in params.items()}
        for key in _DROPPED_KEYS.intersection(clean):
            del clean[key]
        instrument = header_instrument(clean)
        if instrument is None:
            raise CrdsError("no instrument keyword")
        row = (dataset.split(":")[-1], instrument, exposure_time(clean),
               json.dumps(clean, separators=(",", ":"), default=str))
        if self._db.execute("INSERT OR IGNORE INTO datasets VALUES (?, ?, ?, ?, ?)", (dataset, *row)).rowcount:
            counts.added += 1
        else:
            self._db.execute("UPDATE datasets SET member = ?, instrument = ?, date = ?, params = ? WHERE id = ?",
                             (*row, dataset))
            counts.updated += 1

    def add_files(self, paths: Iterable[str | os.PathLike], counts: BuildCounts | None = None) -> BuildCounts:
        """Catalogue dataset files (each read unless known with the same size and mtime)."""
        counts = counts or BuildCounts()
        with self._db:
            for path in paths:
                path = os.path.abspath(os.fspath(path))
                try:
                    st = os.stat(path)
                except OSError as exc:
                    counts.errors.append(f"{path}: {exc.strerror or exc}")
                    continue
                size, mtime_ns, before, error = self._known(path)
                if (size, mtime_ns) == (st.st_size, st.st_mtime_ns):
                    counts.unchanged += 1
                    if error:  # still broken: reported again, not read again
                        counts.errors.append(error)
                    continue
                dataset, error = None, None
                try:
                    header = dataset_header(read_header(path), "ASDF" if path.lower().endswith(".asdf") else "FITS")
                    dataset = dataset_id_of(header, path)
                    self._put(counts, dataset, header)
                except HeaderError as exc:
                    error = str(exc)
                except CrdsError as exc:
                    error = f"{path}: {exc}"
                if error:
                    counts.errors.append(error)
                if before is not None and before != dataset:  # the file now names another dataset, or none
                    self._db.execute("DELETE FROM datasets WHERE id = ?", (before,))
                self._db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
                                 (path, st.st_size, st.st_mtime_ns, dataset, error))
        counts.datasets = self.count()
        return counts

    def add_dump(self, path: str | os.PathLike, counts: BuildCounts | None = None) -> BuildCounts:
        """Catalogue a parameter dump (skipped when known with the same size and mtime).

        A dump is a JSON object ``{id: {KEY: value}}``, JSON lines of such objects, or any
        other form :func:`crds_async.sources.dumps.iter_dump` reads.  A dump that cannot be
        read raises its ``DumpError`` and adds nothing.
        """
        counts = counts or BuildCounts()
        path = os.path.abspath(os.fspath(path))
        try:
            st = os.stat(path)
        except OSError as exc:
            counts.errors.append(f"{path}: {exc.strerror or exc}")
            return counts
        if self._known(path)[:2] == (st.st_size, st.st_mtime_ns):
            counts.unchanged += 1
            return counts
        with self._db:
            for dataset, params in iter_dump(path):
                if not isinstance(params, dict):  # that dataset's error, naming the file and place
                    counts.errors.append(str(params))
                    continue
                try:
                    self._put(counts, str(dataset), params)
                except CrdsError as exc:
                    counts.errors.append(f"{path}: {dataset}: {exc}")
            self._db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?)",
                             (path, st.st_size, st.st_mtime_ns, None, None))
        counts.datasets = self.count()
        return counts
