"""File names that are not UTF-8 (issue #17): every output format writes every record."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest

from crds_async.sinks import printable
from tests.conftest import CORPUS
from tests.sinks.cli import run_cli

BAD = b"bad\xffname\xe9_raw.fits"  # \xff is never UTF-8; \xe9 here is Latin-1


def test_printable_escapes_only_what_is_not_utf8():
    assert printable("plain/é.fits") == "plain/é.fits"
    assert printable(os.fsdecode(b"/d/" + BAD)) == "/d/bad\\xffname\\xe9_raw.fits"
    assert printable("x\ud800y") == "x\\ud800y"  # a lone surrogate that is no escaped byte


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names")
    good = sorted((CORPUS / "hst").glob("*.fits"))[:2]
    for path in good:
        shutil.copy(path, folder / path.name)
    shutil.copy(good[0], os.path.join(os.fsencode(folder), BAD))
    os.chmod(os.path.join(os.fsencode(folder), BAD), 0o644)
    want = json.loads((CORPUS / "expected_hst_0729.json").read_text())[good[0].name]
    return folder, want


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_table_and_csv_files_hold_every_record(batch, tmp_path, fmt):
    folder, want = batch
    out = tmp_path / f"out.{fmt}"
    proc = run_cli("bestrefs", str(folder), "--context", "hst_0729.pmap", "--format", fmt, "-q",
                   "--output", str(out), "-v")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")  # valid UTF-8 throughout
    escaped = f"{folder}/bad\\xffname\\xe9_raw.fits"
    if fmt == "csv":
        rows = [r for r in csv.reader(text.splitlines()) if r[0] == escaped]
        assert {r[2]: r[3] for r in rows} == want
        assert len(list(csv.reader(text.splitlines()))) == 1 + 3 * len(want)
    else:
        lines = [line for line in text.splitlines() if line.startswith(escaped + "  ")]
        assert len(lines) == len(want)
        assert len(text.splitlines()) == 3 * len(want)


def test_jsonl_keeps_the_name_recoverable(batch, tmp_path):
    folder, want = batch
    proc = run_cli("bestrefs", str(folder), "--context", "hst_0729.pmap", "--format", "jsonl", "-q")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    names = {os.fsencode(r["path"]) for r in records}
    assert os.path.join(os.fsencode(folder), BAD) in names
