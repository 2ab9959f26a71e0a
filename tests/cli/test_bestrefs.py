"""crds-batch bestrefs end to end, through the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CACHE, CORPUS


def crds_batch() -> list[str]:
    script = Path(sys.executable).with_name("crds-batch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "crds_async"]


def run_cli(*args: str, stdin: str | None = None, env_extra=None, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env["CRDS_PATH"] = str(CACHE)
    env.update(env_extra or {})
    return subprocess.run(crds_batch() + list(args), capture_output=True, text=True, env=env, input=stdin,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("observatory, context", [("hst", "hst_0729"), ("jwst", "jwst_0541")])
def test_json_output_equals_the_reference_answers(observatory, context):
    """With --all-types, every type of each instrument's rules: what the corpus answers hold."""
    proc = run_cli("bestrefs", str(CORPUS / observatory), "--context", f"{context}.pmap", "--format", "json",
                   "--all-types")
    assert proc.returncode == 1, proc.stderr[-2000:]  # the corpus has datasets with error answers
    got = {os.path.basename(path): answers for path, answers in json.loads(proc.stdout).items()}
    want = json.loads((CORPUS / f"expected_{context}.json").read_text())
    assert got == want
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("crds-batch bestrefs: 300 files, 300 datasets,") and " s " in summary


def test_jsonl_csv_and_table_carry_the_same_answers(tmp_path):
    sample = sorted((CORPUS / "hst").glob("*.fits"))[:12]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in sample) + "\n")
    jsonl = run_cli("bestrefs", f"@{listing}", "--context", "hst_0729.pmap", "--format", "jsonl", "-q")
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in sample]  # input order is kept
    want = json.loads((CORPUS / "expected_hst_0729.json").read_text())
    for record in records:
        assert record["bestrefs"] == want[os.path.basename(record["path"])]
    out = tmp_path / "out.csv"
    csv_run = run_cli("bestrefs", f"@{listing}", "--context", "hst_0729.pmap", "--format", "csv", "--output", str(out))
    assert csv_run.stdout == "" and out.exists()
    rows = out.read_text().splitlines()
    assert rows[0] == "path,instrument,reftype,answer"
    assert len(rows) - 1 == sum(len(want[p.name]) for p in sample)
    assert not list(tmp_path.glob("out.csv.part-*"))
    table = run_cli("bestrefs", "-", "--context", "hst_0729.pmap", stdin=listing.read_text())
    first = want[sample[0].name]
    shown = [line for line in table.stdout.splitlines() if line.startswith(str(sample[0]))]
    assert len(shown) == sum(1 for a in first.values() if a != "NOT FOUND n/a")


def test_bad_inputs_get_one_line_each_and_the_rest_is_processed(tmp_path):
    good = sorted((CORPUS / "hst").glob("*.fits"))[:3]
    batch = tmp_path / "batch"
    batch.mkdir()
    for path in good:
        shutil.copy(path, batch / path.name)
    (batch / "empty.fits").write_bytes(b"")
    (batch / "text.fits").write_text("this is not FITS\n" * 100)
    raw = good[0].read_bytes()
    (batch / "truncated.fits").write_bytes(raw[:4000])
    no_instrument = bytearray(raw[:2880 * 4])
    at = bytes(no_instrument).find(b"INSTRUME=")
    no_instrument[at:at + 8] = b"NOINSTR "
    (batch / "noinstrume.fits").write_bytes(bytes(no_instrument) + raw[2880 * 4:])
    unknown = bytes(raw).replace(b"INSTRUME= 'WFC3    '", b"INSTRUME= 'HUBBLE2 '", 1)
    (batch / "unknown.fits").write_bytes(unknown)
    (batch / "dangling.fits").symlink_to(tmp_path / "nowhere.fits")
    os.mkfifo(batch / "pipe.fits")  # must not hang the reader
    proc = run_cli("bestrefs", str(batch), "--context", "hst_0729.pmap",
                   "--format", "json")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    for name, fragment in [("empty.fits", "empty file"), ("text.fits", "not a fits or asdf file"),
                           ("truncated.fits", "truncated"), ("noinstrume.fits", "instrument"),
                           ("dangling.fits", "no such file"), ("pipe.fits", "not a regular file")]:
        mine = [line for line in errors if f"/{name}:" in line]
        assert len(mine) == 1, (name, errors)
        assert fragment in mine[0].lower(), mine
    if unknown != raw:
        assert any("/unknown.fits:" in line and "Unknown instrument 'hubble2'" in line for line in errors), errors
    answered = json.loads(proc.stdout)
    assert {os.path.basename(p) for p in answered} == {p.name for p in good}


