"""``crds-batch uses --files NAME...``: the mappings that refer to each file.

The index (file -> mappings naming it) is built once over every mapping in the
cache, or over the closures of ``--contexts``, then each file is one lookup.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .inspect_common import (
    add_observatory_arg,
    load_config,
    mapping_store,
    pick_observatory,
    print_json,
    resolve_mapping_specs,
)

EXIT_OK, EXIT_PROBLEMS = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "uses",
        help="which mappings refer to each reference or mapping",
        description="Print the mappings (rmaps, imaps, pmaps) that refer, directly or through lower "
        "mappings, to each file.",
    )
    parser.add_argument("--files", nargs="+", required=True, metavar="NAME",
                        help="reference or mapping file names")
    parser.add_argument("--contexts", nargs="+", metavar="CONTEXT", default=None,
                        help="only search these contexts' mappings (default: every mapping in the cache)")
    parser.add_argument("-i", "--include-used", action="store_true",
                        help="print the used file as the first column")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_observatory_arg(parser)
    parser.set_defaults(handler=run_uses)


def _progress(names: list[str]):
    if sys.stderr.isatty() and len(names) > 200:
        from tqdm import tqdm

        return tqdm(names, desc="indexing mappings", unit="file", leave=False)
    return names


def run_uses(args: argparse.Namespace) -> int:
    from ..rules.inspect import UsesIndex

    cfg = load_config(args)
    files = [Path(f).name for f in args.files]
    obs = pick_observatory(cfg, list(args.contexts or []) + files)
    store = mapping_store(cfg, obs)
    if args.contexts:
        names = sorted({m for ctx in resolve_mapping_specs(cfg, obs, args.contexts) for m in store.closure(ctx)})
    else:
        names = store.all_names()
    index = UsesIndex(store, _progress(names))
    for name, problem in sorted(index.failures.items()):
        print(f"crds-batch uses: warning: skipped {name}: {problem}", file=sys.stderr)
    results = {f: index.uses(f) for f in files}
    if args.json:
        print_json(results)
    else:
        for f in files:
            for user in results[f]:
                print(f"{f} {user}" if args.include_used else user)
    return EXIT_OK
