"""``crds-batch certify FILE...``: check mappings and reference files, one line per problem.

Mapping names (``.pmap``, ``.imap``, ``.rmap``) go to the mapping certifier
(:mod:`crds_async.rules.certify`); any other file is a reference (FITS, ASDF, JSON,
YAML) checked against a context by :mod:`crds_async.reffiles.certify`.
Exit 0 when everything is sound, 1 when any problem was found, 2 for unusable input.
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

EXIT_CLEAN, EXIT_PROBLEMS, EXIT_UNUSABLE = 0, 1, 2
_MAPPING_SUFFIXES = (".pmap", ".imap", ".rmap")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="check mappings (syntax, checksum, parkeys and values, duplicate or overlapping keys, "
        "referenced files present) and reference files (format, checksums, schema, rmap keywords and values, "
        "USEAFTER, table rows)",
        description="Check mapping files (names in the cache or paths) and reference files (FITS, ASDF, JSON, "
        "YAML paths) against a context. Exit 0: clean, 1: problems, 2: unusable input.",
    )
    parser.add_argument("mappings", nargs="*", metavar="FILE", help="mapping names or paths, reference paths")
    parser.add_argument("--context", default=None, metavar="CONTEXT",
                        help="context references are checked against (default: CRDS_CONTEXT, else the "
                        "operational context)")
    parser.add_argument("--comparison-context", default=None, metavar="CONTEXT",
                        help="also say what each reference would change in this context's rmap")
    parser.add_argument("-j", "--jobs", type=int, default=4, help="references checked at once (threads)")
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
    """Mapping names to the mapping certifier, other files to the reference certifier."""
    references = [m for m in args.mappings if not m.lower().endswith(_MAPPING_SUFFIXES)]
    mappings = [m for m in args.mappings if m.lower().endswith(_MAPPING_SUFFIXES)]
    status = EXIT_CLEAN
    if references:
        status = max(status, run_certify_references(args, references))
    if mappings or args.contexts or args.all or not references:
        args.mappings = mappings
        status = max(status, run_certify_mappings(args))
    return status


def _reference_observatory(cfg, names: list[str], paths: list[str]) -> str:
    """The observatory from the flags, names or context; else the instrument of the first readable file."""
    try:
        return pick_observatory(cfg, names)
    except ConfigError:
        pass
    from ..instruments.common import header_instrument, observatory_of_instrument
    from ..reffiles.open import UnusableInput, open_reference

    for path in paths[:8]:
        try:
            instrument = header_instrument(open_reference(path).header)
        except UnusableInput:
            continue
        if instrument and (obs := observatory_of_instrument(instrument)):
            return obs
    raise ConfigError("cannot tell the observatory of the references: pass --context or --observatory")


def run_certify_references(args: argparse.Namespace, paths: list[str]) -> int:
    """Certify reference files against ``--context``; one line per problem or note."""
    from ..reffiles.certify import certify_references
    from ..reffiles.open import UnusableInput
    from ..engine.loader import load_context

    # The rules are what the files are checked against, not what is certified: a mapping
    # whose sha1sum is stale still says which keywords and values are matched on.
    cfg = load_config(args).replace(ignore_mapping_checksum=True)
    named = [c for c in (args.context, args.comparison_context, cfg.context) if c]
    obs = _reference_observatory(cfg, named, paths)
    context_name = resolve_mapping_specs(cfg, obs, [args.context] if args.context else None)[0]
    context = load_context(context_name, cfg, obs)
    comparison = None
    if args.comparison_context:
        comparison = load_context(resolve_mapping_specs(cfg, obs, [args.comparison_context])[0], cfg, obs)
    report: dict[str, dict[str, list[str]]] = {}
    unusable = bad = 0
    for result in certify_references(paths, context, comparison, jobs=max(1, args.jobs)):
        if isinstance(result, UnusableInput):
            unusable += 1
            print(f"ERROR: {result}", file=sys.stderr)
            continue
        bad += bool(result.errors)
        report[result.file] = {"problems": [str(p) for p in result.problems],
                               "errors": [str(p) for p in result.errors],
                               "notes": [str(n) for n in result.notes]}
        if not args.json:
            for line in report[result.file]["problems"] + report[result.file]["notes"]:
                print(line)
    if args.json:
        print_json({"context": context.name, "checked": len(report), "with_errors": bad, "unusable": unusable,
                    "files": report})
    else:
        print(f"certify: {len(report)} reference(s) checked against {context.name}, {bad} with errors"
              + (f", {unusable} unusable" if unusable else ""), file=sys.stderr)
    if unusable:
        return EXIT_UNUSABLE
    return EXIT_PROBLEMS if bad else EXIT_CLEAN


def run_certify_mappings(args: argparse.Namespace) -> int:
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
