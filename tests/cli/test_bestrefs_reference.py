"""crds-batch bestrefs against the reference CLI on the same files: header updates and affected datasets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from astropy.io import fits

from tests.cli.test_bestrefs import run_cli
from tests.conftest import CACHE, CORPUS, needs_reference

SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}


def run_reference(observatory: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[observatory])
    return subprocess.run([sys.executable, "-m", "crds.bestrefs", *args], capture_output=True, text=True,
                          env=env, timeout=600, cwd=cwd)


def _after_primary_header(path) -> bytes:
    raw = open(path, "rb").read()
    end = 0
    while True:
        block, end = raw[end:end + 2880], end + 2880
        if any(block[i:i + 8] == b"END     " for i in range(0, 2880, 80)):
            return raw[end:]


@needs_reference
def test_update_bestrefs_writes_what_the_reference_writes(tmp_path):
    sample = sorted((CORPUS / "hst").glob("*.fits"))[:24:2]
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder in (ours, theirs):
        folder.mkdir()
        for path in sample:
            shutil.copy(path, folder / path.name)
            os.chmod(folder / path.name, 0o644)  # the corpus is read-only; a read-only dataset is refused
    data_before = {p.name: _after_primary_header(p) for p in sample}
    proc = run_cli("bestrefs", str(ours), "--context", "hst_0729.pmap", "--update-bestrefs", "-q")
    assert proc.returncode in (0, 1), proc.stderr
    reference = run_reference("hst", "--files", *sorted(str(p) for p in theirs.iterdir()),
                              "--new-context", "hst_0729.pmap", "--update-bestrefs")
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
def test_affected_datasets_equal_the_reference_cli():
    files = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:60]]
    old, new = "hst_0600.pmap", "hst_0729.pmap"
    ours = run_cli("bestrefs", *files, "--old-context", old, "--context", new, "--print-affected", "-q")
    reference = run_reference("hst", "--files", *files, "--old-context", old, "--new-context", new,
                              "--print-affected")
    reference_set = set(reference.stdout.split())
    assert set(ours.stdout.split()) == reference_set
    assert 0 < len(reference_set) < len(files)


@needs_reference
def test_affected_jwst_datasets_equal_the_references_answers_under_both_contexts():
    """The reference CLI screens JWST types through its CRDSCFG tables, which crds-batch does not
    (it answers every imap type, as the corpus answers do), so the affected set is computed
    from the reference's own answers for every imap type under both contexts."""
    from crds_async.instruments import bestrefs_parameters, dataset_header
    from crds_async.headers import read_header
    from crds_async.engine.campaign import comparable
    from crds_async.engine.results import is_error_answer
    from crds_async.config import config_from_env
    from crds_async.engine.loader import load_context
    from tests.reference_runner import reference_answers

    files = sorted((CORPUS / "jwst").glob("*.fits"))[:60]
    old, new = "jwst_0500.pmap", "jwst_0541.pmap"
    headers = [bestrefs_parameters(dataset_header(read_header(p))) for p in files]
    cfg = config_from_env({"CRDS_PATH": str(CACHE)})
    contexts = {name: load_context(name, cfg) for name in (old, new)}

    def every_type(name, header):
        ctx = contexts[name]
        return sorted(ctx.instruments[header["META.INSTRUMENT.NAME"].lower()].reftypes)

    before = reference_answers(CACHE, old, "jwst", [[h, every_type(old, h)] for h in headers])
    after = reference_answers(CACHE, new, "jwst", [[h, every_type(new, h)] for h in headers])
    reference_set = set()
    for path, was, now in zip(files, before, after):
        if isinstance(now, list) or any(is_error_answer(a) for a in now.values()):
            continue
        was = {} if isinstance(was, list) else was
        if any(comparable(was.get(t, "UNDEFINED")) != comparable(now.get(t, "UNDEFINED"))
               for t in set(was) | set(now)):
            reference_set.add(str(path))
    ours = run_cli("bestrefs", *map(str, files), "--old-context", old, "--context", new, "--print-affected", "-q")
    assert set(ours.stdout.split()) == reference_set
    assert reference_set


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
    """crds-batch bestrefs on the JWST corpus reports errors for the same files as the reference's
    crds bestrefs (which screens types), and exits alike."""
    import re

    files = [str(p) for p in sorted((CORPUS / "jwst").glob("*.fits"))]
    ours = run_cli("bestrefs", *files, "--context", "jwst_0541.pmap", "-q", "--format", "json")
    reference = run_reference("jwst", "--files", *files, "--new-context", "jwst_0541.pmap")
    ours_failed = {line.removeprefix("ERROR: ").split(": ")[0] for line in ours.stderr.splitlines()
                   if line.startswith("ERROR: ")}
    # the reference names a failed dataset in its error lines; it lower-cases the paths it prints
    reference_failed = {f for f in files
                        if re.search(rf"ERROR.*{re.escape(os.path.basename(f).lower())}", reference.stderr.lower()
                                     + reference.stdout.lower())}
    assert ours_failed == reference_failed
    assert len(reference_failed) == 17
    assert (ours.returncode == 0) == (reference.returncode == 0)
