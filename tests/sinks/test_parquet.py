"""--format parquet: typed rows per dataset x type that equal the JSON output (issue #13)."""

from __future__ import annotations

import io
import json
import os
import pty
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crds_async.engine.results import DatasetResult
from crds_async.sinks.parquet import ParquetSink, answer_text, type_problems
from tests.conftest import CORPUS
from tests.sinks.cli import crds_batch, run_cli

CONTEXT, OLD = "hst_0729.pmap", "hst_0700.pmap"


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """60 corpus datasets (some with failed types) and one file that is not FITS."""
    folder = tmp_path_factory.mktemp("parquet")
    for path in sorted((CORPUS / "hst").glob("*.fits"))[::5]:
        shutil.copy(path, folder / path.name)
    (folder / "broken_raw.fits").write_text("this is not FITS\n" * 10)
    return folder


def _run(batch, tmp_path, fmt, *extra):
    out = tmp_path / f"out.{fmt}"
    proc = run_cli("bestrefs", str(batch), "--context", CONTEXT, "--format", fmt, "--output", str(out), "-q", *extra)
    assert proc.returncode == 1, proc.stderr[-2000:]  # the broken file and failed types
    return out


def test_rows_equal_the_json_output(batch, tmp_path):
    want = json.loads(_run(batch, tmp_path, "json").read_text())
    table = pq.read_table(_run(batch, tmp_path, "parquet"))
    assert table.schema.field("changed").type == pa.bool_()
    assert all(table.schema.field(c).type == pa.string()
               for c in ("dataset", "instrument", "reftype", "old", "new", "status", "error"))
    rows = table.to_pylist()
    got: dict[str, dict] = {}
    for row in rows:
        if row["reftype"] is not None:
            got.setdefault(row["dataset"], {})[row["reftype"]] = row["new"]
            assert row["old"] is None and row["changed"] is None  # no --old-context
    assert got == want
    failed = [r for r in rows if r["reftype"] is None]
    assert [r["dataset"] for r in failed] == [str(batch / "broken_raw.fits")]
    assert failed[0]["status"] == "failed" and "broken_raw.fits" in failed[0]["error"]
    errors = [r for r in rows if r["status"] == "error"]
    assert errors and all(r["new"].startswith("NOT FOUND") and r["error"] == r["new"] for r in errors)
    assert {r["status"] for r in rows} == {"ok", "error", "failed"}
    assert not list(tmp_path.glob(".out.parquet.part-*"))


def test_changed_rows_equal_the_json_changes(batch, tmp_path):
    want = json.loads(_run(batch, tmp_path, "json", "--old-context", OLD).read_text())
    rows = pq.read_table(_run(batch, tmp_path, "parquet", "--old-context", OLD)).to_pylist()
    assert want  # the contexts differ for these datasets
    got: dict[str, dict] = {}
    for row in rows:
        if row["changed"]:
            got.setdefault(row["dataset"], {})[row["reftype"]] = {"old": row["old"], "new": row["new"]}
        elif row["reftype"] is not None:
            assert row["changed"] is False and row["old"] is not None
    assert got == want
    unchanged = [r for r in rows if r["changed"] is False and r["status"] == "ok"]
    assert any(r["old"] == r["new"] for r in unchanged)


def test_stdout_only_into_a_pipe(batch, tmp_path):
    proc = run_cli("bestrefs", str(batch), "--context", CONTEXT, "--format", "parquet", "-q")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "--format parquet needs --output" in proc.stderr
    piped = run_cli("bestrefs", str(batch), "--context", CONTEXT, "--format", "parquet", "--output", "-", "-q",
                    text=False)
    assert piped.returncode == 1
    table = pq.read_table(io.BytesIO(piped.stdout))
    assert table.num_rows > 60
    leader, follower = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
        tty = subprocess.run(crds_batch() + ["bestrefs", str(batch), "--context", CONTEXT, "--format", "parquet",
                                             "--output", "-"], stdout=follower, stderr=subprocess.PIPE,
                             text=True, env=env, timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    assert tty.returncode == 2 and "not written to a terminal" in tty.stderr


def test_row_groups_keep_memory_flat_and_the_file_appears_complete(tmp_path):
    target = tmp_path / "rows.parquet"
    sink = ParquetSink.to_path(target, row_group_rows=100)
    for n in range(1000):
        sink.write(DatasetResult(f"d{n}", "wfc3", {f"t{k}": f"f{n}_{k}.fits" for k in range(3)}))
        assert len(sink._rows["dataset"]) < 100 + 3  # flushed a row group at a time
    assert not target.exists()  # nothing seen before close
    sink.close()
    meta = pq.ParquetFile(target).metadata
    assert meta.num_rows == 3000 and meta.num_row_groups >= 29
    again = ParquetSink.to_path(target)
    again.write(DatasetResult("x", "wfc3", {"t": "f.fits"}))
    again.abort()
    assert pq.ParquetFile(target).metadata.num_rows == 3000  # the old file stays; no temp left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.parquet"]


def test_ties_problems_and_bad_names():
    assert answer_text(("a.fits", "b.fits")) == '["a.fits", "b.fits"]'
    assert answer_text(os.fsdecode(b"x\xff.fits")) == "x\\xff.fits"
    result = DatasetResult("p", "wfc3", {"a": "bad.fits", "b": "NOT FOUND oops", "c": "ok.fits"},
                           problems=["p: a: recommended reference 'bad.fits' is designated scientifically invalid",
                                     "p: b: NOT FOUND oops"])
    assert type_problems(result) == {"a": "recommended reference 'bad.fits' is designated scientifically invalid",
                                     "b": "NOT FOUND oops"}
    buffer = io.BytesIO()
    sink = ParquetSink(buffer)
    sink.write(result)
    sink.write(DatasetResult(os.fsdecode(b"/d/\xfe_raw.fits"), error="cannot read"))
    sink.close()
    rows = pq.read_table(io.BytesIO(buffer.getvalue())).to_pylist()
    assert [(r["reftype"], r["status"]) for r in rows] == [("a", "error"), ("b", "error"), ("c", "ok"),
                                                           (None, "failed")]
    assert rows[-1]["dataset"] == "/d/\\xfe_raw.fits"
