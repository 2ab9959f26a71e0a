"""crds-batch bestrefs --journal: killed with SIGKILL mid-run, the same command again ends with
outputs identical, byte for byte, to an uninterrupted run's, evaluating only what the journal
did not hold; a journal of other arguments or other inputs is refused.

The kill lands mid-run deterministically: the batch reads its dataset list from a pipe that
this test fills only partly, so the run cannot finish before it is killed; the test waits
until the journal holds some chunks (polling its size), then kills it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from crds_async.cli.bestrefs_output import FORMATS
from tests.cli.test_bestrefs import crds_batch, run_cli
from tests.conftest import CACHE, CORPUS

#: the corpus's 300 HST datasets, linked four times under other names: 1,200 datasets
COPIES = 4
#: what the killed run is given of the list before it is killed: chunks of 32, 64, 128, 256 and
#: 512 datasets, so that (with -j 2: four chunks in flight) two finished chunks are journaled
#: before the batch waits for the sixth chunk's input
GIVEN = 1000
SUMMARY = re.compile(r"journal .*: (\d+) datasets from the journal, (\d+) evaluated; removed")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[str, int]:
    """The dataset list (one path a line) and its length."""
    root = tmp_path_factory.mktemp("resume")
    paths = []
    for copy in range(COPIES):
        folder = root / f"copy{copy}"
        folder.mkdir()
        for source in sorted((CORPUS / "hst").glob("*.fits")):
            (folder / source.name).symlink_to(source)
            paths.append(str(folder / source.name))
    return "".join(p + "\n" for p in paths), len(paths)


def _args(fmt: str, out, journal, *extra) -> list[str]:
    return ["bestrefs", "-", "--context", "hst_0729.pmap", "--format", fmt, "--output", str(out),
            "-j", "2", "--journal", str(journal), *extra]


def _records(journal) -> int:
    try:
        return journal.read_bytes().count(b"\n") - 1  # less the header
    except FileNotFoundError:
        return 0


def _killed_run(args: list[str], listing: str, journal, records: int = 2) -> None:
    """Start the batch, give it the first GIVEN datasets, kill -9 it once the journal holds
    ``records`` chunks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_READONLY_CACHE="1")
    proc = subprocess.Popen(crds_batch() + args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write("".join(listing.splitlines(keepends=True)[:GIVEN]).encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
        while _records(journal) < records:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no chunk was journaled"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stderr.close()


@pytest.mark.parametrize("fmt", [f for f in ("json", "jsonl", "parquet") if f in FORMATS])
def test_a_killed_run_resumed_writes_what_an_uninterrupted_run_writes(fmt, batch, tmp_path):
    listing, count = batch
    whole = run_cli(*_args(fmt, tmp_path / f"whole.{fmt}", tmp_path / "whole.journal"),
                    stdin=listing, env_extra={"CRDS_READONLY_CACHE": "1"})
    assert whole.returncode == 1, whole.stderr[-2000:]  # the corpus has datasets with error answers
    assert SUMMARY.search(whole.stderr).groups() == ("0", str(count))
    assert not (tmp_path / "whole.journal").exists()  # removed after a complete run

    out, journal = tmp_path / f"out.{fmt}", tmp_path / "run.journal"
    args = _args(fmt, out, journal)
    _killed_run(args, listing, journal)
    assert not out.exists()  # no half output (kill -9 leaves its hidden .part- temp file)
    left = list(tmp_path.glob(f".out.{fmt}.part-*"))
    journaled = _records(journal)

    resumed = run_cli(*args, stdin=listing, env_extra={"CRDS_READONLY_CACHE": "1"})
    assert resumed.returncode == whole.returncode, resumed.stderr[-2000:]
    assert out.read_bytes() == (tmp_path / f"whole.{fmt}").read_bytes()
    assert left and not any(path.exists() for path in left)  # the killed run's temp file, removed
    assert not list(tmp_path.glob(".*.part-*"))
    replayed, evaluated = map(int, SUMMARY.search(resumed.stderr).groups())
    assert replayed >= 32 + 64 and replayed + evaluated == count and journaled >= 2
    assert not journal.exists()
    # the same summary counts as the uninterrupted run's
    assert resumed.stderr.strip().splitlines()[-1].split(", ")[:3] == whole.stderr.strip().splitlines()[-1].split(", ")[:3]


def test_a_journal_of_other_arguments_or_inputs_is_refused(batch, tmp_path):
    listing, _count = batch
    out, journal = tmp_path / "out.json", tmp_path / "run.journal"
    _killed_run(_args("json", out, journal), listing, journal, records=1)
    before = journal.read_bytes()

    other_types = run_cli(*_args("json", out, journal, "--types", "biasfile"), stdin=listing,
                          env_extra={"CRDS_READONLY_CACHE": "1"})
    assert other_types.returncode == 2
    assert f"{journal}: journal of a different run (reftypes differ)" in other_types.stderr
    assert len([line for line in other_types.stderr.splitlines() if "journal" in line]) == 1

    lines = listing.splitlines(keepends=True)
    other_inputs = run_cli(*_args("json", out, journal), stdin="".join(lines[1:] + lines[:1]),
                           env_extra={"CRDS_READONLY_CACHE": "1"})
    assert other_inputs.returncode == 2
    assert f"{journal}: journal of different inputs (datasets 1 to " in other_inputs.stderr
    assert journal.read_bytes() == before and not out.exists()  # the journal is kept as it was

    same_file = run_cli(*_args("json", journal, journal), stdin=listing)
    assert same_file.returncode == 2 and "--journal and --output name the same file" in same_file.stderr
