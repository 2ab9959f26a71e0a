"""A one-dataset-a-line dump surveyed once and cut into spans that workers list themselves
(sources.dump_spans): the same datasets, parameters and per-dataset errors as the batch's own
listing (iter_dump_lines), in the same order; a dump changed under the batch stops it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crds_async.engine.inputs import Selection, dump_items
from crds_async.sources import iter_dump_lines
from crds_async.sources.dump_spans import DumpSpan, expand_spans, survey_dump
from crds_async.sources.dumps import DumpError
from tests.sources.test_dump_lines import _outcome  # parameters, or the error they raise


def _listed(path: Path) -> list[tuple[str, object]]:
    return [(dataset_id, _outcome(line)) for dataset_id, line in iter_dump_lines(path)]


def _spanned(path: Path, span_bytes: int) -> list[tuple[str, object]]:
    survey = survey_dump(path, span_bytes)
    return [(dataset_id, _outcome(source)) for dataset_id, source in expand_spans(survey.spans)]


def _dump(path: Path, count: int, bad: dict[int, str] | None = None) -> Path:
    lines = []
    for i in range(count):
        line = json.dumps({f"Q{i:06d}:Q{i:06d}": {"INSTRUME": "ACS", "DETECTOR": "WFC", "EXPSTART": 55000.5 + i,
                                                  "FILTER1": f"F{i % 7}"}})
        lines.append((bad or {}).get(i, line))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("span_bytes", [64, 1000, 1 << 18])
def test_spans_list_the_same_datasets_as_the_batch_does(tmp_path, span_bytes):
    path = _dump(tmp_path / "d.json", 700)
    survey = survey_dump(path, span_bytes)
    assert survey.ordered and survey.total == 700
    assert sum(span.count for span in survey.spans) == 700
    if span_bytes < 1 << 18:
        assert len(survey.spans) > 10  # cut into many, each of whole lines
    assert _spanned(path, span_bytes) == _listed(path)


def test_a_bad_line_in_a_span_is_that_datasets_error_and_the_others_are_read(tmp_path):
    bad = {3: '{"Q000003:Q000003": {"INSTRUME": "ACS", ', 5: '{"Q000005:Q000005": "just text"}',
           8: '{"Q000008:Q000008": {"INSTRUME": "ACS", "LIST": [1, 2]}}'}
    path = _dump(tmp_path / "d.json", 40, bad)
    spanned = _spanned(path, 1 << 18)
    assert spanned == _listed(path)
    errors = {i: value for i, (_id, value) in enumerate(spanned) if isinstance(value, tuple)}
    assert sorted(errors) == [3, 5, 8]
    assert errors[3][1].startswith(f"{path}:4:") and errors[5][0] == "DatasetParametersError"
    assert spanned[4][1]["FILTER1"] == "F4"


def test_blank_lines_are_passed_over_and_line_numbers_kept(tmp_path):
    path = tmp_path / "d.json"
    lines = [json.dumps({f"A{i}:A{i}": {"INSTRUME": "ACS"}}) for i in range(6)]
    lines.insert(3, "")
    lines[5] = '{"A4:A4": {"INSTRUME": ACS}}'  # not JSON, after the blank line: line 6
    path.write_text("\n".join(lines) + "\n")
    survey = survey_dump(path, 1 << 18)
    assert survey.total == 6
    spanned = _spanned(path, 1 << 18)
    assert spanned == _listed(path)
    assert spanned[4][1][1].startswith(f"{path}:6:")


def test_an_unordered_dump_is_surveyed_unordered_and_an_escaped_id_is_left_to_the_batch(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("".join(json.dumps({f"{k}:{k}": {"INSTRUME": "ACS"}}) + "\n" for k in ("B", "A", "C")))
    assert survey_dump(path).ordered is False
    path.write_text("".join(json.dumps({f"{k}:{k}": {"INSTRUME": "ACS"}}) + "\n" for k in ("A", "A")))
    assert survey_dump(path).ordered is False  # a repeated id is out of order too
    path.write_text('{"A\\u00e9:A": {"INSTRUME": "ACS"}}\n')
    assert survey_dump(path) is None
    path.write_text(json.dumps({"A:A": {"INSTRUME": "ACS"}, "B:B": {}}))
    assert survey_dump(path) is None  # not one dataset a line


def test_dump_items_offers_spans_only_when_the_workers_may_list(tmp_path):
    path = _dump(tmp_path / "d.json", 50)
    assert dump_items([path]).spans is not None
    assert dump_items([path], Selection.of(drop_ids=["Q000001"])).spans is None
    assert dump_items([path], saved=lambda *_: None).spans is None
    assert dump_items([path, path]).spans is None


def test_a_dump_changed_under_the_batch_stops_it(tmp_path):
    path = _dump(tmp_path / "d.json", 60)
    spans = survey_dump(path, 500).spans
    later = spans[3]
    text = path.read_bytes()
    path.write_bytes(text[:later.offset + 5] + b"X" + text[later.offset + 5:])  # one byte more
    with pytest.raises(DumpError, match="changed during the batch"):
        later.datasets()
    path.write_bytes(text[: later.offset + later.size // 2])  # cut short
    with pytest.raises(DumpError, match="changed during the batch"):
        later.datasets()
    path.unlink()
    with pytest.raises(DumpError, match=str(path)):
        DumpSpan(str(path), 0, 10, 1, 1).datasets()
