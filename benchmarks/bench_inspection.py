"""Inspection commands vs the reference, measured in the same run.

Each line runs the same question through the reference's command (``python -m
crds.<tool>``) and through ``crds-batch`` as separate processes (both pay their
start-up), offline on the shared cache, and prints wall times and the ratio.

    .venv/bin/python benchmarks/bench_inspection.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CRDS_ASYNC_SHARED", ROOT.parent / "shared")).resolve() / "cache"
SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}


def run(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed


def best_of(n: int, cmd: list[str], env: dict[str, str]) -> float:
    return min(run(cmd, env) for _ in range(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per command")
    args = parser.parse_args()
    py = sys.executable
    pickles = tempfile.mkdtemp(prefix="bench-pickles-")
    cases = [
        ("list --references hst_0729", "hst", ["crds.list", "--references", "--contexts", "hst_0729.pmap"],
         ["list", "--references", "--contexts", "hst_0729.pmap"]),
        ("list --mappings jwst_0541", "jwst", ["crds.list", "--mappings", "--contexts", "jwst_0541.pmap"],
         ["list", "--mappings", "--contexts", "jwst_0541.pmap"]),
        ("matches 2 refs hst_0729", "hst",
         ["crds.matches", "--contexts", "hst_0729.pmap", "--files", "q9e1206kj_bia.fits", "2581457kj_bia.fits"],
         ["matches", "--contexts", "hst_0729.pmap", "--files", "q9e1206kj_bia.fits", "2581457kj_bia.fits"]),
        ("diff hst_0600 hst_0729", "hst",
         ["crds.diff", str(CACHE / "mappings/hst/hst_0600.pmap"), str(CACHE / "mappings/hst/hst_0729.pmap")],
         ["diff", "hst_0600.pmap", "hst_0729.pmap"]),
    ]
    print(f"{'question':32} {'reference s':>12} {'crds-batch s':>13} {'ratio':>7}")
    for label, obs, ref_args, our_args in cases:
        env = dict(os.environ, CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[obs],
                   CRDS_READONLY_CACHE="1")
        theirs = best_of(args.repeat, [py, "-m", *ref_args], env)
        ours = best_of(args.repeat, [py, "-m", "crds_async", *our_args], env)
        print(f"{label:32} {theirs:12.2f} {ours:13.2f} {theirs / ours:6.1f}x")
    # uses over the whole jwst cache: our saved index is built by the first run, reused after.
    env = dict(os.environ, CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS["jwst"],
               CRDS_READONLY_CACHE="1")
    theirs = best_of(args.repeat, [py, "-m", "crds.uses", "--files", "jwst_miri_flat_0242.fits"], env)
    env_ours = dict(env, CRDS_PICKLEPATH=pickles)
    env_ours.pop("CRDS_READONLY_CACHE")
    cold = run([py, "-m", "crds_async", "uses", "--files", "jwst_miri_flat_0242.fits"], env_ours)
    warm = best_of(args.repeat, [py, "-m", "crds_async", "uses", "--files", "jwst_miri_flat_0242.fits"], env_ours)
    print(f"{'uses whole jwst cache (cold)':32} {theirs:12.2f} {cold:13.2f} {theirs / cold:6.1f}x")
    print(f"{'uses whole jwst cache (saved)':32} {theirs:12.2f} {warm:13.2f} {theirs / warm:6.1f}x")


if __name__ == "__main__":
    main()