def test_usage_errors_exit_2():
    assert run_cli("bestrefs").returncode == 2
    # as the reference: an old context and the recorded references are two comparisons, not one
    assert run_cli("bestrefs", str(CORPUS / "hst"), "-o", "hst_0600.pmap", "-c").returncode == 2
    proc = run_cli("bestrefs", str(CORPUS / "hst"), "--context", "hst_9999.pmap")
    assert proc.returncode == 2 and "hst_9999.pmap" in proc.stderr


def test_context_defaults_to_the_operational_context():
    one = sorted((CORPUS / "jwst").glob("*.fits"))[0]
    proc = run_cli("bestrefs", str(one), "--format", "json")
    assert "(context jwst_0541.pmap)" in proc.stderr
    env_proc = run_cli("bestrefs", str(one), "--format", "json", env_extra={"CRDS_CONTEXT": "jwst_0500.pmap"})
    assert "(context jwst_0500.pmap)" in env_proc.stderr


def test_sync_references_downloads_what_the_batch_needs(tmp_path):
    """--sync-references against the project's own server fills an empty references cache, verified."""
    import hashlib

    from tests.fetch.helpers import add_references, make_served_cache, server_process

    sample = sorted((CORPUS / "hst").glob("*.fits"))[:4]
    want = json.loads((CORPUS / "expected_hst_0729.json").read_text())
    needed = sorted({a for p in sample for a in want[p.name].values() if not a.startswith("NOT FOUND")})
    served = make_served_cache(tmp_path / "served", CACHE)
    content = add_references(served, "hst", needed)
    client = make_served_cache(tmp_path / "client", CACHE)  # rules present, no references
    with server_process(served) as url:
        proc = run_cli("bestrefs", *map(str, sample), "--context", "hst_0729.pmap", "--sync-references", "-q",
                       env_extra={"CRDS_PATH": str(client), "CRDS_SERVER_URL": url, "CRDS_MODE": "local"})
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    got = {p.name: p for p in (client / "references").rglob("*") if p.is_file()}
    assert set(needed) <= set(got), set(needed) - set(got)
    for name in needed:
        assert hashlib.sha1(got[name].read_bytes()).hexdigest() == hashlib.sha1(content[name]).hexdigest()


