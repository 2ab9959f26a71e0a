"""crds-batch bestrefs against the reference CLI on the same files: header updates and affected datasets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from astropy.io import fits

from tests.cli.test_bestrefs import run_cli
from tests.conftest import CACHE, CORPUS, needs_reference
from tests.reference_runner import run_once

SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}


def run_reference(observatory: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    """The reference's ``crds bestrefs`` on the shared cache, read-only (never --update-bestrefs
    on shared files: copy them into tmp_path first).  A command that only reads runs once per
    session (tests/reference_runner.run_once): tests asking the same share its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[observatory],
               CRDS_READONLY_CACHE="1")
    if "--update-bestrefs" in args or "-u" in args:
        named = [a for a in args if not a.startswith("-")]
        assert not any(os.path.realpath(a).startswith(str(CORPUS.resolve())) for a in named), \
            "the reference would rewrite shared corpus files: update copies"
    if {"--update-bestrefs", "-u", "--save-pickle", "--sync-references"} & set(args):  # it writes: run it
        return subprocess.run([sys.executable, "-m", "crds.bestrefs", *args], capture_output=True, text=True,
                              env=env, timeout=600, cwd=cwd)
    return run_once([sys.executable, "-m", "crds.bestrefs", *args], env=env, cwd=cwd, timeout=600)


def jwst_sample() -> list[str]:
    """A stratified sample of the JWST corpus (about 70 of its 300 files), sorted: every edge
    case the corpus was built with (its manifest's ``edge``: dates before the rules, date and
    number formats, whitespace, lower case, missing keywords, generic subarrays, values no rule
    matches, ...), then the first file of each exposure type (EXP_TYPE: what the reference
    CLI's type screening goes by, so each screened set of types, including those naming types
    the context lacks) and of each detector, then the first file of each kind of failed answer
    the corpus's expected answers hold (a value not in a rule's list, per parameter; UseAfter
    date failures).  Every way a JWST dataset fails (or does not) in the corpus is in it; the
    full corpus's answers are compared in tests/cli/test_bestrefs.py (precomputed answers).
    """
    import json

    manifest = json.loads((CORPUS / "manifest_jwst_0541.json").read_text())["files"]
    expected = json.loads((CORPUS / "expected_jwst_0541.json").read_text())
    names = sorted(manifest)
    chosen = {name for name in names if manifest[name]["edge"]}
    strata: dict[tuple, str] = {}
    for name in names:
        header = fits.getheader(CORPUS / "jwst" / name, 0)
        keys = [("exp_type", header.get("EXP_TYPE")), ("detector", name.split("_")[-2])]
        for answer in expected[name].values():
            if answer.startswith("NOT FOUND") and answer != "NOT FOUND n/a":
                parameter = re.match(r"NOT FOUND +(?:UseAfter )?parameter ?='?([A-Z0-9_.\-]+)", answer)
                keys.append(("failed", parameter.group(1) if parameter else answer[:30]))
        for key in keys:
            strata.setdefault(key, name)
    chosen.update(strata.values())
    return [str(CORPUS / "jwst" / name) for name in sorted(chosen)]


#: the reference's ``crds bestrefs`` on the JWST sample: shared by this module's error test and
#: tests/cli/test_bestrefs_compat.py's ``jwst-new-references`` (one reference run)
JWST_NEW_REFERENCES = ["-n", "jwst_0541.pmap", "--print-new-references"]


_DATA = re.compile(r"data='([^']*)'")
_PROCESSING = re.compile(r"===> Processing (.*)$")


def reference_error_files(stderr: str) -> set[str]:
    """The files the reference's ERROR lines name, lower-cased (as it prints them).

    An ERROR line names its file as ``data='/path'``
    (``CRDS - ERROR -  instrument='NIRSPEC' type='APCORR' data='/path' :: New: Bestref FAILED: ...``);
    one without it (a multi-line ERROR, a failed header) belongs to the file of the
    ``===> Processing /path`` line before it.
    """
    failed: set[str] = set()
    current = None
    for line in stderr.splitlines():
        processing = _PROCESSING.search(line)
        if processing and " - INFO - " in line:
            current = processing.group(1).strip()
            continue
        if " - ERROR - " not in line:
            continue
        named = _DATA.search(line)
        if named:
            failed.add(named.group(1).lower())
        elif current is not None:
            failed.add(current.lower())
    return failed


def _after_primary_header(path) -> bytes:
    raw = open(path, "rb").read()
    end = 0
    while True:
        block, end = raw[end:end + 2880], end + 2880
        if any(block[i:i + 8] == b"END     " for i in range(0, 2880, 80)):
            return raw[end:]


