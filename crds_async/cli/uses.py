"""``crds-batch uses --files NAME...``: the mappings that refer to each file.

The index (file -> mappings naming it) covers every mapping in the cache, or the
closures of ``--contexts``.  The whole-cache index is saved in the user's cache
directory, beside the compiled contexts (``$XDG_CACHE_HOME/crds_async/uses/<cache>/``),
never in the CRDS cache, and only mappings whose size or mtime changed are parsed
again, so after the first run a question costs one small JSON load and a lookup.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..atomic import atomic_write
from .inspect_common import (
    add_observatory_arg,
    load_config,
    mapping_store,
    pick_observatory,
    print_json,
    resolve_mapping_specs,
    user_state_dir,
)

EXIT_OK = 0
INDEX_FILE = "crds_async_uses_index.json"
INDEX_VERSION = 1


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


def _progress(names: list[str], total: int):
    if sys.stderr.isatty() and total > 200:
        from tqdm import tqdm

        return tqdm(names, desc="indexing mappings", unit="file", leave=False)
    return names


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _read_saved(path: Path, verify: bool) -> dict[str, dict]:
    """Saved entries ``{name: {"stamp", "names" | "error"}}``; empty if absent or unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != INDEX_VERSION or data.get("verify_checksum") != verify:
            return {}
        table = data["names"]
        return {name: {"stamp": e["stamp"], "error": e.get("error"),
                       "names": [table[i] for i in e.get("names", ())]}
                for name, e in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return {}


def _write_saved(path: Path, entries: dict[str, dict], verify: bool) -> None:
    """Atomic: a temp file beside the target, checked by reading it back, then renamed."""
    table: dict[str, int] = {}
    files = {}
    for name, entry in entries.items():
        out = {"stamp": entry["stamp"]}
        if entry.get("error") is not None:
            out["error"] = entry["error"]
        else:
            out["names"] = [table.setdefault(n, len(table)) for n in sorted(entry["names"])]
        files[name] = out
    payload = json.dumps({"version": INDEX_VERSION, "verify_checksum": verify, "names": list(table),
                          "files": files}, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, payload)


def whole_cache_index(cfg, obs: str, store):
    """The uses index of every mapping in the cache, reusing the saved one where files are unchanged."""
    from ..errors import CrdsError
    from ..rules.inspect import UsesIndex, direct_names

    index_path = user_state_dir(cfg, obs, "uses") / INDEX_FILE
    saved = _read_saved(index_path, store.verify_checksum)
    names = store.all_names()
    entries: dict[str, dict] = {}
    stale = []
    for name in names:
        stamp = _stamp(store.path(name))
        old = saved.get(name)
        if old is not None and old["stamp"] == stamp:
            entries[name] = old
        else:
            stale.append((name, stamp))
    for name, stamp in _progress(stale, len(stale)):
        try:
            entries[name] = {"stamp": stamp, "names": sorted(direct_names(store, name)), "error": None}
        except CrdsError as exc:
            entries[name] = {"stamp": stamp, "names": [], "error": str(exc)}
    if stale or set(saved) != set(entries):
        try:
            _write_saved(index_path, entries, store.verify_checksum)
        except OSError as exc:
            print(f"crds-batch uses: note: could not save the index at {index_path} ({exc})", file=sys.stderr)
    direct = {n: e["names"] for n, e in entries.items() if e.get("error") is None}
    failures = {n: e["error"] for n, e in entries.items() if e.get("error") is not None}
    return UsesIndex(direct, failures)


def run_uses(args: argparse.Namespace) -> int:
    from ..rules.inspect import UsesIndex

    cfg = load_config(args)
    files = [Path(f).name for f in args.files]
    obs = pick_observatory(cfg, list(args.contexts or []) + files)
    store = mapping_store(cfg, obs)
    if args.contexts:
        names = sorted({m for ctx in resolve_mapping_specs(cfg, obs, args.contexts) for m in store.closure(ctx)})
        index = UsesIndex.build(store, names)
    else:
        index = whole_cache_index(cfg, obs, store)
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
