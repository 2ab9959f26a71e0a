"""A campaign that only reports (``--print-affected`` and the other ``--print-*``, no output
per dataset) is accounted for in the workers, which send back one sum per chunk
(``engine.batch.run_tallied``, ``cli.bestrefs._ChunkTally``).  Its output must be what the
batch's own process prints when it accounts for every result itself: the same stdout, the
same ERROR and WARNING lines in the same order, the same exit status."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from crds_async.cli import bestrefs, main
from crds_async.cli.bestrefs_reports import Reports
from crds_async.engine import batch as batch_module
from crds_async.engine.results import DatasetResult
from tests.conftest import CACHE, CORPUS

OLD, NEW = "hst_0600.pmap", "hst_0729.pmap"


@pytest.fixture
def hst_env(monkeypatch):
    for name in ("CRDS_SERVER_URL", "CRDS_CONTEXT", "CRDS_OBSERVATORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    # the summary line carries the run's seconds
    kept = [line for line in err.getvalue().splitlines() if not line.startswith("crds-batch bestrefs: ")]
    return code, out.getvalue(), "\n".join(kept)


def _both_ways(monkeypatch, args: list[str]) -> tuple[tuple, tuple]:
    """(tallied in the workers, accounted per result here), each (exit, stdout, stderr)."""
    taken = []
    real = batch_module.run_tallied

    def spy(*pargs, **kwargs):
        taken.append(True)
        return real(*pargs, **kwargs)

    monkeypatch.setattr(batch_module, "run_tallied", spy)
    tallied = _run(args)
    assert taken, "the campaign was not tallied in the workers"
    monkeypatch.setattr(bestrefs._Driver, "tallies_in_workers", lambda self, running: False)
    taken.clear()
    per_result = _run(args)
    assert not taken
    return tallied, per_result


def _dump(tmp_path: Path, count: int) -> Path:
    """A one-dataset-a-line dump (``--save-pickle``'s layout) of the HST corpus headers,
    repeated under new ids, with the datasets whose answers fail among them."""
    from benchmarks.bench_campaign import write_dump
    from benchmarks.bench_catalogue import archive_like_headers

    path = tmp_path / "campaign.json"
    write_dump(path, count, archive_like_headers())
    lines = path.read_text().splitlines(keepends=True)
    lines[10] = lines[10][:40] + "\n"                                   # not JSON
    lines[20] = json.dumps({lines[20][2:21]: "no parameters"}) + "\n"  # not an object
    path.write_text("".join(lines))
    return path


REPORTS = [
    ["--print-affected"],
    ["--print-affected", "--print-update-counts"],
    ["--print-new-references"],
    ["--print-affected-details", "-k", "darkfile", "biasfile"],
    ["--print-affected", "--allow-bad-references"],
    ["--print-update-counts", "--undefined-differences-matter"],
]


@pytest.mark.parametrize("reports", REPORTS, ids=lambda r: " ".join(r))
def test_a_campaign_tallied_in_two_workers_prints_what_per_result_accounting_prints(hst_env, monkeypatch,
                                                                                      tmp_path, reports):
    dump = _dump(tmp_path, 1500)
    args = ["bestrefs", "--load-pickles", str(dump), "--old-context", OLD, "--new-context", NEW, "-j", "2",
            *reports]
    tallied, per_result = _both_ways(monkeypatch, args)
    assert tallied == per_result
    code, stdout, stderr = tallied
    assert code == 1  # the corpus's failing datasets, repeated
    assert stderr.count("ERROR: ") > 0
    assert f"ERROR: {dump}:11:" in stderr and f"ERROR: {dump}:21:" in stderr  # the two bad lines
    if "--print-affected" in reports:
        assert len(stdout.split()) > 100


def test_dataset_files_tallied_the_same(hst_env, monkeypatch):
    args = ["bestrefs", str(CORPUS / "hst"), "--old-context", OLD, "--new-context", NEW, "-j", "2",
            "--print-affected", "--print-update-counts"]
    tallied, per_result = _both_ways(monkeypatch, args)
    assert tallied == per_result
    assert tallied[0] == 1 and len(tallied[1].split()) > 50


COMPARED = ["--old-context", OLD, "--new-context", NEW]


@pytest.mark.parametrize("extra, tallied", [
    ([*COMPARED, "--print-affected"], True),
    ([*COMPARED, "--print-update-counts", "-q"], True),
    ([*COMPARED, "--print-affected", "--format", "json"], False),   # an output per dataset
    ([*COMPARED, "--print-affected", "--journal", "J"], False),      # a journal keeps results
    ([*COMPARED, "--print-affected", "--report", "R"], False),       # the report is drawn here
    ([*COMPARED, "--print-affected", "-s", "1"], False),             # references are downloaded here
    (["--new-context", NEW, "--print-affected"], False),            # recorded references are read here
])
def test_only_a_report_only_campaign_is_tallied_in_the_workers(hst_env, monkeypatch, tmp_path, extra, tallied):
    seen = []
    real = bestrefs._Driver.tallies_in_workers

    def record(self, running):
        seen.append(real(self, running))
        return False

    monkeypatch.setattr(bestrefs._Driver, "tallies_in_workers", record)
    extra = [str(tmp_path / e) if e in ("J", "R") else e for e in extra]
    sample = sorted((CORPUS / "hst").glob("*.fits"))[:3]
    _run(["bestrefs", *map(str, sample), "-j", "1", *extra])
    assert seen == [tallied]


def test_reports_merged_from_parts_equal_one_reports_fed_everything():
    def result(i: int) -> DatasetResult:
        answers = {"darkfile": f"d{i % 3}_drk.fits", "flatfile": "f_flt.fits",
                   "biasfile": "NOT FOUND No match found." if i % 7 == 0 else "b_bia.fits"}
        return DatasetResult(f"P{i:03d}:E{i % 2}", "acs", answers=answers, old_answers={"darkfile": "d0_drk.fits"},
                             compared=("darkfile",))

    whole, merged = Reports(), Reports()
    parts = [Reports(), Reports()]
    for i in range(60):
        r = result(i)
        whole.add(r, old_overrides=r.old_answers, old_checked=r.compared)
        parts[i % 2].add(result(i), old_overrides=r.old_answers, old_checked=r.compared)
    for part in parts:
        merged.merge(part.take_part())
        assert part.counts == {} and part.affected() == [] and part.updates == {}
    assert merged.counts == whole.counts and merged.counts["ACS"]["darkfile"] == 40
    assert merged.affected() == whole.affected()
    assert merged.new_references_lines() == whole.new_references_lines()
    assert merged.affected_details_lines() == whole.affected_details_lines()
