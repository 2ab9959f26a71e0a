"""The batch journal (engine.journal): exact round trips, torn and damaged records, other runs
and other inputs refused; run_batch replays what a journal holds instead of evaluating it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from crds_async.config import config_from_env
from crds_async.engine import batch as batch_module
from crds_async.engine.batch import BatchSpec, run_batch
from crds_async.engine.journal import Journal, run_identity
from crds_async.engine.results import DatasetResult, answers_json
from crds_async.errors import ConfigError
from tests.conftest import CACHE, CORPUS

RUN = {"context": "hst_0729.pmap", "reftypes": None}


def _results(names):
    out = []
    for n, name in enumerate(names):
        if n % 3 == 2:
            out.append(DatasetResult(name, error=f"{name}: not FITS"))
            continue
        answers = {"biasfile": f"{name}_bia.fits", "flatfile": ("a_flt.fits", "b_flt.fits"),
                   "pctab": "NOT FOUND n/a", "x": 3, "y": 0.1, "z": None, "w": ["l", ("t",)]}
        result = DatasetResult(name, "wfc3", answers, old_answers={"biasfile": "old_bia.fits"},
                               compared=("biasfile",), problems=[f"{name}: pctab: bad"])
        if n % 2:
            result.answers_json = answers_json(answers)
        out.append(result)
    return out


def _journal(path, run=RUN) -> Journal:
    journal = Journal(path)
    journal.start(run)
    return journal


def _replay_all(journal, items):
    source = iter(items)
    got = []
    while (chunk := journal.replay(source)) is not None:
        got.append(chunk)
    return got, list(source)


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_chunks_come_back_exactly_and_the_items_left_are_the_batch_rest(tmp_path):
    path = tmp_path / "run.journal"
    items = [f"/data/d{i}_raw.fits" for i in range(7)]
    first, second = _results(items[:3]), _results(items[3:5])
    journal = _journal(path)
    assert journal.replay(iter(items)) is None  # a new journal: nothing to replay
    assert journal.append(items[:3], first) and journal.append(items[3:5], second)
    journal.close()
    assert len(_lines(path)) == 3  # header and one record per chunk

    again = _journal(path)
    chunks, rest = _replay_all(again, items)
    assert chunks == [first, second]  # tuples stay tuples, answers_json rendered again, errors kept
    assert type(chunks[0][0].answers["flatfile"]) is tuple and chunks[0][1].answers_json == first[1].answers_json
    assert rest == items[5:]
    assert (again.replayed, again.recorded) == (5, 0)
    assert again.append(items[5:], _results(items[5:]))  # the run goes on after the replay
    again.remove()
    assert not path.exists()


def test_a_torn_last_record_is_dropped_and_its_datasets_evaluated_again(tmp_path):
    path = tmp_path / "run.journal"
    items = [f"d{i}" for i in range(6)]
    journal = _journal(path)
    journal.append(items[:2], _results(items[:2]))
    journal.append(items[2:], _results(items[2:]))
    journal.close()
    whole = path.read_bytes()
    last = _lines(path)[-1]
    path.write_bytes(whole[:-len(last) // 2])  # kill -9 in the middle of the last write

    again = _journal(path)
    chunks, rest = _replay_all(again, items)
    assert chunks == [_results(items[:2])] and rest == items[2:]
    assert path.read_bytes() == whole[:-len(last)]  # the torn tail is cut off before appending
    assert again.notes and "dropped" in again.notes[0]
    again.append(items[2:], _results(items[2:]))
    again.close()
    assert path.read_bytes() == whole  # recorded again, as it would have been


def test_a_record_failing_its_checksum_ends_the_replay_there(tmp_path):
    path = tmp_path / "run.journal"
    items = [f"d{i}" for i in range(9)]
    journal = _journal(path)
    for start in (0, 3, 6):
        journal.append(items[start:start + 3], _results(items[start:start + 3]))
    journal.close()
    lines = _lines(path)
    damaged = bytearray(lines[2])
    at = damaged.index(b"_bia.fits")
    damaged[at] = ord("X")  # one changed byte in the second record, its line still whole
    path.write_bytes(b"".join([lines[0], lines[1], bytes(damaged), lines[3]]))

    again = _journal(path)
    chunks, rest = _replay_all(again, items)
    assert chunks == [_results(items[:3])] and rest == items[3:]  # nothing after the damage is trusted
    assert path.read_bytes() == lines[0] + lines[1]
    assert again.dropped == len(lines[2]) + len(lines[3])
    again.close()


def test_a_journal_of_another_run_is_refused_and_left_as_it_is(tmp_path):
    path = tmp_path / "run.journal"
    journal = _journal(path)
    journal.append(["d0"], _results(["d0"]))
    journal.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        _journal(path, {**RUN, "context": "hst_0730.pmap"})
    message = str(caught.value)
    assert message.startswith(f"{path}: journal of a different run (context differ)") and "\n" not in message
    assert path.read_bytes() == before
    _journal(path).close()  # the same run still opens it (the refusal released the lock)


def test_other_inputs_are_refused(tmp_path):
    path = tmp_path / "run.journal"
    journal = _journal(path)
    journal.append(["d0", "d1"], _results(["d0", "d1"]))
    journal.append(["d2"], _results(["d2"]))
    journal.close()
    with pytest.raises(ConfigError, match=r"journal of different inputs \(datasets 3 to 3 differ"):
        _replay_all(_journal(path), ["d0", "d1", "other"])
    with pytest.raises(ConfigError, match="different inputs"):
        _replay_all(_journal(path), [("d0", {"INSTRUME": "WFC3"}), "d1", "d2"])  # an archive item is not a path
    with pytest.raises(ConfigError, match="different inputs"):
        _replay_all(_journal(path), ["d0"])  # fewer items than journaled


def test_a_file_that_is_not_a_journal_is_refused_and_kept(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"a.fits": {}}\n')
    journal = Journal(path)
    with pytest.raises(ConfigError, match=r"results.json: not a crds_async journal"):
        journal.start(RUN)
    journal.remove()  # what the CLI does at the end of a batch that did not use it
    assert path.read_text() == '{"a.fits": {}}\n'


def test_a_value_it_cannot_write_back_ends_the_journal_there(tmp_path):
    path = tmp_path / "run.journal"
    journal = _journal(path)
    assert journal.append(["d0"], _results(["d0"]))
    odd = DatasetResult("d1", "wfc3", {"biasfile": object()})
    assert not journal.append(["d1"], [odd])
    assert not journal.append(["d2"], _results(["d2"]))  # no hole in the record sequence
    journal.close()
    chunks, rest = _replay_all(_journal(path), ["d0", "d1", "d2"])
    assert len(chunks) == 1 and rest == ["d1", "d2"]


def test_a_second_process_is_refused_while_a_run_holds_the_journal(tmp_path):
    path = tmp_path / "run.journal"
    journal = _journal(path)
    try:
        code = ("import sys\nfrom crds_async.engine.journal import Journal\n"
                "try:\n    Journal(sys.argv[1]).start({'context': 'hst_0729.pmap', 'reftypes': None})\n"
                "except Exception as exc:\n    print(exc)\n")
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              timeout=60)
        assert proc.stdout.strip() == f"{path}: journal in use by another run"
    finally:
        journal.close()


# ---------------------------------------------------------------- with run_batch

SPEC = BatchSpec(cfg=config_from_env({"CRDS_PATH": str(CACHE)}), context="hst_0729.pmap", observatory="hst")


async def _collect(items, **kw):
    async with contextlib.aclosing(run_batch(items, SPEC, **kw)) as results:
        return [r async for r in results]


async def test_run_batch_replays_journaled_chunks_without_evaluating_them(tmp_path, monkeypatch):
    paths = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:100]]  # chunks of 32, 64, 4
    want = await _collect(paths, jobs=1)
    path = tmp_path / "run.journal"

    journal = Journal(path)
    got = []
    async with contextlib.aclosing(run_batch(paths, SPEC, jobs=1, journal=journal, max_chunk=64)) as results:
        async for result in results:
            got.append(result)
            if len(got) == 40:
                break  # an interruption within the second chunk's results
    journal.close()
    assert journal.recorded == 96  # the two finished chunks were journaled before they were handed on

    evaluated = []
    real = batch_module.evaluate_paths
    monkeypatch.setattr(batch_module, "evaluate_paths",
                        lambda chunk, spec: evaluated.extend(chunk) or real(chunk, spec))
    journal = Journal(path)
    assert await _collect(paths, jobs=1, journal=journal, max_chunk=64) == want
    assert (journal.replayed, journal.recorded) == (96, 4)
    assert evaluated == paths[96:]  # the journaled datasets were not evaluated again
    journal.close()

    other = BatchSpec(cfg=SPEC.cfg, context=SPEC.context, observatory="hst", reftypes=("biasfile",))
    with pytest.raises(ConfigError, match=r"journal of a different run \(reftypes differ\)"):
        async with contextlib.aclosing(run_batch(paths, other, jobs=1, journal=Journal(path))) as results:
            [r async for r in results]
