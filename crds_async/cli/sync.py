"""``crds-batch sync``: fetch contexts, rules and references into the cache, verified and in parallel.

Switches follow the reference's ``crds sync``; see :mod:`crds_async.fetch.sync`.
Exit status: 0 all good, 1 some file failed or a check found a problem, 2 usage/setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

EXIT_OK, EXIT_SOME_FAILED = 0, 1
#: failed files listed one per line before the rest are counted
_MAX_LISTED = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="download contexts, rules and references into the cache (verified, parallel)",
        description="Bring the mappings of contexts (and optionally their references) into the CRDS cache "
        "from CRDS_SERVER_URL. Every file is size- and sha1-checked before it appears under its name.",
    )
    parser.add_argument("--contexts", nargs="+", metavar="CONTEXT", default=[],
                        help="contexts to sync (hst_0729.pmap, hst-latest, ...); default CRDS_CONTEXT or <obs>-latest")
    parser.add_argument("--all", action="store_true", help="every mapping the server knows")
    parser.add_argument("--files", nargs="+", metavar="NAME", default=[], help="explicit mapping/reference names")
    parser.add_argument("--fetch-references", action="store_true",
                        help="also fetch every reference the contexts name")
    parser.add_argument("--dataset-files", nargs="+", metavar="DATASET", default=[],
                        help="with --fetch-references: only the best references of these datasets")
    parser.add_argument("-k", "--check-files", action="store_true", help="check cached files against the server")
    parser.add_argument("-s", "--check-sha1sum", action="store_true", help="also check references' sha1 sums")
    parser.add_argument("-r", "--repair-files", action="store_true",
                        help="re-download files that fail the checks (implies --check-files)")
    parser.add_argument("--purge-mappings", action="store_true", help="remove mappings outside the contexts")
    parser.add_argument("--purge-references", action="store_true", help="remove references outside the contexts")
    parser.add_argument("--organize", choices=("flat", "instrument"), default=None,
                        help="move cached references to this layout first")
    parser.add_argument("--dry-run", action="store_true", help="change nothing; report what would be downloaded")
    parser.add_argument("-j", "--jobs", type=int, default=8, help="concurrent downloads (default 8)")
    parser.add_argument("--observatory", choices=("hst", "jwst", "roman", "tobs"), default=None,
                        help="observatory (default: from the contexts/files, CRDS_OBSERVATORY or the server)")
    parser.add_argument("--stall-seconds", type=float, default=60.0,
                        help="a transfer silent this long fails (and is retried per CRDS_CLIENT_RETRY_COUNT)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each retry")
    parser.set_defaults(handler=run_sync_command)


def run_sync_command(args: argparse.Namespace) -> int:
    from ..config import config_from_env
    from ..errors import ConfigError
    from ..fetch.sync import SyncOptions, run_sync, sync_observatory

    if args.jobs < 1:
        raise ConfigError("--jobs must be >= 1")
    if args.dataset_files and not args.contexts:
        raise ConfigError("--dataset-files needs --contexts")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="crds-batch sync: %(levelname)s: %(message)s", stream=sys.stderr)
    cfg = config_from_env()
    options = SyncOptions(
        contexts=args.contexts, all=args.all, files=args.files, fetch_references=args.fetch_references,
        dataset_files=args.dataset_files, check_files=args.check_files or args.repair_files,
        check_sha1sum=args.check_sha1sum, repair_files=args.repair_files, purge_mappings=args.purge_mappings,
        purge_references=args.purge_references, organize=args.organize, dry_run=args.dry_run, jobs=args.jobs,
        stall_seconds=args.stall_seconds,
    )
    if args.dataset_files:
        from functools import partial

        from ..engine.datasets import references_of_datasets

        options.dataset_references = partial(references_of_datasets, cfg)

    async def main() -> int:
        observatory = args.observatory or await sync_observatory(cfg, options)
        result = await run_sync(cfg, observatory, options)
        mb = result.downloaded_bytes / 1e6
        rate = mb / result.transfer_seconds if result.transfer_seconds > 0 else 0.0
        print(f"{observatory}: {len(result.downloaded)} downloaded ({mb:.1f} MB, {rate:.2f} MB/s while "
              f"transferring), "
              f"{len(result.cached)} already cached, {len(result.failed)} failed, "
              f"{result.checked} checked, {len(result.purged)} purged, {len(result.errors)} error(s) "
              f"in {result.seconds:.2f} s", file=sys.stderr)
        failed = sorted(result.failed.items())
        for name, problem in failed[:_MAX_LISTED]:
            print(f"FAILED {name}: {problem}", file=sys.stderr)
        if len(failed) > _MAX_LISTED:
            print(f"... and {len(failed) - _MAX_LISTED} more failed file(s) (-v lists each)", file=sys.stderr)
        return EXIT_SOME_FAILED if result.errors else EXIT_OK

    return asyncio.run(main())
