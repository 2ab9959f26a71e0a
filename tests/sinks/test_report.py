"""--report DIR: counts that equal the batch's output, a page that lists its PNG plots, bounded state."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from collections import Counter
from html.parser import HTMLParser

import pytest
from astropy.io import fits

from crds_async.cli.bestrefs_output import _context_diff
from crds_async.engine.results import DatasetResult, is_error_answer
from crds_async.sinks.report import PAGE, PLOTS, ReportSink, check_report_dir, error_class, observation_month
from tests.conftest import CORPUS
from tests.sinks.cli import run_cli
from tests.sinks.reporting import run_with_sinks

CONTEXT, OLD = "hst_0729.pmap", "hst_0700.pmap"


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.cells.append(data)


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG, checking its signature and header chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """60 HST corpus datasets and one broken file, old and new context, jsonl beside the report."""
    folder = tmp_path_factory.mktemp("campaign")
    for path in sorted((CORPUS / "hst").glob("*.fits"))[::5]:
        shutil.copy(path, folder / path.name)
    (folder / "broken_raw.fits").write_text("this is not FITS\n" * 10)
    out = tmp_path_factory.mktemp("out")
    sink = run_with_sinks([folder], context=CONTEXT, old_context=OLD, output=str(out / "all.jsonl"),
                          report=str(out / "report"))
    records = [json.loads(line) for line in (out / "all.jsonl").read_text().splitlines()]
    return folder, out / "report", sink.report, records


def test_counts_equal_the_batch_output(campaign):
    folder, _, report, records = campaign
    affected = [r for r in records if r.get("changes")
                and not any(is_error_answer(a) for a in r["bestrefs"].values())]
    assert affected
    assert report.totals["files"] == len(records) == 61
    assert report.totals["failed"] == 1 and report.totals["affected"] == len(affected)
    assert report.by_type == Counter((r["instrument"], t) for r in affected for t in r["changes"])
    months = Counter()
    for record in affected:
        months[fits.getheader(record["path"])["DATE-OBS"][:7]] += 1  # read apart, by astropy
    assert report.by_month == months
    lines = [r["error"] for r in records if "error" in r] + [p for r in records for p in r.get("problems", ())]
    assert sum(report.errors.counts.values()) == len(lines)
    assert all(len(shown) <= 3 for shown in report.errors.examples.values())


def test_the_cli_counts_the_same_affected_datasets(campaign):
    folder, _, report, _ = campaign
    proc = run_cli("bestrefs", str(folder), "--context", CONTEXT, "--old-context", OLD, "--format", "jsonl")
    assert f" {report.totals['affected']} affected, " in proc.stderr.strip().splitlines()[-1]


def test_page_shows_its_plots_and_the_context_difference(campaign):
    _, directory, report, _ = campaign
    assert sorted(os.listdir(directory)) == sorted((PAGE,) + PLOTS)  # no temp file left
    page = _Images()
    page.feed((directory / PAGE).read_text(encoding="utf-8"))
    assert page.images == list(PLOTS)
    for name in PLOTS:
        width, height = png_size(directory / name)
        assert width >= 300 and height >= 150
    text = " ".join(page.cells)
    assert f"{OLD} → {CONTEXT}" in text
    summary = report.context_diff
    assert summary and not isinstance(summary, BaseException)
    for instrument, kinds in summary.items():
        for kind, entry in kinds.items():
            shown = ([f"mapping {m}" for m in entry["mappings"]] + [f"- {n}" for n in entry["old_files"]]
                     + [f"+ {n}" for n in entry["new_files"]])
            for line in shown[:12]:  # the first dozen of each, then how many more
                assert line in text
            if len(shown) > 12:
                assert f"… {len(shown) - 12} more" in text
    assert "broken_raw.fits" in text  # the failed file is an example of its error class


def test_without_an_old_context_failed_types_are_counted(tmp_path):
    sample = sorted((CORPUS / "hst").glob("*.fits"))[:40]
    sink = run_with_sinks(sample, context=CONTEXT, old_context=None, report=str(tmp_path / "r"),
                          output=str(tmp_path / "o.jsonl"))
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    want = Counter((r["instrument"], t) for r in records for t, a in r["bestrefs"].items() if is_error_answer(a))
    assert want and sink.report.by_type == want
    page = (tmp_path / "r" / PAGE).read_text()
    assert "Context difference" not in page and "datasets with failed types" in page


def test_state_is_bounded_and_abort_writes_nothing(tmp_path):
    report = ReportSink(str(tmp_path / "never"), context="hst_0729.pmap", date_of=lambda path: None)
    for n in range(5000):
        report.add(DatasetResult(f"/d/f{n}.fits", error=f"/d/f{n}.fits: failure kind {chr(65 + n % 26) * (n % 97)}"),
                   {})
    assert len(report.errors.counts) <= 51 and sum(report.errors.counts.values()) == 5000
    assert max(len(e) for e in report.errors.examples.values()) <= 3
    report.abort()
    report.close()
    assert not (tmp_path / "never").exists()


def test_hostile_names_are_escaped(tmp_path):
    name = os.fsdecode(b"/d/<script>alert(1)</script>\xff_raw.fits")
    report = ReportSink(str(tmp_path / "r"), context="hst<b>.pmap", old_context="hst_0700.pmap",
                        context_diff=RuntimeError("no <mappings>"), date_of=lambda path: "2011-02-03")
    report.add(DatasetResult(name, "wfc3", {"darkfile": "x.fits"}, {"darkfile": "y.fits"}, ("darkfile",)),
               {"darkfile": ("y.fits", "x.fits")})
    report.add(DatasetResult(name, error=f"{name}: cannot read"), {})
    report.close()
    page = (tmp_path / "r" / PAGE).read_bytes().decode("utf-8")  # valid UTF-8
    assert "<script>" not in page and "&lt;script&gt;" in page and "\\xff_raw.fits" in page
    assert "hst&lt;b&gt;.pmap" in page and "no &lt;mappings&gt;" in page
    assert report.by_month == Counter({"2011-02": 1})


def test_error_classes_and_dates():
    line = "/p/x.fits: NOT FOUND parameter='CCDGAIN' value='2.5' is not in ['1.0', '1.5']"
    assert error_class(line, "/p/x.fits") == "NOT FOUND parameter='CCDGAIN' value='…' is not in […]"
    assert error_class("/q/y.fits: header truncated at 4000 of /q/y.fits", "/q/y.fits") == \
        "header truncated at N of <dataset>"
    assert observation_month("2012-03-12") == "2012-03"
    assert observation_month("2021-11-26T14:13:12.000") == "2021-11"
    assert observation_month("12/03/97") == "1997-03" and observation_month("01/02/03") == "2003-02"
    assert observation_month("UNDEFINED") is None and observation_month(None) is None


def test_report_dir_is_checked_before_the_batch(tmp_path):
    (tmp_path / "file").write_text("x")
    assert check_report_dir(str(tmp_path / "file")) == f"{tmp_path / 'file'}: not a directory"
    assert "does not exist" in check_report_dir(str(tmp_path / "no" / "dir"))
    assert check_report_dir(str(tmp_path / "new")) is None and check_report_dir(str(tmp_path)) is None
    proc = run_cli("bestrefs", str(CORPUS / "hst"), "--context", CONTEXT, "--report", str(tmp_path / "file"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"crds-batch bestrefs: error: --report {tmp_path / 'file'}: not a directory"


def test_context_diff_failure_is_one_line_on_the_page(tmp_path):
    from crds_async.config import config_from_env
    from crds_async.engine.batch import BatchSpec
    from tests.conftest import CACHE

    cfg = config_from_env({"CRDS_PATH": str(CACHE), "CRDS_READONLY_CACHE": "1"})
    spec = BatchSpec(cfg=cfg, context="hst_0729.pmap", observatory="hst", old_context="hst_9999.pmap")
    failure = _context_diff(spec)
    assert isinstance(failure, Exception)
    report = ReportSink(str(tmp_path / "r"), context=spec.context, old_context=spec.old_context,
                        context_diff=failure)
    report.close()
    assert re.search(r"<p>the context difference failed: [^<\n]*hst_9999[^<\n]*</p>",
                     (tmp_path / "r" / PAGE).read_text())