def test_nothing_to_read_says_so_and_succeeds(tmp_path):
    """An empty directory (or a glob matching nothing) is one clear line, not an observatory puzzle."""
    proc = run_cli("bestrefs", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (f"crds-batch bestrefs: no dataset files in {tmp_path} "
                                   "(directories are searched for *.fits, *.fit, *.fts, *.asdf)")
    assert proc.stdout == ""


def test_the_observatory_comes_from_the_first_readable_dataset(tmp_path):
    """Without --context or CRDS_OBSERVATORY, unreadable leading files are passed over to find
    the observatory, and reported by the batch like any bad input; alone, they are named."""
    missing = tmp_path / "missing_raw.fits"
    (tmp_path / "junk_raw.fits").write_text("not a header")
    good = sorted((CORPUS / "hst").glob("*.fits"))[0]
    proc = run_cli("bestrefs", str(missing), str(tmp_path / "junk_raw.fits"), str(good), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert list(json.loads(proc.stdout)) == [str(good)]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {missing}: no such file",
                      f"ERROR: {tmp_path / 'junk_raw.fits'}: not a FITS or ASDF file"]
    assert "context hst_" in proc.stderr.splitlines()[-1]

    alone = run_cli("bestrefs", str(missing))
    assert alone.returncode == 2
    assert alone.stderr.strip() == (f"crds-batch bestrefs: error: cannot tell the observatory ({missing}: no such "
                                    "file): pass --context (e.g. hst_0729.pmap) or set CRDS_OBSERVATORY")


def test_a_symbolic_context_without_a_cache_names_where_it_looked(tmp_path):
    """CRDS_PATH at an empty folder: the error names the server_config it needed and the fix."""
    good = sorted((CORPUS / "hst").glob("*.fits"))[0]
    proc = run_cli("bestrefs", str(good), env_extra={"CRDS_PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"crds-batch bestrefs: error: 'hst-operational' is resolved from "
                                   f"{tmp_path / 'config' / 'hst' / 'server_config'}, which does not exist: "
                                   "set CRDS_PATH to a CRDS cache, or name a .pmap")


def test_rules_missing_from_the_cache_are_fetched_from_the_server(tmp_path):
    """With an empty cache and a server (CRDS_MODE auto, the default), bestrefs fetches the
    context's rules first, as the reference's bestrefs does, then answers as the reference; the
    next run finds them cached.  CRDS_MODE=local never asks the server."""
    from tests.fetch.helpers import make_served_cache, server_process

    sample = sorted((CORPUS / "hst").glob("*.fits"))[:6]
    want = json.loads((CORPUS / "expected_hst_0729.json").read_text())
    served = make_served_cache(tmp_path / "served", CACHE)
    empty = tmp_path / "client"
    empty.mkdir()
    with server_process(served) as url:
        local = run_cli("bestrefs", *map(str, sample), "--format", "json",
                        env_extra={"CRDS_PATH": str(empty), "CRDS_SERVER_URL": url, "CRDS_MODE": "local"})
        assert local.returncode == 2 and "hst-operational" in local.stderr and "which does not exist" in local.stderr
        assert not any(empty.rglob("*.pmap"))

        env = {"CRDS_PATH": str(empty), "CRDS_SERVER_URL": url}
        first = run_cli("bestrefs", *map(str, sample), "--format", "json", env_extra=env)
        assert first.returncode in (0, 1), first.stderr[-2000:]
        assert f"fetching the rules of hst-operational from {url}" in first.stderr
        assert json.loads(first.stdout) == {str(p): want[p.name] for p in sample}
        assert (empty / "mappings" / "hst" / "hst_0729.pmap").is_file()
        assert (empty / "config" / "hst" / "server_config").is_file()

        again = run_cli("bestrefs", *map(str, sample), "--format", "json", "--context", "hst_0729.pmap",
                        env_extra=env)
        assert "fetching" not in again.stderr
        assert json.loads(again.stdout) == json.loads(first.stdout)


def _writable_copies(tmp_path, observatory: str, count: int) -> list[Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    out = []
    for path in sorted((CORPUS / observatory).glob("*.fits"))[:count]:
        shutil.copy(path, folder / path.name)
        os.chmod(folder / path.name, 0o644)
        out.append(folder / path.name)
    return out


def test_a_closed_stdout_does_not_stop_the_updates(tmp_path):
    """``crds-batch bestrefs ... --update-bestrefs | head -1``: every dataset is still updated,
    the closed output is said, and the exit status is not 0."""
    from astropy.io import fits

    copies = _writable_copies(tmp_path, "hst", 150)  # more output than a pipe holds
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env["CRDS_PATH"] = str(CACHE)
    reader, writer = os.pipe()
    proc = subprocess.Popen(crds_batch() + ["bestrefs", str(copies[0].parent), "--context", "hst_0729.pmap",
                                            "-u", "-v", "-j", "1"],
                            stdout=writer, stderr=subprocess.PIPE, env=env, text=True)
    os.close(writer)
    with os.fdopen(reader) as head:
        head.readline()  # what `head -1` reads, then it exits
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "standard output was closed" in stderr
    assert "Traceback" not in stderr
    assert all(fits.getheader(p, 0).get("CRDS_CTX") == "hst_0729.pmap" for p in copies)


def test_update_bestrefs_leaves_headers_that_hold_the_answers_and_counts_them(tmp_path):
    """The second run writes nothing (same bytes, same mtime) and says so; update counts are
    the reference's: every update of each run, written or not."""
    copies = _writable_copies(tmp_path, "hst", 6)
    first = run_cli("bestrefs", *map(str, copies), "-n", "hst_0729.pmap", "-u", "--print-update-counts")
    assert first.returncode in (0, 1), first.stderr
    assert ", 6 headers updated, 0 already held the answers," in first.stderr
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in copies}
    again = run_cli("bestrefs", *map(str, copies), "-n", "hst_0729.pmap", "-u", "--print-update-counts")
    assert ", 0 headers updated, 6 already held the answers," in again.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in copies} == before
    counts = [t[t.index("Updated exposure counts:"):t.index("crds-batch bestrefs:")] for t in (first.stderr, again.stderr)]
    assert counts[0] == counts[1] and "'WFC3': {" in counts[0]


def test_reference_style_commands_print_only_the_reports(tmp_path):
    """-f/--files alone or a --print-* switch: stdout holds what crds bestrefs prints there
    (nothing, or the reports); --format brings the table (or json) back."""
    files = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:3]]
    plain = run_cli("bestrefs", "-f", *files, "-n", "hst_0729.pmap")
    assert plain.stdout == "" and plain.returncode == 0
    lines = run_cli("bestrefs", "--files", *files, "-n", "hst_0729.pmap", "--print-new-references").stdout.splitlines()
    assert lines and all(line.split()[0] in files and line.split()[3] == "none" for line in lines)
    as_json = run_cli("bestrefs", "-f", *files, "-n", "hst_0729.pmap", "--format", "json")
    assert set(json.loads(as_json.stdout)) == set(files)


def test_skip_types_and_allow_bad_references():
    files = [str(p) for p in sorted((CORPUS / "hst").glob("*.fits"))[:3]]
    proc = run_cli("bestrefs", *files, "-n", "hst_0729.pmap", "-k", "darkfile", "biasfile", "--format", "jsonl",
                   "--allow-bad-references", "--allow-bad-rules")
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert records and all("darkfile" not in r["bestrefs"] and "biasfile" not in r["bestrefs"] for r in records)
    assert all("pfltfile" in r["bestrefs"] for r in records)
