"""``crds-batch catalogue build DB [PATH...] [--dumps FILE...]``: the dataset catalogue a server serves.

Dataset files (directories walked, globs, ``@lists`` as ``bestrefs`` takes them) and
parameter dumps go into an SQLite catalogue; sources unchanged since the last build
(same size and mtime) are skipped, so rebuilding with the same inputs is near-instant.
Serve it with ``crds-batch serve --cache CACHE --datasets DB``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "catalogue",
        help="build the dataset catalogue that 'serve --datasets' answers dataset RPCs from",
        description="Dataset parameter catalogues (SQLite) for crds-batch serve --datasets.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="add dataset files and parameter dumps to a catalogue (incremental)",
        description="Add dataset files and parameter dumps to the catalogue DB (created if missing); "
        "sources unchanged since the last build are skipped.")
    build.add_argument("db", type=Path, metavar="DB", help="the SQLite catalogue file")
    build.add_argument("paths", nargs="*", metavar="PATH",
                       help="dataset files, directories, globs or @listfiles")
    build.add_argument("--dumps", nargs="+", default=[], metavar="FILE",
                       help="parameter dumps: a JSON object {id: {KEY: value}} or JSON lines of them")
    build.add_argument("-q", "--quiet", action="store_true", help="no error lines, only the summary")
    build.set_defaults(handler=run_catalogue_build)


def run_catalogue_build(args: argparse.Namespace) -> int:
    from ..archive.catalogue import BuildCounts, DatasetCatalogue
    from ..engine.batch import discover

    started = time.perf_counter()
    counts = BuildCounts()
    with DatasetCatalogue(args.db) as catalogue:
        if args.paths:
            catalogue.add_files(discover(args.paths), counts)
        for dump in args.dumps:
            catalogue.add_dump(dump, counts)
        counts.datasets = catalogue.count()
    if not args.quiet:
        for error in counts.errors:
            print(f"ERROR: {error}", file=sys.stderr)
    print(f"{args.db}: {counts.line()} ({time.perf_counter() - started:.2f} s)")
    return 1 if counts.errors else 0
