"""Resumable batches: a journal of finished chunks (``crds-batch bestrefs --journal FILE``).

What it is
----------
A text file of lines ``<sha256 of the payload, hex> <payload: compact JSON>``:

- line 1, the header: ``{"format": "crds_async-journal", "version": 1, "run": {...}}``;
  ``run`` identifies the batch: the context names, observatory, types, options of the
  :class:`~.batch.BatchSpec` that change results, and crds_async's version;
- then one record per finished chunk, in input order: ``{"n": items, "items": digest,
  "results": [...]}``.  ``items`` is a running sha256 over every item of the batch so far
  (a path, or an archive dataset's id and a digest of its parameters), so a record
  vouches for the whole input prefix up to its end, not just its own chunk.  Results are
  :class:`~.results.DatasetResult` fields in JSON with tuples tagged (``{"t": [...]}``) and
  mappings tagged (``{"d": {...}}``), so they come back exactly (never pickle).

How it is written
-----------------
The header is created with :func:`crds_async.atomic.atomic_write` (a journal never exists
half-made); records are appended (``O_APPEND``), one ``write`` each, then ``fsync``\\ ed
before the chunk's results are handed on.  Appending is the one write of this project
that is not a temp file and a rename: that is the point of a journal.  The file is held
under an exclusive lock (``lockf``) while a batch uses it: a second run on it is refused.

How it is read back
-------------------
A rerun with the same journal checks the header (a different run is refused with one
line naming the file and what differs: :class:`~crds_async.errors.ConfigError`, exit 2),
then replays records: each takes its ``n`` items from the batch's input, checks the running
digest (a changed input is refused the same way) and hands on the journaled results
without evaluating them.  The first record that is torn (``kill -9`` during its write: no
final newline) or fails its checksum or its JSON ends the replay; it and anything after it
are cut off and those datasets are evaluated again.  The batch then continues, appending.

What it does not do
-------------------
It does not hold outputs: output files are written whole at the end through a temp file
and a rename, so a rerun writes them again from replayed plus new results and they come
out byte for byte as an uninterrupted run's.  Side effects already done are redone
harmlessly: ``--update-bestrefs`` of a replayed dataset whose header already holds the
answers leaves the file untouched (:func:`crds_async.engine.campaign.update_dataset`).
A dataset file's content is not part of the identity (only its path): a dataset edited
between the two runs keeps its journaled answers.  Chunks are journaled as the batch
takes them in order: while it waits for input (a slow pipe), chunks that finished
meanwhile (at most its window, twice the workers) are journaled when the input comes.  A
``kill -9`` leaves the output's hidden temp file (``.<name>.part-...``) behind; the rerun's
output removes it (:func:`crds_async.atomic.atomic_output`).  The caller removes the journal when
the whole batch, outputs included, has finished (:meth:`Journal.remove`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator, Sequence

from ..atomic import atomic_write
from ..errors import ConfigError
from ..sources.deferred import Deferred
from .results import DatasetResult

__all__ = ["Journal", "run_identity", "item_key", "FORMAT", "VERSION"]

FORMAT = "crds_async-journal"
VERSION = 1

_SCALARS = (str, int, float, bool, type(None))


class _Unjournalable(Exception):
    """A result holds a value the journal cannot write back exactly."""


def _encode(value: object) -> object:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is tuple:
        return {"t": [_encode(v) for v in value]}
    if kind is list:
        return [_encode(v) for v in value]
    if kind is dict and all(type(k) is str for k in value):
        return {"d": {k: _encode(v) for k, v in value.items()}}
    raise _Unjournalable(kind.__name__)


def _decode(value: object) -> object:
    if type(value) is list:
        return [_decode(v) for v in value]
    if type(value) is dict:
        if "t" in value:
            return tuple(_decode(v) for v in value["t"])
        return {k: _decode(v) for k, v in value["d"].items()}
    return value


def _encode_answers(answers: dict | None) -> dict | None:
    if answers is None:
        return None
    return {k: (v if type(v) is str else _encode(v)) for k, v in answers.items()}  # the usual answer: a name


def _decode_answers(answers: dict | None) -> dict | None:
    if answers is None:
        return None
    return {k: (v if type(v) is str else _decode(v)) for k, v in answers.items()}


def _encode_result(result: DatasetResult) -> dict:
    out: dict[str, object] = {"p": result.path}
    if result.instrument is not None:
        out["i"] = result.instrument
    if result.answers is not None:
        if type(result.answers) is not dict:
            raise _Unjournalable(type(result.answers).__name__)
        out["a"] = _encode_answers(result.answers)
    if result.old_answers is not None:
        out["o"] = _encode_answers(result.old_answers)
    if result.compared:
        out["c"] = list(result.compared)
    if result.error is not None:
        out["e"] = result.error
    if result.problems:
        out["q"] = list(result.problems)
    if result.answers_json is not None:
        out["j"] = 1  # rendered again from the answers: the same text
    if result.observed is not None:
        out["d"] = str(result.observed)
    if type(result.path) is not str or not all(type(x) is str for x in (*result.compared, *result.problems)):
        raise _Unjournalable("non-text field")
    return out


def _decode_result(data: dict) -> DatasetResult:
    from .results import answers_json

    result = DatasetResult(data["p"], instrument=data.get("i"), answers=_decode_answers(data.get("a")),
                           old_answers=_decode_answers(data.get("o")), compared=tuple(data.get("c", ())),
                           error=data.get("e"), problems=list(data.get("q", ())), observed=data.get("d"))
    if data.get("j"):
        result.answers_json = answers_json(result.answers)
    return result


def item_key(item: object) -> bytes:
    """What identifies one batch item in the journal: a path, or an archive dataset's id
    and a digest of its parameters (a dump line's file and place, when they are not read
    here: like a dataset file's, its content is not part of the identity)."""
    if type(item) is tuple:
        name, parameters = item
        if isinstance(parameters, Deferred):  # not fetched in this process: its place is its identity
            return b"l\0" + str(name).encode("utf-8", "surrogateescape") + b"\0" + parameters.identity()
        text = json.dumps(parameters, sort_keys=True, default=repr, separators=(",", ":"))
        return b"d\0" + str(name).encode("utf-8", "surrogateescape") + b"\0" + \
            hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()
    return b"f\0" + os.fsencode(item)


def _chain(digest: bytes, items: Sequence) -> bytes:
    h = hashlib.sha256(digest)
    for item in items:
        key = item_key(item)
        h.update(len(key).to_bytes(8, "big"))
        h.update(key)
    return h.digest()


def run_identity(spec, **extra) -> dict:
    """The header's ``run`` of a batch: what in ``spec`` (a :class:`~.batch.BatchSpec`) decides
    its results, crds_async's version, and ``extra`` (JSON values)."""
    from .._version import __version__

    changed = spec.changed_types
    return {
        "context": spec.context, "observatory": spec.observatory,
        "reftypes": list(spec.reftypes) if spec.reftypes is not None else None,
        "old_context": spec.old_context,
        "changed_types": {k: list(v) for k, v in sorted(changed.items())} if changed is not None else None,
        "screen_types": spec.screen_types, "version": __version__, **extra,
    }


def _line(payload: dict) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode("ascii")
    return hashlib.sha256(body).hexdigest().encode("ascii") + b" " + body + b"\n"


def _parse(line: bytes) -> dict | None:
    """A line's payload, or None when it is torn or its checksum or JSON is wrong."""
    if not line.endswith(b"\n") or len(line) < 66 or line[64:65] != b" ":
        return None
    body = line[65:-1]
    if hashlib.sha256(body).hexdigest().encode("ascii") != line[:64]:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if type(payload) is dict else None


class Journal:
    """One batch's journal file.  Its methods block (file I/O, fsync): the batch calls
    them in a thread.

    Use: :meth:`start` with the run's identity; :meth:`replay` until it returns None (each
    call hands back one journaled chunk's results, its items taken from the batch's
    input); :meth:`append` per finished chunk; :meth:`close`; :meth:`remove` once the
    batch's outputs are complete.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.replayed = 0      # datasets handed on from the journal
        self.recorded = 0      # datasets evaluated and journaled by this run
        self.dropped = 0       # bytes of a torn or damaged tail cut off
        self.notes: list[str] = []
        self.started = False   # start() succeeded: the file is this run's
        self._file = None
        self._append_fd: int | None = None
        self._digest = b""
        self._good = 0         # offset just past the last good record
        self._replaying = False
        self._stopped = False  # a chunk could not be journaled: journaling ends there

    # ------------------------------------------------------------ opening

    def start(self, run: dict) -> None:
        """Open the journal for the run ``run`` (creating it when missing or empty).

        Raises
        ------
        ConfigError
            The file is not a journal, belongs to another run, or another run holds it.
        """
        import fcntl

        run = json.loads(json.dumps(run))  # as it reads back
        try:
            exists = os.path.getsize(self.path) > 0
        except FileNotFoundError:
            exists = False
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read the journal ({exc.strerror})") from None
        if not exists:
            atomic_write(self.path, _line({"format": FORMAT, "version": VERSION, "run": run}))
        try:
            self._file = open(self.path, "r+b")
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot open the journal ({exc.strerror})") from None
        try:
            # a POSIX lock: forked pool workers do not inherit it (a flock they would hold on
            # after a kill -9 of the batch, and refuse its rerun)
            fcntl.lockf(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.close()
            raise ConfigError(f"{self.path}: journal in use by another run") from None
        header = _parse(self._file.readline(1 << 20))
        if header is None or header.get("format") != FORMAT:
            self.close()
            raise ConfigError(f"{self.path}: not a crds_async journal (or its header is damaged); "
                              "remove it or name another file")
        if header.get("version") != VERSION or header.get("run") != run:
            old = header.get("run") if type(header.get("run")) is dict else {}
            differing = sorted(k for k in set(old) | set(run) if old.get(k) != run.get(k)) or ["version"]
            self.close()
            raise ConfigError(f"{self.path}: journal of a different run ({', '.join(differing)} differ); "
                              "remove it to start over, or rerun with the same arguments")
        self._good = self._file.tell()
        self._replaying = True
        self.started = True

    # ------------------------------------------------------------ replay

    def replay(self, items: Iterator) -> list[DatasetResult] | None:
        """The next journaled chunk's results, its items taken from ``items``; None at the end
        of the good records (the rest of the file is then cut off).

        Raises
        ------
        ConfigError
            The items differ from those the journal recorded.
        """
        if not self._replaying:
            return None
        line = self._file.readline()
        payload = _parse(line) if line else None
        results = None
        if payload is not None:
            try:
                count = payload["n"]
                results = [_decode_result(r) for r in payload["results"]]
                recorded = bytes.fromhex(payload["items"])
                if len(results) != count:
                    results = None
            except (KeyError, TypeError, ValueError, AttributeError):
                results = None
        if results is None:
            self._end_replay(bool(line))
            return None
        chunk = [item if type(item) is tuple else os.fspath(item) for item in itertools.islice(items, count)]
        digest = _chain(self._digest, chunk)
        if len(chunk) != count or digest != recorded:
            done = self.replayed
            raise ConfigError(f"{self.path}: journal of different inputs (datasets {done + 1} to "
                              f"{done + count} differ from those journaled); remove it to start over, "
                              "or rerun with the same inputs")
        self._digest = digest
        self._good = self._file.tell()
        self.replayed += count
        return results

    def _end_replay(self, damaged: bool) -> None:
        self._replaying = False
        size = os.fstat(self._file.fileno()).st_size
        if size > self._good:
            self.dropped = size - self._good
            if damaged:
                self.notes.append(f"{self.path}: a torn or damaged record and what followed it "
                                  f"({self.dropped} bytes) dropped; those datasets are evaluated again")
            self._file.truncate(self._good)
            os.fsync(self._file.fileno())
        # records go through a descriptor of their own, opened to append (the locked one reads)
        self._append_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))

    # ------------------------------------------------------------ recording

    def append(self, items: Sequence, results: Sequence[DatasetResult]) -> bool:
        """Record one finished chunk (``items`` and their results), durably; False when it
        could not be (a value the journal cannot write back exactly): the journal then ends
        there, and a rerun evaluates from that chunk on."""
        if self._replaying:
            self._end_replay(False)
        if self._stopped:
            return False
        try:
            encoded = [_encode_result(r) for r in results]
        except _Unjournalable as exc:
            self._stopped = True
            self.notes.append(f"{self.path}: journal ends at dataset {self.replayed + self.recorded + 1} "
                              f"(an answer of type {exc} cannot be journaled)")
            return False
        digest = _chain(self._digest, items)
        line = _line({"n": len(encoded), "items": digest.hex(), "results": encoded})
        written = os.write(self._append_fd, line)
        while written < len(line):  # a short write (a full disk raises instead)
            written += os.write(self._append_fd, line[written:])
        os.fsync(self._append_fd)
        self._digest = digest
        self._good += len(line)
        self.recorded += len(encoded)
        return True

    def close(self) -> None:
        """Release the file (and its lock)."""
        if self._append_fd is not None:
            fd, self._append_fd = self._append_fd, None
            os.close(fd)
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def remove(self) -> None:
        """Close and delete the journal (the batch is complete); a journal never started
        (the batch did not use it) is left alone."""
        self.close()
        if not self.started:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
