"""Benchmark: an archive reprocessing campaign, hst_0600.pmap -> hst_0729.pmap, affected datasets.

1. ``--count`` parameter sets (default 1,000,000), archive-like: the corpus HST datasets'
   parameters limited to what hst_0729's rules read (plus dates and ids), under new ids
   (``Q%08X``, written in id order as ``--save-pickle`` writes a dump), each with its own
   ``TIME-OBS`` (no two datasets share an observation time, as in an archive);
2. ``crds-batch bestrefs --load-pickles DUMP --old-context hst_0600.pmap --new-context
   hst_0729.pmap --print-affected``: seconds, datasets/s, peak RSS;
3. the same datasets from ``crds-batch serve --datasets DB`` on loopback (a catalogue built
   from the dump; the build is timed apart): ``--instruments ... --print-affected``;
4. the reference, ``crds bestrefs --load-pickles`` on the first ``--reference-count``
   (default 2,000) of them, beside crds-batch on the same file (their affected lists must
   be equal), and the per-dataset ratio of the reference's time to crds-batch's on the
   whole campaign (target >= 200x; 1M in <= 65 s on 2 cores; RSS < 500 MB).

Peak RSS is the largest of the crds-batch process and its worker processes (``ru_maxrss``
of the waited-for children of a small wrapper process), in MiB.

Usage::

    .venv/bin/python benchmarks/bench_campaign.py [--count 1000000] [--reference-count 2000] [--jobs 2]
        [--skip-served] [--skip-reference]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRDS_ASYNC_SHARED", ROOT.parent / "shared"))
PYTHON = sys.executable
OLD, NEW = "hst_0600.pmap", "hst_0729.pmap"
INSTRUMENTS = ("acs", "cos", "nicmos", "stis", "wfc3", "wfpc2")

_WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)\n"
    "wall = time.perf_counter() - started\n"
    "sys.stderr.write(proc.stderr)\n"
    "sys.stdout.write(proc.stdout)\n"
    "sys.stdout.write(f'\\n@@ {wall} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024} "
    "{proc.returncode}\\n')\n"
)


def env(url: str | None = None) -> dict:
    out = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    out.update(CRDS_PATH=str(SHARED / "cache"), CRDS_MODE="local", CRDS_READONLY_CACHE="1",
               CRDS_SERVER_URL=url or "https://hst-crds.stsci.edu", CRDS_OBSERVATORY="hst")
    return out


def measured(cmd: list[str], cwd: Path, url: str | None = None) -> tuple[float, float, int, str, str]:
    """(wall seconds, peak RSS MiB, exit status, stdout, stderr) of ``cmd`` in a wrapper process."""
    proc = subprocess.run([PYTHON, "-c", _WRAPPER, *cmd], env=env(url), cwd=cwd, capture_output=True, text=True)
    *out, tail = proc.stdout.rstrip("\n").split("\n")
    _, wall, rss, code = tail.split()
    return float(wall), float(rss), int(code), "\n".join(out), proc.stderr


def affected(stdout: str) -> list[str]:
    return [line.strip().lower() for line in stdout.splitlines() if line.strip() and " " not in line.strip()]


def write_dump(path: Path, count: int, templates: list[dict]) -> None:
    with open(path, "w") as out:
        for i in range(count):
            header = dict(templates[i % len(templates)])
            root = f"Q{i:08X}"
            header["ROOTNAME"] = root
            if "TIME-OBS" in header:
                # each exposure its own time of day, as in an archive: a date is parsed for
                # every dataset, never taken from a memo of dates seen before
                seconds = (i // len(templates)) % 86400
                header["TIME-OBS"] = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            out.write(json.dumps({f"{root}:{root}": header}) + "\n")


def ours(dump_or_instruments: list[str], cwd: Path, jobs: int, url: str | None = None):
    cmd = [PYTHON, "-m", "crds_async", "bestrefs", *dump_or_instruments, "--old-context", OLD,
           "--new-context", NEW, "--print-affected", "-q", "-j", str(jobs)]
    return measured(cmd, cwd, url)


def report(label: str, count: int, wall: float, rss: float, code: int, found: list[str]) -> None:
    print(f"{label}: {count:,} datasets in {wall:.2f} s = {count / wall:,.0f} datasets/s, peak RSS {rss:.0f} MiB, "
          f"{len(found):,} affected products, exit {code}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--reference-count", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--page", type=int, default=5000, help="max_headers_per_rpc the server announces")
    parser.add_argument("--skip-served", action="store_true")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_catalogue import archive_like_headers
    from tests.fetch.helpers import make_served_cache, stop_server

    work = Path(tempfile.mkdtemp(prefix="bench_campaign_"))
    server = None
    try:
        templates = archive_like_headers()
        dump = work / "campaign.json"
        started = time.perf_counter()
        write_dump(dump, args.count, templates)
        print(f"{args.count:,} parameter sets from {len(templates)} corpus headers, "
              f"{dump.stat().st_size / 2**20:.0f} MiB dump, written in {time.perf_counter() - started:.1f} s; "
              f"{args.jobs} jobs, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

        wall, rss, code, out, err = ours(["--load-pickles", str(dump)], work, args.jobs)
        found = affected(out)
        report("crds-batch --load-pickles", args.count, wall, rss, code, found)
        dump_wall = wall

        if not args.skip_served:
            db = work / "datasets.db"
            started = time.perf_counter()
            subprocess.run([PYTHON, "-m", "crds_async", "catalogue", "build", str(db), "--dumps", str(dump)],
                           capture_output=True, text=True, cwd=ROOT, check=True)
            print(f"catalogue build: {time.perf_counter() - started:.1f} s (apart from the campaign)")
            served = make_served_cache(work / "served", SHARED / "cache", mappings=True)
            server = subprocess.Popen([PYTHON, "-m", "crds_async", "serve", "--cache", str(served), "--port", "0",
                                       "--datasets", str(db), "--max-headers-per-rpc", str(args.page)],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
            match = re.search(r"at (http://127\.0\.0\.1:\d+)", server.stdout.readline())
            if not match:
                print("server did not start", file=sys.stderr)
                return 2
            wall, rss, code, out, err = ours(["--instruments", *INSTRUMENTS], work, args.jobs, match.group(1))
            served_found = affected(out)
            report("crds-batch --instruments (served)", args.count, wall, rss, code, served_found)
            if served_found != found:
                print(f"MISMATCH: served affected {len(served_found)} != dump affected {len(found)}")

        if not args.skip_reference:
            small = work / "reference.json"
            with open(dump) as src, open(small, "w") as dst:
                for _ in range(args.reference_count):
                    dst.write(src.readline())
            n = args.reference_count
            ref_wall, ref_rss, ref_code, ref_out, _ = measured(
                [PYTHON, "-m", "crds.bestrefs", "--load-pickles", str(small), "--old-context", OLD,
                 "--new-context", NEW, "--print-affected"], work)
            report("reference crds bestrefs --load-pickles", n, ref_wall, ref_rss, ref_code, affected(ref_out))
            wall, rss, code, out, _ = ours(["--load-pickles", str(small)], work, args.jobs)
            report("crds-batch on the same", n, wall, rss, code, affected(out))
            print("affected lists equal" if affected(out) == affected(ref_out) else "MISMATCH with the reference")
            ratio = (ref_wall / n) / (dump_wall / args.count)
            print(f"per dataset: reference {ref_wall / n * 1e3:.2f} ms, crds-batch {dump_wall / args.count * 1e6:.1f} us "
                  f"(campaign of {args.count:,}): {ratio:,.0f}x (target >= 200x)")
        return 0
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
