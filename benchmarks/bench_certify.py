"""crds-batch certify against the reference's crds certify, on every shared reference file, in one run.

For each observatory, both tools certify all of ``../shared/refdata/<obs>`` in one
process each (CLI against CLI, start-up included on both sides), offline on the
read-only shared cache with the same context.  The reference runs with ``-z`` (no
trial rmap insertion, which writes into /tmp) and its context from ``CRDS_CONTEXT``.
Prints both walls per observatory, the totals and the ratio.

    .venv/bin/python benchmarks/bench_certify.py [-j 4] [--repeat 1]
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
SHARED = Path(os.environ.get("CRDS_ASYNC_SHARED", ROOT.parent / "shared")).resolve()
CONTEXTS = {"hst": "hst_0729.pmap", "jwst": "jwst_0541.pmap", "roman": "roman_0007.pmap"}
SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu",
           "roman": "https://roman-crds.stsci.edu"}


def _env(obs: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(SHARED / "cache"), CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_SERVER_URL=SERVERS[obs], CRDS_OBSERVATORY=obs, CRDS_CONTEXT=CONTEXTS[obs])
    return env


def _timed(command: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=4, help="crds-batch certify threads")
    parser.add_argument("--repeat", type=int, default=1, help="runs of crds-batch per observatory (best counts)")
    args = parser.parse_args()
    ours_total = theirs_total = 0.0
    count = 0
    with tempfile.TemporaryDirectory() as cwd:
        for obs, context in CONTEXTS.items():
            files = [str(p) for p in sorted((SHARED / "refdata" / obs).glob("*")) if p.suffix != ".md"]
            count += len(files)
            env = _env(obs)
            ours = min(_timed([sys.executable, "-m", "crds_async", "certify", "--context", context,
                               "-j", str(args.jobs), *files], env, cwd) for _ in range(args.repeat))
            theirs = _timed([sys.executable, "-m", "crds.certify", "-z", *files], env, cwd)
            ours_total += ours
            theirs_total += theirs
            print(f"{obs:6s} {len(files):3d} files  crds-batch certify {ours:7.2f} s   "
                  f"crds certify {theirs:7.2f} s   ratio {theirs / ours:6.1f}x")
    print(f"total  {count:3d} files  crds-batch certify {ours_total:7.2f} s   "
          f"crds certify {theirs_total:7.2f} s   ratio {theirs_total / ours_total:6.1f}x")


if __name__ == "__main__":
    main()
