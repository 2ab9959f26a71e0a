"""The --print-* bookkeeping compares each distinct set of answers once: datasets that share
answers must still get their own error lines, counts and affected products."""

from __future__ import annotations

import argparse
import io

from crds_async.cli.bestrefs_reports import Reports
from crds_async.engine.results import DatasetResult


def _result(path: str, answers: dict, old: dict | None = None, compared=()) -> DatasetResult:
    return DatasetResult(path, "acs", answers=dict(answers), old_answers=old, compared=tuple(compared))


NEW = {"darkfile": "x_drk.fits", "biasfile": "NOT FOUND parameter='CCDGAIN' value='2.5' is not in ['1.0']",
       "flatfile": "y_flt.fits"}
OLD = {"darkfile": "w_drk.fits", "biasfile": "NOT FOUND No match found.", "flatfile": "y_flt.fits"}


def test_shared_answers_keep_each_datasets_name_and_count():
    reports = Reports(undefined_matter=True)
    lines = []
    for name in ("A:A", "B:B", "C:C"):
        answers = dict(NEW, biasfile="b_bia.fits") if name == "C:C" else NEW
        recorded = reports.add(_result(name, answers), {**answers, **OLD}, old_checked=("biasfile", "darkfile"))
        lines.append(recorded)
    # A and B share every answer: the same errors, each under its own name
    assert lines[0].errors == ["A:A: biasfile: Old: No match found: 'NOT FOUND No match found.'"]
    assert lines[1].errors == ["B:B: biasfile: Old: No match found: 'NOT FOUND No match found.'"]
    assert [r.killed for r in lines] == [True, True, False]
    assert all(r.updated for r in lines)
    assert reports.affected() == ["C"]  # A and B have a failed new answer
    assert reports.counts == {"ACS": {"darkfile": 3, "biasfile": 1}}
    details = reports.affected_details_lines()
    assert details == ["A:A acs darkfile", "B:B acs darkfile", "C:C acs biasfile darkfile"]


def test_reports_without_kept_updates_print_the_same_affected_and_counts():
    kept, lean = Reports(), Reports(keep_updates=False)
    for i in range(50):
        answers = {"darkfile": f"d{i % 3}_drk.fits", "flatfile": "f_flt.fits"}
        old = {"darkfile": "d0_drk.fits", "flatfile": "f_flt.fits"}
        for reports in (kept, lean):
            reports.add(_result(f"P{i:02d}:E{i % 2}", answers), {**answers, **old}, old_checked=("darkfile",))
    args = argparse.Namespace(print_affected=True, print_update_counts=True)
    printed = []
    for reports in (kept, lean):
        out, err = io.StringIO(), io.StringIO()
        reports.print_all(args, out, err)
        printed.append((out.getvalue(), err.getvalue()))
    assert printed[0] == printed[1]
    assert printed[0][0].split() == [f"P{i:02d}" for i in range(50) if i % 3]
    assert lean.updates == {} and len(kept.updates) == len(printed[0][0].split())


def test_archive_ids_are_printed_lower_case_and_paths_as_given():
    """The reference prints every name lower-cased: archive ids alike, but a path with an
    upper-case letter would then name another file, so paths are printed as given."""
    args = argparse.Namespace(print_affected=True, print_new_references=True, print_affected_details=True)
    printed = []
    for lower, name in ((True, "Q0A1:Q0A1"), (False, "/Data/X_raw.fits")):
        reports = Reports(lower_names=lower)
        reports.add(_result(name, {"darkfile": "new_drk.fits"}), {"darkfile": "old_drk.fits"})
        out = io.StringIO()
        reports.print_all(args, out, io.StringIO())
        printed.append(out.getvalue().splitlines())
    assert printed[0] == ["q0a1:q0a1 acs darkfile old_drk.fits new_drk.fits", "q0a1", "q0a1:q0a1 acs darkfile"]
    assert printed[1] == ["/Data/X_raw.fits acs darkfile old_drk.fits new_drk.fits", "/Data/X_raw.fits",
                          "/Data/X_raw.fits acs darkfile"]