@needs_reference
@pytest.mark.parametrize("observatory, context, step", [("hst", "hst_0729.pmap", 2), ("jwst", "jwst_0541.pmap", 5)])
def test_update_bestrefs_writes_what_the_reference_writes(tmp_path, observatory, context, step):
    sample = sorted((CORPUS / observatory).glob("*.fits"))[:12 * step:step]
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder in (ours, theirs):
        folder.mkdir()
        for path in sample:
            shutil.copy(path, folder / path.name)
            os.chmod(folder / path.name, 0o644)  # the corpus is read-only; a read-only dataset is refused
    data_before = {p.name: _after_primary_header(p) for p in sample}
    proc = run_cli("bestrefs", str(ours), "--context", context, "--update-bestrefs", "-q")
    assert proc.returncode in (0, 1), proc.stderr
    reference = run_reference(observatory, "--files", *sorted(str(p) for p in theirs.iterdir()),
                              "--new-context", context, "--update-bestrefs")
    assert reference.returncode in (0, 1), reference.stderr[-2000:]
    for path in sample:
        mine, ref = fits.getheader(ours / path.name, 0), fits.getheader(theirs / path.name, 0)
        assert list(mine.keys()) == list(ref.keys()), path.name  # same keywords, same order
        for key in ref.keys():
            if key == "CRDS_VER":  # the writing tool's own version: "<version>, <branch>, <revision>"
                assert len(str(mine[key]).split(", ")) == 3
                continue
            assert mine[key] == ref[key], (path.name, key)
        assert _after_primary_header(ours / path.name) == data_before[path.name]


@needs_reference
def test_affected_datasets_equal_the_reference_cli(tmp_path):
    """In a folder whose path has upper-case letters: the reference prints the dataset names
    lower-cased, crds-batch as given; the same datasets, compared case-folded."""
    folder = tmp_path / "Campaign_DATA"
    folder.mkdir()
    for path in sorted((CORPUS / "hst").glob("*.fits"))[:60]:
        shutil.copy(path, folder / path.name)
    files = [str(p) for p in sorted(folder.iterdir())]
    old, new = "hst_0600.pmap", "hst_0729.pmap"
    ours = run_cli("bestrefs", *files, "--old-context", old, "--context", new, "--print-affected", "-q")
    reference = run_reference("hst", "--files", *files, "--old-context", old, "--new-context", new,
                              "--print-affected")
    reference_set = set(reference.stdout.split())
    assert set(ours.stdout.split()) <= set(files)  # real paths, usable by the next command
    assert {p.lower() for p in ours.stdout.split()} == reference_set
    assert 0 < len(reference_set) < len(files)


@needs_reference
def test_affected_jwst_datasets_equal_the_reference_cli():
    """crds-batch screens JWST types as the reference CLI does, so --print-affected is
    compared with the reference CLI's own, line for line, and the exit status alike."""
    files = [str(p) for p in sorted((CORPUS / "jwst").glob("*.fits"))[:60]]
    old, new = "jwst_0500.pmap", "jwst_0541.pmap"
    ours = run_cli("bestrefs", *files, "--old-context", old, "--context", new, "--print-affected", "-q")
    reference = run_reference("jwst", "--files", *files, "--old-context", old, "--new-context", new,
                              "--print-affected")
    assert reference.stdout.split()
    assert [p.lower() for p in ours.stdout.split()] == reference.stdout.split()
    assert (ours.returncode == 0) == (reference.returncode == 0)


def test_jwst_types_are_screened_as_the_reference_cli_screens_them():
    """Without --types or --all-types, a JWST dataset is answered for exactly the types the
    reference CLI evaluates (its CRDSCFG screening): the corpus's cli_reftypes file."""
    import json

    from crds_async.config import config_from_env
    from crds_async.engine import answer_dataset, get_evaluator

    want = json.loads((CORPUS / "cli_reftypes_jwst_0541.json").read_text())
    evaluator = get_evaluator("jwst_0541.pmap", config_from_env({"CRDS_PATH": str(CACHE)}))
    for name, types in sorted(want.items()):
        found = answer_dataset(str(CORPUS / "jwst" / name), evaluator, screen="cli")
        assert list(found.reftypes or sorted(evaluator.context.instruments[found.instrument].reftypes)) \
            == sorted(types), name


@needs_reference
@pytest.mark.slow
def test_jwst_errors_and_exit_code_equal_the_reference_cli():
    """crds-batch bestrefs on JWST datasets, without --types, reports errors for the same files
    as the reference's crds bestrefs (which screens types), and exits alike.

    On :func:`jwst_sample` (every edge case, exposure type, detector and kind of failed answer
    of the corpus), not the whole corpus: the reference takes about 0.6 s a JWST file."""
    files = jwst_sample()
    ours = run_cli("bestrefs", *files, "--context", "jwst_0541.pmap", "-q", "--format", "json")
    reference = run_reference("jwst", "--files", *files, *JWST_NEW_REFERENCES)
    ours_failed = {line.removeprefix("ERROR: ").split(": ")[0].lower() for line in ours.stderr.splitlines()
                   if line.startswith("ERROR: ")}
    reference_failed = reference_error_files(reference.stderr)
    assert reference_failed and reference_failed <= {f.lower() for f in files}
    assert ours_failed == reference_failed
    assert (ours.returncode == 0) == (reference.returncode == 0)


def test_reference_error_lines_are_attributed_to_their_files():
    """The parser of the reference's stderr: data='...' lines, and multi-line ERRORs after a
    Processing line."""
    text = "\n".join([
        "CRDS - INFO -  ===> Processing /d/A_uncal.fits",
        "CRDS - ERROR -  instrument='NIRSPEC' type='APCORR' data='/d/A_uncal.fits' ::  New: Bestref FAILED: x",
        "CRDS - INFO -  ===> Processing /d/B_uncal.fits",
        "CRDS - ERROR -  Failed processing header:",
        " {'ACT_ID': '10'}",
        "CRDS - INFO -  ===> Processing /d/C_uncal.fits",
        "CRDS - INFO -  0 errors",
    ])
    assert reference_error_files(text) == {"/d/a_uncal.fits", "/d/b_uncal.fits"}
