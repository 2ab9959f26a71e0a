"""Run one benchmark on two checkouts, alternately, in one run: a before/after comparison.

    .venv/bin/python benchmarks/compare_builds.py --other ../base --rounds 2 -- bench_rules.py --no-reference

Each round runs ``benchmarks/<bench>`` of this checkout, then of ``--other`` (a ``git worktree``
of the build to compare with), each with its own code first on ``PYTHONPATH``; alternating
spreads the machine's drift over both.  The outputs are printed as they come, labelled.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(checkout: Path, bench: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    proc = subprocess.run([sys.executable, str(checkout / "benchmarks" / bench[0]), *bench[1:]], cwd=checkout,
                          env=env, capture_output=True, text=True)
    return proc.stdout + (proc.stderr[-2000:] if proc.returncode else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("bench", nargs=argparse.REMAINDER, help="-- BENCH.py [its arguments]")
    args = parser.parse_args()
    bench = [b for b in args.bench if b != "--"]
    if not bench:
        parser.error("name the benchmark after --")
    for round_ in range(1, args.rounds + 1):
        for label, checkout in (("this", ROOT), ("other", args.other.resolve())):
            print(f"===== round {round_}: {label} build ({checkout}) =====", flush=True)
            print(run(checkout, bench), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
