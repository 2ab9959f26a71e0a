"""Fuzzed dataset headers through ``crds-batch bestrefs`` (issue #17): no hang, no traceback,
every good dataset still answered, memory bounded.

Thousands of files are derived, with a fixed seed, from corpus datasets (flipped bytes,
truncations, swapped cards, hostile BITPIX/NAXIS/NAXISn/PCOUNT/GCOUNT values, unterminated
strings, removed END cards, cards only astropy reads, and mixtures of these) and written into
``tmp_path``, next to unmodified copies of their sources.  Each observatory's files go through
one ``crds-batch bestrefs`` run; the test checks that:

- the batch ends within its timeout and every file has exactly one record (answers or error);
- stderr holds one-line dataset errors and the summary: no traceback, no warning;
- every unmodified copy gets exactly the answers of ``expected_<context>.json``;
- the batch's peak RSS (the child and its workers, from ``wait4``) stays bounded.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_bestrefs import crds_batch
from tests.conftest import CACHE, CORPUS

SEED = 17
SOURCES = 24  # corpus files per observatory that are mutated (and also kept unmodified)
MUTANTS = 1200  # per observatory
PEAK_RSS_LIMIT_MB = 300
STRUCTURAL = (b"BITPIX  ", b"NAXIS   ", b"NAXIS1  ", b"NAXIS2  ", b"NAXIS3  ", b"PCOUNT  ", b"GCOUNT  ")
HOSTILE_VALUES = ("-1", "-2880", "0", "1", "999", "1000", "7", "-7", "12", str(2 ** 62), "-" + str(2 ** 62),
                  "'abc'", "1.5", "", "T", "99999999999999999999999999999")
ODD_CARDS = ("CONTINUE  'tail of a long string'", "HIERARCH ESO DET CHIP = 'x'", "CPLXVAL = (1.0, 2.0)",
             "UNDEFVAL=", "BADVALUE= what is this", "lowercas= 'lower'", "END     trailing text")


def _cards(data: bytes) -> list[int]:
    """Offsets of the 80-byte cards that look like header text (printable ASCII keyword fields)."""
    return [at for at in range(0, len(data) - 79, 80)
            if all(32 <= byte < 127 for byte in data[at:at + 8]) and data[at:at + 1] != b" "]


def _set_card(data: bytearray, at: int, text: str) -> None:
    data[at:at + 80] = text.ljust(80)[:80].encode("ascii")


def _mutate(rng: random.Random, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        cards = _cards(data)
        kind = rng.randrange(8)
        if kind == 0:  # flipped bytes, mostly in the headers
            for _flip in range(rng.randint(1, 8)):
                at = rng.choice(cards) + rng.randrange(80) if cards and rng.random() < 0.8 else rng.randrange(len(data))
                data[at] = rng.randrange(256)
        elif kind == 1:  # truncation
            del data[rng.randrange(len(data)):]
            if not data:
                data += b"SIMPLE  =                    T"
        elif kind == 2 and len(cards) > 1:  # two cards swapped
            first, second = rng.sample(cards, 2)
            data[first:first + 80], data[second:second + 80] = data[second:second + 80], data[first:first + 80]
        elif kind in (3, 4):  # a hostile structural value
            targets = [at for at in cards if bytes(data[at:at + 8]) in STRUCTURAL]
            if targets:
                at = rng.choice(targets)
                _set_card(data, at, f"{bytes(data[at:at + 8]).decode()}= {rng.choice(HOSTILE_VALUES):>20}")
        elif kind == 5:  # an unterminated string
            quoted = [at for at in cards if data[at + 10:at + 11] == b"'"]
            if quoted:
                at = rng.choice(quoted)
                data[at + 11:at + 80] = bytes(data[at + 11:at + 80]).replace(b"'", b" ")
        elif kind == 6:  # the END card removed
            ends = [at for at in cards if data[at:at + 80] == b"END".ljust(80)]
            if ends:
                _set_card(data, rng.choice(ends), "COMMENT   no end here")
        elif cards:  # a card only astropy reads, or an odd one
            _set_card(data, rng.choice(cards), rng.choice(ODD_CARDS))
    return bytes(data)


def _hostile_asdf(directory: Path) -> None:
    head = "#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n--- !core/asdf-1.1.0\n"
    laughs = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    (directory / "zz_laughs.asdf").write_text(head + "\n".join(laughs) + "\n...\n")
    (directory / "zz_loop.asdf").write_text(head + "loop: &loop [1, *loop]\n...\n")


#: Runs the batch from a small process and reports its resource use: Linux keeps, across
#: exec, the high-water RSS of the process that forked, so a batch forked straight from a
#: pytest process grown by earlier tests would report that process's size, not its own.
_LAUNCHER = """
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1], "wb"))
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([code, use.ru_maxrss, use.ru_utime, use.ru_stime]))
"""


def _run_batch(args: list[str], out: Path, err: Path, timeout: float) -> tuple[int, object]:
    """Run crds-batch; its exit status and resource usage (the batch and its reaped workers)."""
    import json
    from types import SimpleNamespace

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_READONLY_CACHE="1", CRDS_MODE="local")
    cmd = [sys.executable, "-c", _LAUNCHER, str(err), *crds_batch(), *args, "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the batch and its workers too
        proc.communicate()
        pytest.fail(f"crds-batch bestrefs {' '.join(args[:2])} did not finish within {timeout} s")
    code, maxrss, utime, stime = json.loads(stdout.strip().splitlines()[-1])
    return code, SimpleNamespace(ru_maxrss=maxrss, ru_utime=utime, ru_stime=stime)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("observatory, context", [("hst", "hst_0729"), ("jwst", "jwst_0541")])
def test_a_batch_of_fuzzed_headers_never_hangs_or_sinks(tmp_path, observatory, context):
    rng = random.Random(f"{SEED}-{observatory}")
    sources = rng.sample(sorted((CORPUS / observatory).glob("*.fits")), SOURCES)
    good, mutants = tmp_path / "good", tmp_path / "mutants"
    good.mkdir()
    mutants.mkdir()
    originals = {}
    for path in sources:
        originals[path.name] = path.read_bytes()
        (good / path.name).write_bytes(originals[path.name])
    names = sorted(originals)
    for index in range(MUTANTS):
        name = rng.choice(names)
        (mutants / f"m{index:05d}_{name}").write_bytes(_mutate(rng, originals[name]))
    _hostile_asdf(mutants)
    written = {str(p) for p in (*good.iterdir(), *mutants.iterdir())}

    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    status, usage = _run_batch(["bestrefs", str(good), str(mutants), "--context", f"{context}.pmap",
                                "--format", "jsonl", "-j", "2", "--all-types"], out, err, timeout=240)
    stderr = err.read_text(errors="replace")
    assert status in (0, 1), stderr[-3000:]
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(written) and {r["path"] for r in records} == written  # every file, once

    want = json.loads((CORPUS / f"expected_{context}.json").read_text())
    answered = {r["path"]: r for r in records if "bestrefs" in r}
    for name in names:
        assert answered[str(good / name)]["bestrefs"] == want[name], name

    errors = [r["error"] for r in records if "error" in r]
    assert all("\n" not in e and e.startswith(str(tmp_path)) for e in errors), [e for e in errors if "\n" in e][:3]
    error_lines = [line for line in stderr.splitlines() if line.startswith("ERROR:")]
    assert len(error_lines) >= len(errors)
    assert not [line for line in stderr.splitlines()
                if line.strip() and not line.startswith(("ERROR:", "crds-batch bestrefs:"))], stderr[-3000:]
    peak_mb = usage.ru_maxrss / 1024
    assert peak_mb < PEAK_RSS_LIMIT_MB, peak_mb
    print(f"\n{observatory}: {len(written)} files ({MUTANTS} mutants), {len(errors)} dataset errors, "
          f"{len(answered)} answered, peak RSS {peak_mb:.0f} MB, CPU {usage.ru_utime + usage.ru_stime:.1f} s")
