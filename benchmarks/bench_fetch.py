"""Benchmark: pre-warming a cache with 500 references from a server with 50 ms latency.

In one run:

1. ``crds sync --files ...`` (the reference, crds 14.0.3, when installed) and
   ``crds-batch sync --files ...`` against ``crds-batch serve --latency 0.05``,
   each into an empty cache: wall times and their ratio (target >= 20x);
2. ``crds-batch sync`` against the same files with a bandwidth cap as well:
   achieved MB/s against the cap (target >= 90 %).

Every run's cache is checked afterwards: all files present with the right sha1.

Usage::

    .venv/bin/python benchmarks/bench_fetch.py [--files 500] [--size 65536] [--latency 0.05]
        [--bandwidth 20e6] [--jobs 64] [--skip-reference]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CACHE = Path(os.environ.get("CRDS_ASYNC_SHARED", ROOT.parent / "shared")) / "cache"
PYTHON = sys.executable


def make_served(root: Path, count: int, size: int) -> dict[str, str]:
    """A served cache: the shared HST config plus ``count`` generated references; returns name -> sha1."""
    shutil.copytree(SHARED_CACHE / "config" / "hst", root / "config" / "hst")
    (root / "mappings" / "hst").mkdir(parents=True)
    refdir = root / "references" / "hst"
    refdir.mkdir(parents=True)
    sums = {}
    for i in range(count):
        name = f"b{i:07d}j_drk.fits"
        block = hashlib.sha256(name.encode()).digest()
        data = (block * (size // len(block) + 1))[:size]
        (refdir / name).write_bytes(data)
        sums[name] = hashlib.sha1(data).hexdigest()
    return sums


class Server:
    """``crds-batch serve`` in a subprocess on a free port."""

    def __init__(self, cache: Path, *args: str) -> None:
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([PYTHON, "-m", "crds_async", "serve", "--cache", str(cache), "--port", "0",
                                      *args], stdout=subprocess.PIPE, stderr=self.errors, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        if not match:
            self.close()
            raise SystemExit(f"server did not start: {line!r}")
        self.url = match.group(1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.errors.close()


def env_for(dest: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    # The reference guesses the observatory from the URL; a local URL names none.
    env.update(CRDS_PATH=str(dest), CRDS_SERVER_URL=url, CRDS_OBSERVATORY="hst", CRDS_MODE="local")
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stderr


def check_cache(dest: Path, sums: dict[str, str]) -> None:
    found = {p.name: p for p in (dest / "references").rglob("*.fits") if p.is_file() and not p.is_symlink()}
    missing = set(sums) - set(found)
    bad = [n for n, p in found.items() if n in sums and hashlib.sha1(p.read_bytes()).hexdigest() != sums[n]]
    if missing or bad:
        raise SystemExit(f"{dest}: {len(missing)} missing, {len(bad)} corrupt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=64 << 10, help="bytes per file")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--bandwidth", type=float, default=20e6, help="server cap in bytes/s for the MB/s run")
    parser.add_argument("--bandwidth-size", type=int, default=200_000, help="bytes per file for the MB/s run")
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="crds-batch runs (median reported)")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    have_reference = importlib.util.find_spec("crds") is not None and not args.skip_reference
    with tempfile.TemporaryDirectory(prefix="bench_fetch_") as tmp:
        tmp = Path(tmp)
        sums = make_served(tmp / "served", args.files, args.size)
        names = sorted(sums)
        total_mb = args.files * args.size / 1e6
        print(f"{args.files} files x {args.size} bytes ({total_mb:.1f} MB), server latency {args.latency * 1000:.0f} ms")

        server = Server(tmp / "served", "--latency", str(args.latency))
        try:
            walls = []
            for run in range(args.repeat):  # each into a fresh, empty cache; the median is reported
                ours_dest = tmp / f"ours{run}"
                wall, err = timed([PYTHON, "-m", "crds_async", "sync", "--files", *names, "--jobs", str(args.jobs)],
                                  env_for(ours_dest, server.url))
                check_cache(ours_dest, sums)
                walls.append(wall)
            ours = statistics.median(walls)
            print(f"crds-batch sync --jobs {args.jobs}: {ours:7.2f} s wall, median of {args.repeat} "
                  f"({', '.join(f'{w:.2f}' for w in walls)})   ({err.strip().splitlines()[-1]})")
            if have_reference:
                ref_dest = tmp / "reference"
                ref, _ = timed([PYTHON, "-m", "crds.sync", "--files", *names], env_for(ref_dest, server.url))
                check_cache(ref_dest, sums)
                print(f"crds sync (reference):      {ref:7.2f} s wall")
                print(f"ratio reference/crds-batch: {ref / ours:7.1f}x   (target >= 20x)")
            else:
                print("reference crds not installed (or skipped): no ratio")
        finally:
            server.close()

        bw_sums = make_served(tmp / "served_bw", args.files, args.bandwidth_size)
        bw_mb = args.files * args.bandwidth_size / 1e6
        server = Server(tmp / "served_bw", "--latency", str(args.latency), "--bandwidth", str(args.bandwidth))
        try:
            dest = tmp / "ours_bw"
            wall, err = timed([PYTHON, "-m", "crds_async", "sync", "--files", *sorted(bw_sums), "--jobs",
                               str(args.jobs)], env_for(dest, server.url))
            check_cache(dest, bw_sums)
            summary = err.strip().splitlines()[-1]
            transfer_rate = float(re.search(r"([\d.]+) MB/s while transferring", summary).group(1))
            sync_seconds = float(re.search(r"in ([\d.]+) s", summary).group(1))
            cap = args.bandwidth / 1e6
            print(f"bandwidth cap {cap:.1f} MB/s, {bw_mb:.1f} MB:")
            print(f"  while transferring:        {transfer_rate:6.2f} MB/s = {transfer_rate / cap:.0%} of cap"
                  " (target >= 90 %)")
            print(f"  whole sync incl. RPCs:     {bw_mb / sync_seconds:6.2f} MB/s = {bw_mb / sync_seconds / cap:.0%}")
            print(f"  process wall {wall:5.2f} s:     {bw_mb / wall:6.2f} MB/s = {bw_mb / wall / cap:.0%}")
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
