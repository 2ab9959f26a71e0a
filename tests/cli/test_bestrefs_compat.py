"""``crds-batch`` in place of ``crds`` on reference-style ``crds bestrefs`` command lines (issue #16).

Each command line (from ``crds bestrefs --help``'s examples and the reference's switches) is
run once by the reference and once by crds-batch on the same corpus files (module-scoped:
one run each); the tests compare the standard output (the ``--print-*`` reports), the set of
files with ERROR lines and the exit status (0 or not).  Paths are compared case-folded, as
the reference means them (it lower-cases the dataset names it prints).
"""

from __future__ import annotations

import re

import pytest

from tests.cli.test_bestrefs import run_cli
from tests.cli.test_bestrefs_reference import JWST_NEW_REFERENCES, jwst_sample, reference_error_files, run_reference
from tests.conftest import CORPUS, needs_reference

pytestmark = [needs_reference, pytest.mark.slow]

HST = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:40]]
#: datasets whose recorded references (headers) differ from hst_0729's answers
HST_RECORDED = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[150:190]]
JWST = [str(p) for p in sorted((CORPUS / "jwst").glob("*.fits"))[:40]]

#: (name, observatory, files, switches) -- the switches follow "--files FILE..."
COMMANDS = [
    ("plain", "hst", HST, ["--new-context", "hst_0729.pmap"]),
    ("print-new-references", "hst", HST, ["--print-new-references", "--new-context", "hst_0729.pmap"]),
    ("repro", "hst", HST, ["-n", "hst_0729.pmap", "-o", "hst_0600.pmap", "--print-affected",
                           "--print-affected-details", "--print-new-references", "--print-update-counts"]),
    ("undefined-matter", "hst", HST, ["-n", "hst_0729.pmap", "-o", "hst_0600.pmap",
                                      "--undefined-differences-matter", "--print-new-references"]),
    ("compare-source", "hst", HST_RECORDED, ["-n", "hst_0729.pmap", "-c", "--print-new-references",
                                    "--print-update-counts"]),
    ("affected-vs-recorded", "hst", HST_RECORDED, ["-n", "hst_0729.pmap", "--print-affected"]),
    ("types-skip", "hst", HST, ["-n", "hst_0729.pmap", "-t", "darkfile", "biasfile", "flshfile",
                                "-k", "biasfile", "--print-new-references"]),
    # on the stratified JWST sample: the very command (and reference run, shared for the session)
    # of test_bestrefs_reference.py's JWST error test
    ("jwst-new-references", "jwst", jwst_sample(), JWST_NEW_REFERENCES),
    ("jwst-repro", "jwst", JWST, ["-n", "jwst_0541.pmap", "-o", "jwst_0500.pmap", "--print-affected",
                                  "--print-affected-details", "--print-update-counts"]),
]


class _Runs(dict):
    """``{name: (reference, ours)}``, each command run by each tool on first use (so a test's
    time is its own command's, not the module's)."""

    def __missing__(self, name: str):
        _, observatory, files, switches = next(c for c in COMMANDS if c[0] == name)
        reference = run_reference(observatory, "--files", *files, *switches)
        ours = run_cli("bestrefs", "--files", *files, *switches)
        self[name] = (reference, ours)
        return self[name]


@pytest.fixture(scope="module")
def runs() -> dict:
    """Every command, run once by each tool: {name: (reference, ours)}."""
    return _Runs()


def _ours_error_files(stderr: str) -> set[str]:
    return {line.removeprefix("ERROR: ").split(": ")[0].lower() for line in stderr.splitlines()
            if line.startswith("ERROR: ")}


def _update_counts(stderr: str) -> str | None:
    """The ``Updated exposure counts`` block (without the log prefix)."""
    match = re.search(r"Updated exposure counts:\n(.*?)(?=\n(?:CRDS - |crds-batch |ERROR: |Affected )|\Z)",
                      stderr, re.S)
    return match.group(1).strip() if match else None


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_stdout_errors_and_exit_status_equal_the_reference(runs, name):
    reference, ours = runs[name]
    assert reference.returncode in (0, 1) or reference.returncode > 0, reference.stderr[-2000:]
    assert "Traceback" not in ours.stderr, ours.stderr[-2000:]
    assert ours.stdout.lower().splitlines() == reference.stdout.lower().splitlines()
    assert _ours_error_files(ours.stderr) == reference_error_files(reference.stderr)
    assert (ours.returncode == 0) == (reference.returncode == 0), (ours.returncode, reference.returncode)


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS if "--print-update-counts" in c[3]])
def test_update_counts_equal_the_reference(runs, name):
    reference, ours = runs[name]
    want = _update_counts(reference.stderr)
    assert want is not None
    assert _update_counts(ours.stderr) == want


def test_the_commands_are_not_trivial(runs):
    """The comparisons above compare something: reports with lines, and failed datasets."""
    assert runs["plain"][0].stdout == ""
    for name in ("print-new-references", "repro", "compare-source", "jwst-new-references", "jwst-repro"):
        assert len(runs[name][0].stdout.splitlines()) > 10, name
    assert reference_error_files(runs["print-new-references"][0].stderr)
    assert reference_error_files(runs["jwst-new-references"][0].stderr)
