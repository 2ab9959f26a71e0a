"""``crds-batch diff OLD NEW``: differences between two mappings or two reference files.

Mappings (``.pmap/.imap/.rmap`` names or paths, symbolic contexts) get their
logical differences; reference files (FITS, ASDF, JSON, YAML) go to
:mod:`crds_async.reffiles.diff` (header, data and table-row differences for
FITS, tree differences for the others).  Exit status follows the reference's
``crds diff``: 0 no differences, 1 differences, 2 errors.  For mappings, text
output prints one difference tuple per line, as the reference does;
``--summary`` groups them per instrument and reftype; ``--json`` prints both.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from ..errors import ConfigError, CrdsError
from .inspect_common import (
    add_observatory_arg,
    observatory_of_file_name,
    load_config,
    mapping_store,
    pick_observatory,
    print_json,
    resolve_mapping_specs,
)

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="differences between two contexts, mappings or reference files",
        description="Print the rules and files added, deleted and replaced between two mappings "
        "of the same kind (.pmap, .imap or .rmap), or the header, data and row differences between "
        "two reference files of one kind (FITS, ASDF, JSON, YAML). "
        "Exit 0: no differences, 1: differences, 2: error.",
    )
    parser.add_argument("old", help="old mapping or reference: a name in the cache or a path")
    parser.add_argument("new", help="new mapping or reference: a name in the cache or a path")
    parser.add_argument("--summary", action="store_true",
                        help="print counts and files per instrument and reftype instead of every difference")
    parser.add_argument("--json", action="store_true", help="print JSON (differences and summary)")
    add_observatory_arg(parser)
    parser.set_defaults(handler=run_diff)


def _side(cfg, obs: str, spec: str):
    """(store, name) for one side: a file path uses its own directory for nested mappings."""
    from ..fetch.mapping_files import FileMappingStore

    path = Path(spec)
    if path.is_file():
        return FileMappingStore(path.parent, verify_checksum=False), path.name
    return mapping_store(cfg, obs), resolve_mapping_specs(cfg, obs, [spec])[0]  # hst-operational too


def _is_mapping(name: str | None) -> bool:
    return bool(name) and name.endswith((".pmap", ".imap", ".rmap"))


def summarize(differences) -> dict[str, dict[str, dict[str, object]]]:
    """``{instrument: {reftype: {added, deleted, replaced, changed, old_files, new_files, mappings}}}``."""
    summary: dict = defaultdict(lambda: defaultdict(lambda: {
        "added": 0, "deleted": 0, "replaced": 0, "changed": 0,
        "old_files": set(), "new_files": set(), "mappings": set()}))
    for diff in differences:
        entry = summary[diff.instrument or "*"][diff.filekind or "*"]
        entry[diff.action] += 1
        if _is_mapping(diff.old_file) or _is_mapping(diff.new_file):
            # a replaced, added or deleted imap/rmap: report the mapping change itself
            entry["mappings"].add(f"{diff.old_file or '(none)'} -> {diff.new_file or '(none)'}")
            continue
        if diff.mapping_pair and diff.mapping_pair[0].endswith(".rmap"):
            entry["mappings"].add(" -> ".join(diff.mapping_pair))
        if diff.old_file:
            entry["old_files"].add(diff.old_file)
        if diff.new_file:
            entry["new_files"].add(diff.new_file)
    return {
        instr: {kind: {k: sorted(v) if isinstance(v, set) else v for k, v in entry.items()}
                for kind, entry in sorted(kinds.items())}
        for instr, kinds in sorted(summary.items())
    }


def _is_reference(spec: str) -> bool:
    """True for a reference file (by suffix, or the bytes of an existing file); mappings stay on their path."""
    from ..reffiles.kinds import kind_of

    return not _is_mapping(Path(spec).name) and kind_of(spec) is not None


def _reference_path(cfg, spec: str) -> str:
    """A path as given; a bare name not found here is looked up in the cache's references."""
    if Path(spec).exists() or Path(spec).name != spec:
        return spec
    try:
        candidates = [pick_observatory(cfg, [spec])]
    except CrdsError:
        candidates = ["hst", "jwst", "roman"]
    for obs in candidates:
        path = cfg.reference_dir(obs) / spec
        if path.is_file():
            return str(path)
    return spec


def run_reference_diff(args: argparse.Namespace) -> int:
    """Diff two reference files and print what the reference's ``crds diff`` shows for them."""
    from ..reffiles.diff import diff_references

    try:
        cfg = load_config(args)
        outcome = diff_references(_reference_path(cfg, args.old), _reference_path(cfg, args.new))
    except (CrdsError, OSError) as exc:
        print(f"crds-batch diff: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print_json({"old": args.old, "new": args.new, "kind": outcome.kind, "different": outcome.different,
                    "differences": [{"path": d.where(), "action": d.action, "old": d.old, "new": d.new}
                                    for d in outcome.differences],
                    "text": outcome.text})
    else:
        print(outcome.text, end="")
    return EXIT_DIFFERENT if outcome.different else EXIT_SAME


def run_diff(args: argparse.Namespace) -> int:
    from ..rules.diff import diff_mappings

    if _is_reference(args.old) or _is_reference(args.new):
        return run_reference_diff(args)
    try:
        cfg = load_config(args)
        sides = [observatory_of_file_name(Path(args.old).name), observatory_of_file_name(Path(args.new).name)]
        if None not in sides and sides[0] != sides[1]:
            raise ConfigError(f"{Path(args.old).name} and {Path(args.new).name} are of different observatories "
                              f"({sides[0]} and {sides[1]}): nothing to compare")
        obs = pick_observatory(cfg, [Path(args.old).name, Path(args.new).name])
        old_store, old = _side(cfg, obs, args.old)
        new_store, new = _side(cfg, obs, args.new)
        differences = diff_mappings(old, new, old_store, new_store)
    except (CrdsError, OSError) as exc:
        print(f"crds-batch diff: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print_json({"old": old, "new": new,
                    "differences": [d.as_dict() for d in differences],
                    "summary": summarize(differences)})
    elif args.summary:
        # counts only, one line per instrument and type, then the totals (--json has the names)
        actions = ("added", "deleted", "replaced", "changed")
        totals = dict.fromkeys(actions, 0)
        for instr, kinds in summarize(differences).items():
            for kind, entry in kinds.items():
                counts = ", ".join(f"{entry[a]} {a}" for a in actions if entry[a])
                files = f"{len(entry['old_files'])} old -> {len(entry['new_files'])} new file(s)"
                mappings = f", {len(entry['mappings'])} mapping change(s)" if entry["mappings"] else ""
                print(f"{instr} {kind}: {counts} ({files}{mappings})")
                for a in actions:
                    totals[a] += entry[a]
        print("total: " + ", ".join(f"{totals[a]} {a}" for a in actions) + f" ({len(differences)} difference(s))")
    else:
        for diff in differences:
            print(diff.text())
    return EXIT_DIFFERENT if differences else EXIT_SAME
