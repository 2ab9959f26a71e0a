"""``crds-batch bestrefs --report DIR`` from the command line writes the page and its plots."""

from __future__ import annotations

import json

from tests.cli.test_bestrefs import run_cli
from tests.conftest import CORPUS


def test_the_command_writes_the_report_beside_its_output(tmp_path):
    files = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:40]]
    report, out = tmp_path / "report", tmp_path / "out.json"
    proc = run_cli("bestrefs", *files, "-o", "hst_0700.pmap", "-n", "hst_0729.pmap", "--report", str(report),
                   "--format", "json", "--output", str(out), "-q")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    changes = json.loads(out.read_text())  # with an old context: the datasets whose answers change
    assert changes and set(changes) <= set(files)
    page = (report / "index.html").read_text()
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs and all(name in page for name in pngs)
    assert all((report / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for name in pngs)
