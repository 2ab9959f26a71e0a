"""crds-batch rowdiff: the same row (and mode) report as the reference's crds rowdiff.

The reference runs once, in a subprocess, over every case; its numpy-2 value
reprs (``np.str_('yes')``, ``np.int16(5748)``) are reduced to the plain values
crds_async prints, and then the whole reports must be equal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crds_async.cli import main
from crds_async.reffiles.rowdiff import RowDiffError, render_cell, row_diff

from ..conftest import CACHE, SHARED, needs_reference

HST = SHARED / "refdata" / "hst"
SOURCE, CHANGED = HST / "test-source.fits", HST / "test-change-row1-valueLeft.fits"
DEAD = HST / "s7g1700gl_dead.fits"
DEAD_VARIANTS = ["bad_xsum", "dup1", "dup2", "good_xsum", "overlap"]

_RUNNER = """
import contextlib, io, json, sys
from crds.rowdiff import RowDiff
out = []
for a, b, options in json.loads(sys.stdin.read()):
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        try:
            print(RowDiff(a, b, **options))
        except Exception as exc:
            print("RAISED", type(exc).__name__)
    out.append(text.getvalue())
sys.stdout.write(json.dumps(out))
"""


def reference_rowdiffs(cases: list[tuple[Path, Path, dict]]) -> list[str]:
    """What the reference's ``crds rowdiff A B [switches]`` prints for each case (one process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_SERVER_URL="https://hst-crds.stsci.edu")
    payload = json.dumps([[str(a), str(b), options] for a, b, options in cases])
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=payload, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def plain(text: str) -> str:
    """The reference's numpy-2 scalar reprs reduced to their values: ``np.int16(5748)`` -> ``5748``."""
    return re.sub(r"np\.[a-z_0-9]+\(([^()]*)\)", r"\1", text)


def ours(a: Path, b: Path, options: dict, capsys) -> str:
    argv = ["rowdiff", str(a), str(b)]
    for switch in ("fields", "ignore_fields", "mode_fields"):
        if options.get(switch):
            argv.append(f"--{switch.replace('_', '-')}={','.join(options[switch])}")
    assert main(argv) == 0
    return capsys.readouterr().out


def _edited_dead_tables(tmp: Path) -> dict[str, Path]:
    """Copies of s7g1700gl_dead.fits (10 rows) with rows removed, added, changed and reordered."""
    from astropy.io import fits

    out = {}

    def save(name: str, edit) -> None:
        with fits.open(DEAD) as hdul:
            hdul = fits.HDUList([hdu.copy() for hdu in hdul])
        data = np.array(hdul[1].data)  # a plain, contiguous copy of the records
        hdul[1] = fits.BinTableHDU(np.ascontiguousarray(edit(data)), header=hdul[1].header)
        path = tmp / f"dead_{name}.fits"
        hdul.writeto(path)
        out[name] = path

    def changed(data):
        data["LIVETIME"][3] = 0.5
        data["OBS_RATE"][7] = 12345.0
        return data

    def segment_changed(data):
        data["SEGMENT"][8:] = b"FUVC"
        return data

    save("removed", lambda data: data[np.r_[0:2, 4:10]])
    save("added", lambda data: np.concatenate([data, data[2:5]]))
    save("changed", changed)
    save("reordered", lambda data: data[::-1])
    save("segment", segment_changed)
    return out


def _cases(tmp: Path) -> list[tuple[Path, Path, dict]]:
    edited = _edited_dead_tables(tmp)
    cases: list[tuple[Path, Path, dict]] = [
        (SOURCE, CHANGED, {}),
        (CHANGED, SOURCE, {}),
        (SOURCE, CHANGED, {"fields": ["valueleft", "wordage"]}),
        (SOURCE, CHANGED, {"fields": ["valueright", "wordage"]}),
        (SOURCE, CHANGED, {"ignore_fields": ["valueleft"]}),
        (SOURCE, CHANGED, {"ignore_fields": ["wordage"]}),
        (SOURCE, CHANGED, {"mode_fields": ["modeup", "modedown"]}),
        (SOURCE, CHANGED, {"mode_fields": ["modeup"], "fields": ["valueleft"]}),
        (SOURCE, SOURCE, {}),
    ]
    cases += [(DEAD, HST / f"s7g1700gl_dead_{v}.fits", {}) for v in DEAD_VARIANTS]
    cases.append((DEAD, HST / "s7g1700hl_dead.fits", {}))
    for name, path in edited.items():
        cases.append((DEAD, path, {}))
        cases.append((path, DEAD, {}))
    cases += [
        (DEAD, edited["changed"], {"fields": ["segment", "obs_rate"]}),
        (DEAD, edited["changed"], {"ignore_fields": ["livetime"]}),
        (DEAD, edited["removed"], {"mode_fields": ["segment", "obs_rate"]}),
        (DEAD, edited["added"], {"mode_fields": ["segment", "obs_rate"]}),
        (DEAD, edited["changed"], {"mode_fields": ["segment", "obs_rate"]}),
        (DEAD, edited["segment"], {"mode_fields": ["segment", "obs_rate"], "ignore_fields": ["livetime"]}),
    ]
    return cases


