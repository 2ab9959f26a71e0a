"""One-dataset-a-line dumps read lazily (DumpLine): the same datasets, ids and errors as
the streaming parser gives, but each dataset's JSON decoded where it is evaluated."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from crds_async.sources import DumpLine, iter_dump, iter_dump_lines, read_dump_lines
from crds_async.sources.dumps import DatasetParametersError, DumpError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"

LINES = [
    '{"A:A": {"INSTRUME": "ACS", "DETECTOR": "WFC", "N": 1.5}}',
    "",
    '{"B\\u00e9:B": {"INSTRUME": "WFC3", "NOTE": "caf\\u00e9"}}',  # an id with an escape
    '{"C:C": "no parameters here"}',
    '{"D:D": {"INSTRUME": "COS", "BAD": [1, 2]}}',
    '{"E:E": {"INSTRUME": "STIS"}}',
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _outcome(value: object) -> object:
    if isinstance(value, DumpLine):
        try:
            return value.parameters()
        except Exception as exc:  # noqa: BLE001 - compared as text below
            return (type(exc).__name__, str(exc))
    if isinstance(value, BaseException):
        return (type(value).__name__, str(value))
    return value


def test_the_same_datasets_and_errors_as_the_streaming_parser(tmp_path):
    dump = _write(tmp_path / "d.json", LINES)
    eager = [(i, _outcome(v)) for i, v in iter_dump(dump)]
    lazy = iter_dump_lines(dump)
    assert lazy is not None
    lazy = [(i, _outcome(v)) for i, v in lazy]
    assert lazy == eager
    assert [i for i, _ in lazy] == ["A:A", "B\u00e9:B", "C:C", "D:D", "E:E"]
    # the bad datasets' messages name the file, line and column, as the parser's do
    assert lazy[2][1] == ("DatasetParametersError",
                          f"{dump}:4:9: dataset 'C:C': no parameters, the dump holds the text 'no parameters here'")


def test_other_forms_are_not_read_as_lines(tmp_path):
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps({"A:A": {"INSTRUME": "ACS"}, "B:B": {"INSTRUME": "COS"}}, indent=1))
    assert iter_dump_lines(whole) is None
    pickled = tmp_path / "d.pkl"
    pickled.write_bytes(pickle.dumps({"A:A": {"INSTRUME": "ACS"}}))
    assert iter_dump_lines(pickled) is None


def test_a_broken_line_is_that_datasets_error(tmp_path):
    dump = _write(tmp_path / "d.json", ['{"A:A": {"INSTRUME": "ACS"}}', '{"B:B": {"INSTRUME": "AC',
                                        '{"C:C": {"INSTRUME": "COS"}} {"X:X": {}}', '{"D:D": {"INSTRUME": "STIS"}}'])
    items = list(iter_dump_lines(dump))
    assert [i for i, _ in items] == ["A:A", "B:B", "C:C", "D:D"]
    assert items[0][1].parameters() == {"INSTRUME": "ACS"}
    with pytest.raises(DumpError, match=rf"^{dump}:2:\d+: Unterminated string"):
        items[1][1].parameters()
    with pytest.raises(DumpError, match=rf"^{dump}:3:\d+: Extra data"):
        items[2][1].parameters()
    assert items[3][1].parameters() == {"INSTRUME": "STIS"}


def test_a_dump_line_travels_to_a_worker_undecoded(tmp_path):
    dump = _write(tmp_path / "d.json", LINES[:1])
    (dataset_id, line), = iter_dump_lines(dump)
    blob = pickle.dumps(line)
    assert len(blob) < len(str(dump)) + 80 and b"DETECTOR" not in blob  # where the line is, not what it holds
    copy = pickle.loads(blob)
    assert copy == line and copy.text is None
    assert copy.parameters() == {"INSTRUME": "ACS", "DETECTOR": "WFC", "N": 1.5}  # read where it is used
    assert copy.text == LINES[0].encode() + b"\n"


def test_bestrefs_reports_a_bad_line_and_answers_the_rest(tmp_path):
    """A dataset's bad parameters are one line naming the file and place; the batch goes on."""
    good = '{"%s": {"INSTRUME": "ACS", "DETECTOR": "WFC", "DATE-OBS": "2010-01-01", "TIME-OBS": "00:00:00"}}'
    dump = _write(tmp_path / "d.json", [good % "A:A", '{"B:B": "no parameters here"}', '{"C:C": {"INSTRUME": ',
                                        good % "D:D"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(SHARED / "cache"), CRDS_READONLY_CACHE="1", CRDS_MODE="local")
    proc = subprocess.run([sys.executable, "-m", "crds_async", "bestrefs", "--load-pickles", str(dump),
                           "--new-context", "hst_0729.pmap", "--format", "json", "-q", "-t", "darkfile"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert sorted(json.loads(proc.stdout)) == ["A:A", "D:D"]
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"ERROR: {dump}")]
    assert errors == [f"ERROR: {dump}:2:9: dataset 'B:B': no parameters, the dump holds the text "
                      "'no parameters here'",
                      f"ERROR: {dump}:3:22: Expecting value"], proc.stderr


def test_a_bad_dataset_read_by_the_streaming_parser_is_one_clean_line(tmp_path):
    """--save-pickle needs the parameters in the reading process (the dump is parsed there):
    a bad dataset's error is the dump's message, nothing appended."""
    dump = _write(tmp_path / "d.json", ['{"A:A": {"INSTRUME": "ACS"}}', '{"B:B": "no parameters here"}'])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(SHARED / "cache"), CRDS_READONLY_CACHE="1", CRDS_MODE="local")
    proc = subprocess.run([sys.executable, "-m", "crds_async", "bestrefs", "--load-pickles", str(dump),
                           "--new-context", "hst_0729.pmap", "-q", "-t", "darkfile",
                           "--save-pickle", str(tmp_path / "saved.json")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"ERROR: {dump}")]
    assert errors == [f"ERROR: {dump}:2:9: dataset 'B:B': no parameters, the dump holds the text "
                      "'no parameters here'"], proc.stderr


def test_a_tasks_lines_are_read_at_once_and_a_changed_dump_is_each_lines_error(tmp_path):
    dump = _write(tmp_path / "d.json", [json.dumps({f"D{i:03d}:D{i:03d}": {"INSTRUME": "ACS", "I": str(i)}})
                                        for i in range(20)])
    lines = [pickle.loads(pickle.dumps(line)) for _, line in iter_dump_lines(dump)]
    read_dump_lines(lines[5:15])
    assert [line.text is not None for line in lines] == [False] * 5 + [True] * 10 + [False] * 5
    assert [line.parameters()["I"] for line in lines] == [str(i) for i in range(20)]
    # the dump cut short after the batch read its ids: the lost lines are their datasets' errors
    others = [pickle.loads(pickle.dumps(line)) for line in lines]
    with open(dump, "r+b") as raw:
        raw.truncate(others[10].offset + 5)
    read_dump_lines(others)
    assert others[9].parameters()["I"] == "9"
    with pytest.raises(DumpError, match=rf"^{dump}:11: the dump is shorter"):
        others[10].parameters()
    # rewritten with other datasets at the same places: the id no longer matches
    dump.write_bytes(b"".join(line.text.replace(b"D0", b"X0") for line in lines))
    moved = pickle.loads(pickle.dumps(lines[3]))
    with pytest.raises(DumpError, match=rf"^{dump}:4: expected one dataset, 'D003:D003', on the line"):
        moved.parameters()
