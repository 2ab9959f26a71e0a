"""``crds-batch list``: configuration, contexts, the files of a context, file contents.

Answers come from the local cache and the parsed rules; nothing here contacts a
server.  ``--mappings``/``--references`` print the same sets as the reference's
``crds list``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError, CrdsError
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
        "list",
        help="print configuration, contexts, the files of a context, or file contents",
        description="Print CRDS configuration, context names, the mappings or references of "
        "contexts, the text of mappings, headers of references, or the parameters the rules "
        "would see for a dataset.",
    )
    parser.add_argument("--version", action="store_true", help="print the crds_async version")
    parser.add_argument("--config", action="store_true", help="print the resolved configuration")
    parser.add_argument("--status", action="store_true", help="print a short status summary")
    parser.add_argument("--operational-context", action="store_true",
                        help="print the operational context recorded in the cached server configuration")
    parser.add_argument("--contexts", nargs="+", metavar="CONTEXT", default=None,
                        help="contexts or mappings for --mappings/--references "
                        "(default: CRDS_CONTEXT or <obs>-operational)")
    parser.add_argument("--mappings", action="store_true", help="print every mapping of the contexts")
    parser.add_argument("--references", action="store_true", help="print every reference of the contexts")
    parser.add_argument("--full-path", action="store_true", help="print cache paths instead of names")
    parser.add_argument("--cat", nargs="+", metavar="FILE", default=None,
                        help="print the text of mappings or the header of references")
    parser.add_argument("--dataset-headers", nargs="+", metavar="FILE", default=None,
                        help="print the parameters the rules would see for each dataset file")
    parser.add_argument("--json", action="store_true", help="JSON output where it applies")
    add_observatory_arg(parser)
    parser.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace) -> int:
    from .._version import __version__

    if not any((args.version, args.config, args.status, args.operational_context, args.mappings,
                args.references, args.cat, args.dataset_headers)):
        raise ConfigError("nothing to list: use --version, --config, --status, --operational-context, "
                          "--mappings, --references, --cat or --dataset-headers")
    status = EXIT_OK
    if args.version:
        print(f"crds-batch {__version__}")
        if not any((args.config, args.status, args.operational_context, args.mappings, args.references,
                    args.cat, args.dataset_headers)):
            return EXIT_OK  # needs no configuration, so a broken environment cannot stop it
    cfg = load_config(args)
    names = list(args.contexts or []) + [Path(f).name for f in (args.cat or [])]
    if args.config:
        _list_config(cfg, names, args.json)
    if args.status:
        _list_status(cfg, names, args.json)
    if args.operational_context:
        obs = pick_observatory(cfg, names, from_cache=True)
        print(resolve_mapping_specs(cfg, obs, [f"{obs}-operational"])[0])
    if args.mappings or args.references:
        _list_context_files(cfg, args)
    if args.cat:
        status = max(status, _cat_files(cfg, names, args.cat))
    if args.dataset_headers:
        status = max(status, _dataset_headers(cfg, args))
    return status


def _observatory_or_none(cfg, names) -> str | None:
    try:
        return pick_observatory(cfg, names)
    except ConfigError:
        return None


def _list_config(cfg, names, as_json: bool) -> None:
    info: dict[str, object] = {"config": cfg.as_dict(), "crds_path": str(cfg.crds_path)}
    obs = _observatory_or_none(cfg, names)
    if obs is not None:
        info["observatory"] = obs
        info["paths"] = {
            "mappings": str(cfg.mapping_dir(obs)),
            "references": str(cfg.reference_dir(obs)),
            "config": str(cfg.config_dir(obs)),
            "pickles": str(cfg.pickle_dir(obs)),
        }
        try:
            info["effective_context"] = resolve_mapping_specs(cfg, obs, None)[0]
        except CrdsError as exc:
            info["effective_context"] = f"unresolved: {exc}"
    if as_json:
        print_json(info)
        return
    for section, values in info.items():
        if isinstance(values, dict):
            print(section)
            for key in sorted(values):
                print(f"\t{key} = {values[key]!r}")
        else:
            print(f"{section} = {values!r}")


def _list_status(cfg, names, as_json: bool) -> None:
    from .._version import __version__

    obs = _observatory_or_none(cfg, names)
    status: dict[str, object] = {
        "CRDS_PATH": str(cfg.crds_path),
        "CRDS_SERVER_URL": cfg.server_url or "undefined",
        "CRDS_MODE": cfg.mode,
        "Readonly Cache": cfg.readonly_cache,
        "Observatory": obs or "undefined",
        "crds_async Version": __version__,
        "Python Version": ".".join(str(n) for n in sys.version_info[:3]),
        "Python Executable": sys.executable,
    }
    if obs is not None:
        try:
            status["Effective Context"] = resolve_mapping_specs(cfg, obs, None)[0]
        except CrdsError as exc:
            status["Effective Context"] = f"unresolved: {exc}"
        from ..fetch.server_config import read_server_config

        try:
            status["Last Synced"] = read_server_config(cfg.config_dir(obs)).get("last_synced", "unknown")
        except CrdsError:
            status["Last Synced"] = "never (no cached server configuration)"
    if as_json:
        print_json(status)
    else:
        for key in sorted(status):
            print(f"{key} = {status[key]!r}")


def _list_context_files(cfg, args) -> None:
    obs = pick_observatory(cfg, args.contexts or [])
    store = mapping_store(cfg, obs)
    contexts = resolve_mapping_specs(cfg, obs, args.contexts)
    references: set[str] = set()
    mappings: set[str] = set()
    for context in contexts:
        if args.mappings:
            mappings.update(store.closure(context))
        if args.references:
            references.update(store.reference_names(context))
    if args.json:
        out: dict[str, list[str]] = {}
        if args.references:
            out["references"] = sorted(references)
        if args.mappings:
            out["mappings"] = sorted(mappings)
        print_json(out)
        return
    # Same order as the reference: references first, then mappings.
    for name in sorted(references):
        print(_reference_path(cfg, obs, name) if args.full_path else name)
    for name in sorted(mappings):
        print(store.path(name) if args.full_path else name)


def _reference_path(cfg, obs: str, name: str) -> Path:
    """Where a reference lives in the cache (flat or per-instrument layout); checks the name."""
    from ..fetch.layout import reference_path

    return reference_path(cfg, obs, name)


def _locate(cfg, obs: str | None, name: str) -> Path:
    path = Path(name)
    if path.exists():
        return path
    if obs is None:
        raise ConfigError(f"{name}: not a file, and the observatory to look it up in is unknown")
    if name.endswith((".pmap", ".imap", ".rmap")):
        return mapping_store(cfg, obs).path(name)
    return _reference_path(cfg, obs, name)


def _cat_files(cfg, names, files) -> int:
    obs = _observatory_or_none(cfg, names)
    status = EXIT_OK
    for name in files:
        try:
            path = _locate(cfg, obs, name)
            print("#" * 80)
            print("File: ", path.resolve())
            print("-" * 80)
            if path.suffix in (".pmap", ".imap", ".rmap"):
                sys.stdout.write(path.read_text(encoding="utf-8"))
            else:
                from ..headers import read_header

                for key, value in read_header(path).items():
                    print(f"{key} = {value!r}")
        except BrokenPipeError:
            raise  # the reader went away (| head): main() ends quietly
        except (OSError, UnicodeDecodeError) as exc:
            print(f"crds-batch list: error: {name}: cannot read ({exc})", file=sys.stderr)
            status = EXIT_PROBLEMS
        except CrdsError as exc:
            print(f"crds-batch list: error: {exc}", file=sys.stderr)
            status = EXIT_PROBLEMS
    return status


def rules_view(cfg, path, context_specs, observatory: str | None) -> dict[str, object]:
    """The parameters the rules see for one dataset file (the reference's ``get_minimum_header``):
    its header completed as the reference's reader does, conditioned, renamed to the rules'
    vocabulary, cut down to the keywords the instrument's rules use (missing ones ``UNDEFINED``)."""
    from ..engine import dataset_parameters, get_evaluator
    from ..instruments import header_instrument
    from ..instruments.common import observatory_of_instrument

    parameters = dataset_parameters(path)
    if observatory is None:
        named = header_instrument(parameters)
        observatory = observatory_of_instrument(named) if named else None
    obs = observatory or pick_observatory(cfg, list(context_specs or []))
    context = resolve_mapping_specs(cfg, obs, context_specs)[0]
    imap, minimized = get_evaluator(context, cfg, obs).minimized(parameters)
    return {"context": context, "instrument": imap.instrument, "parameters": minimized}


def _dataset_headers(cfg, args) -> int:
    """Print the parameters the rules would see for each dataset file."""
    status = EXIT_OK
    out: dict[str, object] = {}
    for name in args.dataset_headers:
        try:
            view = rules_view(cfg, name, args.contexts, args.observatory or cfg.observatory)
        except CrdsError as exc:
            print(f"crds-batch list: error: {exc}", file=sys.stderr)
            status = EXIT_PROBLEMS
            continue
        out[name] = view
        if not args.json:
            print(f"Dataset parameters for {name!r} with respect to {view['context']!r}:")
            for key in sorted(view["parameters"]):
                print(f"\t{key} = {view['parameters'][key]!r}")
    if args.json:
        print_json(out)
    return status
