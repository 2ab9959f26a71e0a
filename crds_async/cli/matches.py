"""``crds-batch matches --files REF...``: the parameter values that select each reference.

One line per match case, like the reference's ``crds matches``:
``ref : INSTRUMENT FILEKIND PARKEY='value' ... DATE-OBS='...' TIME-OBS='...'``.
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

EXIT_OK, EXIT_NONE_FOUND = 0, 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "matches",
        help="the match parameters (match keys plus useafter) that select each reference",
        description="Print every parameter tuple under which the rules of the contexts select each "
        "reference file.",
    )
    parser.add_argument("--files", nargs="+", required=True, metavar="REF", help="reference file names")
    parser.add_argument("--contexts", nargs="+", metavar="CONTEXT", default=None,
                        help="contexts or mappings (default: CRDS_CONTEXT or <obs>-operational)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_observatory_arg(parser)
    parser.set_defaults(handler=run_matches)


def run_matches(args: argparse.Namespace) -> int:
    from ..rules.inspect import file_matches

    cfg = load_config(args)
    files = [Path(f).name for f in args.files]
    obs = pick_observatory(cfg, list(args.contexts or []) + files)
    store = mapping_store(cfg, obs)
    contexts = resolve_mapping_specs(cfg, obs, args.contexts)
    results: dict[str, dict[str, list]] = {}
    found_any = False
    for context in contexts:
        prefix = f"{context} " if len(contexts) > 1 else ""
        per_context: dict[str, list] = {}
        for ref in files:
            cases = file_matches(store, context, ref)
            per_context[ref] = [c.as_dict() for c in cases]
            found_any = found_any or bool(cases)
            if not args.json:
                if not cases:
                    print(f"{prefix}{ref} : none", file=sys.stderr)
                for case in cases:
                    print(f"{prefix}{ref} : {case.format()}")
        results[context] = per_context
    if args.json:
        print_json(results)
    return EXIT_OK if found_any else EXIT_NONE_FOUND
