"""Benchmark: paging dataset headers from ``crds-batch serve --datasets`` over loopback.

1. A synthetic parameter dump of N datasets (default 100,000), archive-like: each is a
   corpus HST dataset's parameters limited to what hst_0729.pmap's rules of its
   instrument read (plus dates and ids), under a new id;
2. ``crds-batch catalogue build`` of it (and a rebuild, which skips the unchanged dump);
3. ``crds-batch serve --datasets`` on 127.0.0.1 and ``crds_async.archive.remote``:
   every instrument's ids, then every header in pages of ``max_headers_per_rpc``,
   several pages in flight.  Prints datasets/s (target >= 50,000).

Usage::

    .venv/bin/python benchmarks/bench_catalogue.py [--datasets 100000] [--page 5000] [--in-flight 3] [--passes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
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
CONTEXT = "hst_0729.pmap"


def archive_like_headers() -> list[dict[str, str]]:
    """The corpus HST datasets' parameters, limited to what the context's rules read."""
    from crds_async.api import get_evaluator
    from crds_async.config import Config
    from crds_async.headers import read_header
    from crds_async.instruments import dataset_header, header_instrument

    cfg = Config(cache_roots=(("CRDS_PATH", str(SHARED / "cache")),), readonly_cache=True, mode="local")
    context = get_evaluator(CONTEXT, cfg, "hst").context
    extra = ("INSTRUME", "DATE-OBS", "TIME-OBS", "ROOTNAME", "ASN_ID", "EXPSTART")
    headers = []
    for path in sorted(glob.glob(str(SHARED / "corpus" / "hst" / "*.fits"))):
        header = dataset_header(read_header(path))
        imap = context.instruments.get((header_instrument(header) or "").lower())
        if imap is None:
            continue
        keys = set(imap.required_parkeys) | set(extra)
        headers.append({k: v for k, v in header.items() if k in keys})
    return headers


def write_dump(path: Path, count: int) -> None:
    templates = archive_like_headers()
    with open(path, "w") as out:
        for i in range(count):
            header = dict(templates[i % len(templates)])
            root = f"Q{i:08X}"
            header["ROOTNAME"] = root
            out.write(json.dumps({f"{root}:{root}": header}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=5000, help="max_headers_per_rpc the server announces")
    parser.add_argument("--in-flight", type=int, default=3, help="pages in flight")
    parser.add_argument("--passes", type=int, default=3, help="paging passes over every dataset")
    args = parser.parse_args()

    from tests.fetch.helpers import make_served_cache, stop_server

    work = Path(tempfile.mkdtemp(prefix="bench_catalogue_"))
    proc = None
    try:
        dump, db = work / "dump.jsonl", work / "datasets.db"
        write_dump(dump, args.datasets)
        for label in ("build", "rebuild"):
            started = time.perf_counter()
            out = subprocess.run([PYTHON, "-m", "crds_async", "catalogue", "build", str(db), "--dumps", str(dump)],
                                 capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
            print(f"{label}: {time.perf_counter() - started:.2f} s wall: {out}")
        served = make_served_cache(work / "served", SHARED / "cache", mappings=True)
        proc = subprocess.Popen([PYTHON, "-m", "crds_async", "serve", "--cache", str(served), "--port", "0",
                                 "--datasets", str(db), "--max-headers-per-rpc", str(args.page)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        if not match:
            print("server did not start", file=sys.stderr)
            return 2
        rates = asyncio.run(page_all(match.group(1), args.in_flight, args.datasets, args.passes))
        print(f"paging headers over loopback: first pass {rates[0]:,.0f} datasets/s, best of {len(rates)} "
              f"{max(rates):,.0f} datasets/s (target >= 50,000); load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
        return 0
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(work, ignore_errors=True)


async def page_all(url: str, in_flight: int, expected: int, passes: int) -> list[float]:
    from crds_async.archive import remote
    from crds_async.config import Config
    from crds_async.fetch.client import CrdsClient

    rates = []
    async with CrdsClient(url, Config()) as client:
        for _ in range(passes):
            started, cpu = time.perf_counter(), time.process_time()
            ids = await remote.dataset_ids(client, CONTEXT, ["acs", "cos", "nicmos", "stis", "wfc3", "wfpc2"])
            listed = time.perf_counter()
            count = 0
            async for _id, header in remote.dataset_headers(client, CONTEXT, ids, in_flight=in_flight):
                count += isinstance(header, dict)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert count == expected, f"paged {count} of {expected} datasets"
            print(f"{len(ids):,} ids listed in {listed - started:.2f} s; {count:,} headers in {elapsed:.2f} s "
                  f"in all (client CPU {cpu:.2f} s)")
            rates.append(count / elapsed)
    return rates


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
