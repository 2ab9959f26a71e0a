"""``crds-batch certify MAPPING...``: check mappings for defects, one line per problem.

Exit 0 when every mapping is sound, 1 when any problem was found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from .inspect_common import (
    add_observatory_arg,
    load_config,
    mapping_store,
    pick_observatory,
    print_json,
    resolve_mapping_specs,
)

EXIT_CLEAN, EXIT_PROBLEMS = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="check mappings: syntax, checksum, parkeys and values, duplicate or overlapping keys, "
        "referenced files present",
        description="Check mapping files (names in the cache or paths). Exit 0: clean, 1: problems.",
    )
    parser.add_argument("mappings", nargs="*", metavar="MAPPING", help="mapping names or paths")
    parser.add_argument("--contexts", nargs="+", metavar="CONTEXT", default=None,
                        help="also check every mapping of these contexts")
    parser.add_argument("--all", action="store_true", help="check every mapping in the cache")
    parser.add_argument("--check-references", action="store_true",
                        help="also require every reference named by an rmap to be in the cache")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_observatory_arg(parser)
    parser.set_defaults(handler=run_certify)


def reference_locator(cfg, observatory: str):
    """``f(name, rmap_header) -> bool``: is the reference in the cache (flat or per-instrument)?"""
    from ..errors import CrdsError
    from ..fetch.layout import reference_path

    def exists(name: str, header: dict) -> bool:
        try:
            return reference_path(cfg, observatory, name).is_file()
        except CrdsError:  # not a plain reference file name
            return False

    return exists


def _progress(items: list):
    if sys.stderr.isatty() and len(items) > 50:
        from tqdm import tqdm

        return tqdm(items, desc="certifying", unit="file", leave=False)
    return items


def run_certify(args: argparse.Namespace) -> int:
    from ..errors import CrdsError
    from ..fetch.mapping_files import FileMappingStore, certify_mapping_file

    cfg = load_config(args)
    names = [Path(m).name for m in args.mappings] + list(args.contexts or [])
    if not names and not args.all:
        raise ConfigError("name mappings to certify, or use --contexts or --all")
    obs = pick_observatory(cfg, names)
    store = mapping_store(cfg, obs)
    paths: list[Path] = []
    for spec in args.mappings:
        path = Path(spec)
        paths.append(path if path.is_file() else store.path(spec))
    if args.contexts:
        closure = {m for ctx in resolve_mapping_specs(cfg, obs, args.contexts) for m in store.closure(ctx)}
        paths.extend(store.path(m) for m in sorted(closure))
    if args.all:
        paths.extend(store.path(m) for m in store.all_names())
    paths = list(dict.fromkeys(paths))

    def mapping_locator(beside: Path):
        # Beside the certified file first (a new delivery), then in the cache.
        dirs = tuple(dict.fromkeys((beside, store.mapping_dir)))
        return lambda name: any((d / name).is_file() for d in dirs)

    header_stores: dict[Path, FileMappingStore] = {}

    def header_reader(beside: Path):
        def read(name: str) -> dict | None:
            for directory in dict.fromkeys((beside, store.mapping_dir)):
                if (directory / name).is_file():
                    reader = header_stores.setdefault(directory, FileMappingStore(directory, verify_checksum=False))
                    try:
                        return reader.load(name).header
                    except CrdsError:
                        return None  # reported when that mapping itself is certified
            return None
        return read

    reference_exists = reference_locator(cfg, obs) if args.check_references else None
    report: dict[str, list[str]] = {}
    for path in _progress(paths):
        problems = certify_mapping_file(path, mapping_exists=mapping_locator(path.parent),
                                   reference_exists=reference_exists, child_header=header_reader(path.parent))
        report[str(path)] = [str(p) for p in problems]
        if not args.json:
            for problem in problems:
                print(problem)
    bad = sum(1 for p in report.values() if p)
    if args.json:
        print_json({"checked": len(report), "with_problems": bad, "problems": report})
    else:
        print(f"certify: {len(report)} mapping(s) checked, {bad} with problems", file=sys.stderr)
    return EXIT_PROBLEMS if bad else EXIT_CLEAN