@needs_reference
def test_same_reports_as_reference(tmp_path: Path, capsys) -> None:
    cases = _cases(tmp_path)
    expected = reference_rowdiffs(cases)
    assert not [e for e in expected if e.startswith("RAISED")], expected
    reported_rows = 0
    for (a, b, options), reference in zip(cases, expected):
        got = ours(a, b, options, capsys)
        assert got == plain(reference), f"{a.name} vs {b.name} {options}"
        reported_rows += "Summary:" in got or "Changed Modes" in got or "Missing Modes" in got
    assert reported_rows >= 10  # the cases do exercise reported differences, not only 'no differences'


def test_changed_row_is_reported(capsys) -> None:
    report = row_diff(SOURCE, CHANGED)
    assert [d.hdu for d in report.rows] == [1]
    assert report.rows[0].rows() == {"removed": [], "added": [], "changed_a": [1], "changed_b": [1]}
    assert report.rows[0].summary() == ["a rows 1-1 differ from b rows 1-1"]
    assert "-'yes', 'no', 5748, 6357.9727, 'ferly'" in report.text()
    assert "+'yes', 'no', -1, 6357.9727, 'ferly'" in report.text()
    # ignoring the changed column, or comparing only unchanged ones, leaves no differences
    assert not row_diff(SOURCE, CHANGED, ignore_fields=["VALUELEFT"]).rows
    assert not row_diff(SOURCE, CHANGED, fields=["wordage"]).rows
    assert row_diff(SOURCE, SOURCE).text() == "    HDU extension #1 contains no differences"


def test_removed_and_added_rows(tmp_path: Path) -> None:
    edited = _edited_dead_tables(tmp_path)
    removed = row_diff(DEAD, edited["removed"]).rows[0]
    assert removed.rows()["removed"] == [2, 3] and removed.summary() == ["Remove from a rows 2-3"]
    added = row_diff(DEAD, edited["added"]).rows[0]
    assert added.rows()["added"] == [10, 11, 12] and added.summary() == ["Add to b rows 10-12"]


def test_errors_are_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(RowDiffError, match="cannot be used together"):
        row_diff(SOURCE, CHANGED, fields=["a"], ignore_fields=["b"])
    with pytest.raises(RowDiffError, match="not in both tables"):
        row_diff(SOURCE, CHANGED, mode_fields=["nosuchcolumn"])
    not_fits = tmp_path / "x.fits"
    not_fits.write_text("hello")
    assert main(["rowdiff", str(not_fits), str(SOURCE)]) == 2
    assert main(["rowdiff", str(tmp_path / "missing.fits"), str(SOURCE)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "x.fits: not a readable FITS file" in err[0] and "missing.fits: no such file" in err[1]


def test_hdu_mismatch_is_reported(tmp_path: Path) -> None:
    from astropy.io import fits

    extra = tmp_path / "extra.fits"
    with fits.open(SOURCE) as hdul:
        fits.HDUList([hdu.copy() for hdu in hdul] + [fits.ImageHDU(np.zeros(3))]).writeto(extra)
    report = row_diff(SOURCE, extra)
    assert report.text() == "rowdiff: HDUs have different lengths: FITS A = 2, FITS B = 3\n"


def test_render_cell() -> None:
    assert render_cell(np.str_("yes")) == "'yes'"
    assert render_cell(np.int16(-1)) == "-1"
    assert render_cell(np.float32(6357.9727)) == "6357.9727"
    assert render_cell(np.bool_(True)) == "True"
    assert render_cell(np.arange(3)) == "[0, 1, 2]"
