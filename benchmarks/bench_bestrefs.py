"""crds-batch bestrefs against the reference CLI and a floor, in one run.

Makes N dataset files from the corpus (hard links under new names, so making
50,000 costs no disk), then times:

- the reference CLI (``python -m crds.bestrefs --files ...``, crds 14.0.3) on a
  sample (default 300 files; it costs ~0.3 s per file), when installed;
- ``crds-batch bestrefs`` on all N files (JSON to a file);
- a floor: reading each file's first header blocks (open + read 8 KB), nothing else;

and prints walls, per-file costs and the ratios (targets: >= 1,000x the
reference per file, within 3x of the floor), plus crds-batch's peak RSS.  It
also times crds-batch on a single file (interpreter start, imports, context
load) and prints the per-file cost beyond that start-up against the floor's.

    .venv/bin/python benchmarks/bench_bestrefs.py [-n 5000] [--sample 300] [--rss-files 50000]
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


def make_datasets(corpus: Path, target: Path, count: int) -> list[Path]:
    sources = sorted((corpus / "hst").glob("*.fits"))
    target.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        source = sources[index % len(sources)]
        path = target / f"d{index:06d}_{source.name}"
        os.link(source, path)
        made.append(path)
    return made


def floor_seconds(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb") as handle:
            handle.read(8192)
    return time.perf_counter() - start


def crds_batch_seconds(folder: Path, cache: Path, jobs: int | None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one crds-batch bestrefs run over ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env["CRDS_PATH"] = str(cache)
    exe = Path(sys.executable).with_name("crds-batch")
    command = [str(exe), "bestrefs", str(folder), "--context", "hst_0729.pmap", "--format", "json", "-q",
               "--output", str(folder.parent / "out.json")]
    if jobs:
        command += ["-j", str(jobs)]
    script = ("import resource, subprocess, sys, time\n"
              "start = time.perf_counter()\n"
              "subprocess.run(sys.argv[1:], check=False)\n"
              "wall = time.perf_counter() - start\n"
              "print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n")
    out = subprocess.run([sys.executable, "-c", script, *command], env=env, capture_output=True, text=True,
                         check=True)
    wall, rss = out.stdout.split()
    return float(wall), float(rss)


def reference_seconds(paths: list[Path], cache: Path) -> float | None:
    try:
        import crds  # noqa: F401
    except ImportError:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(cache), CRDS_MODE="local", CRDS_SERVER_URL="https://hst-crds.stsci.edu",
               CRDS_READONLY_CACHE="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "crds.bestrefs", "--files", *map(str, paths),
                    "--new-context", "hst_0729.pmap"], env=env, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="datasets for crds-batch (default 5000)")
    parser.add_argument("--sample", type=int, default=300, help="datasets for the reference (default 300)")
    parser.add_argument("--rss-files", type=int, default=0, help="also measure peak RSS over this many files")
    parser.add_argument("-j", "--jobs", type=int, default=None)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    cache, corpus = (args.shared / "cache").resolve(), (args.shared / "corpus").resolve()

    # An editable install has no bytecode (and PYTHONDONTWRITEBYTECODE may forbid writing it),
    # while pip compiled the reference's at install: compile ours too, as a wheel install would.
    import compileall

    compileall.compile_dir(str(ROOT / "crds_async"), quiet=1)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "datasets"
        paths = make_datasets(corpus, folder, args.n)
        crds_batch_seconds(folder, cache, args.jobs)  # warm: compiled context, page cache
        ours, rss = crds_batch_seconds(folder, cache, args.jobs)
        # start-up: interpreter, imports, context load, on a batch of one file
        single = Path(scratch) / "single"
        make_datasets(corpus, single, 1)
        startup = min(crds_batch_seconds(single, cache, args.jobs)[0] for _ in range(3))
        floor = min(floor_seconds(paths) for _ in range(3))
        ref = reference_seconds(paths[: args.sample], cache) if args.sample else None

        print(f"{'':<28}{'files':>8}{'wall s':>10}{'per file':>12}")
        if ref is not None:
            print(f"{'reference crds bestrefs':<28}{args.sample:>8}{ref:>10.2f}{ref / args.sample * 1e3:>10.2f}ms")
        print(f"{'crds-batch bestrefs':<28}{args.n:>8}{ours:>10.2f}{ours / args.n * 1e6:>10.1f}us")
        print(f"{'floor (read 8 KB per file)':<28}{args.n:>8}{floor:>10.2f}{floor / args.n * 1e6:>10.1f}us")
        if ref is not None:
            print(f"per-file speed-up vs reference: {(ref / args.sample) / (ours / args.n):,.0f}x (target >= 1,000x)")
        print(f"crds-batch / floor: {ours / floor:.1f}x (target <= 3x)")
        marginal = max(ours - startup, 0.0) / args.n
        print(f"crds-batch start-up (one file): {startup:.2f} s; per file beyond it: {marginal * 1e6:.1f}us, "
              f"{marginal / (floor / args.n):.1f}x the floor's per-file cost")
        print(f"crds-batch peak RSS ({args.n} files): {rss:.0f} MB")

        if args.rss_files:
            big = Path(scratch) / "many"
            make_datasets(corpus, big, args.rss_files)
            wall, rss = crds_batch_seconds(big, cache, args.jobs)
            per_file = wall / args.rss_files
            print(f"crds-batch on {args.rss_files} files: {wall:.1f} s ({per_file * 1e6:.0f} us per file), "
                  f"peak RSS {rss:.0f} MB (target < 300 MB)")
            if ref is not None:
                print(f"per-file speed-up vs reference at this scale: {(ref / args.sample) / per_file:,.0f}x")


if __name__ == "__main__":
    main()
