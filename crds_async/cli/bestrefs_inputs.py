"""Where ``crds-batch bestrefs`` datasets come from: files, archive parameter dumps, or the
server's dataset parameters (issue #13).

:func:`add_arguments` registers the input switches; :func:`open_inputs` turns them into
an :class:`Inputs`: the items the batch evaluates (dataset file paths, or
``(dataset id, parameters)`` pairs) with the first few already read for probing.

The sources, as the reference's ``crds bestrefs`` has them (one at most, or dumps alone):
``PATH``/``--files``; ``--load-pickles`` dumps; ``--datasets IDS``, ``--instruments NAMES``,
``--all-instruments`` and ``--diffs-only`` (the instruments whose rules differ from
``--old-context`` to ``--new-context``) asking ``CRDS_SERVER_URL``.  ``--only-ids``,
``--drop-ids`` and ``--datasets-since DATE|auto`` choose among them; ``--save-pickle``
writes the parameters the batch loaded.  Archive datasets come in sorted id order.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..config import Config

__all__ = ["add_arguments", "check_arguments", "open_inputs", "Inputs", "PROBES", "names_are_ids",
           "compares_with_recorded"]

#: datasets read, at most, to find the observatory when nothing else names it
PROBES = 8

#: instruments of an observatory's list that have no datasets (the reference leaves them out)
_NOT_INSTRUMENTS = frozenset(("all", "system", "synphot"))


@dataclass
class Inputs:
    """The batch's items: ``leading`` (already taken, for probing) then ``rest``."""

    leading: list
    rest: Iterator
    #: what the user named, for the "nothing found" message
    described: str
    #: how many items in all, when known without reading them (a progress bar's total)
    total: int | None = None
    #: called once every item has been taken (``--save-pickle`` then writes its file)
    finish: Callable[[], None] | None = None
    #: called when the batch stops before the end
    abort: Callable[[], None] | None = None
    #: the same datasets as spans of one dump, for workers that list them themselves
    #: (``DumpItems.spans``); None when only :meth:`items` gives them
    spans: list | None = None

    def close(self) -> None:
        """Done with the inputs without (all of) :meth:`items`: files closed."""
        close = getattr(self.rest, "close", None)
        if close is not None:
            close()

    def items(self) -> Iterable:
        try:
            yield from self.leading
            yield from self.rest
        except BaseException:
            if self.abort is not None:
                self.abort()
            raise
        else:
            if self.finish is not None:
                self.finish()
        finally:
            self.close()


def _since(text: str) -> str:
    from ..engine.inputs import since_date

    try:
        return since_date(text)
    except (ValueError, Exception) as exc:  # noqa: BLE001 - the date parser's own errors
        raise argparse.ArgumentTypeError(f"{text!r} is not a date ({exc})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The input switches of ``bestrefs``."""
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="dataset files, directories (recursive), globs, @listfile, or - for stdin")
    parser.add_argument("--files", nargs="+", default=[], metavar="FILE", help="more dataset paths")
    parser.add_argument("-p", "--load-pickles", nargs="+", default=None, metavar="FILE",
                        help="dataset parameters from dumps (JSON, JSON lines, or pickles read without "
                             "running anything), worst to best: later ones correct earlier ones")
    parser.add_argument("-a", "--save-pickle", default=None, metavar="FILE",
                        help="write the parameters of the datasets loaded to FILE (.json lines or .pkl), "
                             "as crds bestrefs --save-pickle does")
    parser.add_argument("-d", "--datasets", nargs="+", default=None, metavar="ID",
                        help="dataset ids whose parameters CRDS_SERVER_URL gives")
    parser.add_argument("-i", "--instruments", nargs="+", default=None, metavar="NAME",
                        help="every dataset of these instruments CRDS_SERVER_URL lists")
    parser.add_argument("--all-instruments", action="store_true",
                        help="every dataset of every instrument of the observatory, from CRDS_SERVER_URL")
    parser.add_argument("--diffs-only", action="store_true",
                        help="the datasets (from CRDS_SERVER_URL) of the instruments whose rules differ "
                             "from --old-context to --new-context")
    parser.add_argument("--datasets-since", type=_since, default=None, metavar="DATE|auto",
                        help="only datasets observed on or after DATE; auto: per instrument, the earliest "
                             "date the references added or removed by the new context apply to")
    parser.add_argument("--only-ids", nargs="*", default=None, metavar="ID",
                        help="only these dataset ids (X means X:X)")
    parser.add_argument("--drop-ids", nargs="*", default=[], metavar="ID",
                        help="skip these dataset ids (X means X:X)")


def _diffs_only(args: argparse.Namespace) -> bool:
    return bool(args.diffs_only or getattr(args, "affected_datasets", False))


def _server_modes(args: argparse.Namespace) -> list[str]:
    modes = []
    if args.datasets:
        modes.append("--datasets")
    if args.instruments:
        modes.append("--instruments")
    if args.all_instruments:
        modes.append("--all-instruments")
    if _diffs_only(args):
        modes.append("--diffs-only")
    return modes


def check_arguments(args: argparse.Namespace) -> str | None:
    """A usage problem of the input switches (one line), or None."""
    files = list(args.paths) + list(args.files)
    modes = (["dataset paths"] if files else []) + _server_modes(args)
    if len(modes) > 1:
        return f"give one source of datasets, not {' and '.join(modes)}"
    if args.load_pickles and modes:
        return f"--load-pickles reads its datasets alone here, not with {modes[0]}"
    if not modes and not args.load_pickles:
        return ("give at least one PATH (or - for stdin), or --load-pickles, --datasets, --instruments, "
                "--all-instruments or --diffs-only")
    since = args.datasets_since or ("auto" if getattr(args, "affected_datasets", False) else None)
    if since == "auto" and not args.old_context:
        return "--datasets-since auto needs --old-context"
    if _diffs_only(args) and not args.old_context:
        return "--diffs-only needs --old-context"
    if args.save_pickle and not args.save_pickle.endswith((".json", ".pkl")):
        return f"--save-pickle {args.save_pickle}: name it .json (JSON lines) or .pkl"
    if args.save_pickle and not os.path.isdir(os.path.dirname(os.path.abspath(args.save_pickle))):
        return f"--save-pickle {args.save_pickle}: no such directory"
    if args.save_pickle and files:
        return "--save-pickle writes archive parameters: use it with --load-pickles or a server source"
    return None


def _notify(line: str) -> None:
    print(f"crds-batch bestrefs: {line}", file=sys.stderr)


def names_are_ids(args) -> bool:
    """The batch's datasets are archive ids (dumps, the server's datasets), not file paths."""
    return bool(args.load_pickles or _server_modes(args))


def compares_with_recorded(args) -> bool:
    """The batch compares new answers with the datasets' recorded best references (no old
    context: ``--compare-source-bestrefs``, or a report of affected datasets)."""
    return not args.old_context and bool(args.compare_source_bestrefs or args.print_affected
                                         or args.print_affected_details)


def open_inputs(args: argparse.Namespace, cfg: Config) -> Inputs:
    """The items of the batch the switches name (files discovered lazily, archive datasets
    streamed in id order)."""
    if not names_are_ids(args):
        from ..engine.batch import discover

        specs = list(args.paths) + list(args.files)
        paths = discover(specs)
        leading = list(itertools.islice(paths, PROBES))  # read again by the batch
        return Inputs(leading, paths, " ".join(specs))
    return _archive_inputs(args, cfg)


def _contexts(args: argparse.Namespace, cfg: Config, observatory: str | None):
    """(observatory, new context name, old context name or None), rules loaded (and fetched
    when missing and a server may be asked) through the process's registry."""
    from ..engine.rules_sync import evaluator_with_rules
    from ..rules.contexts import observatory_of_spec

    spec = args.context or cfg.context
    observatory = (observatory_of_spec(spec) if spec else None) or observatory or cfg.observatory
    if observatory is None:
        from ..errors import ConfigError

        raise ConfigError("cannot tell the observatory of the archive's datasets: pass --new-context "
                          "(e.g. hst_0729.pmap) or set CRDS_OBSERVATORY")
    spec = spec or f"{observatory}-operational"
    new = evaluator_with_rules(spec, cfg, observatory, notify=_notify).context.name
    old = None
    if args.old_context:
        old = evaluator_with_rules(args.old_context, cfg, observatory, notify=_notify).context.name
    return observatory, new, old


def _server_observatory(cfg: Config) -> str | None:
    """What ``CRDS_SERVER_URL`` says it serves (None when no server is named)."""
    import asyncio

    from ..fetch.client import CrdsClient

    if not cfg.server_url:
        return None

    async def ask() -> object:
        async with CrdsClient(cfg.server_url, cfg) as client:
            return (await client.get_server_info()).get("observatory")

    found = asyncio.run(ask())
    return found if isinstance(found, str) else None


def _archive_inputs(args: argparse.Namespace, cfg: Config) -> Inputs:
    from ..engine.inputs import Selection, affected_instruments, auto_datasets_since, dump_items
    from ..fetch.mapping_files import FileMappingStore

    server = bool(_server_modes(args))
    observatory = None
    needs_rules = server or args.old_context or (args.datasets_since or "") == "auto" or \
        getattr(args, "affected_datasets", False)
    if needs_rules and not (args.context or cfg.context or cfg.observatory) and server:
        observatory = _server_observatory(cfg)
    observatory, new, old = _contexts(args, cfg, observatory) if needs_rules else (None, None, None)
    store = FileMappingStore(cfg.mapping_dir(observatory)) if observatory else None

    since = args.datasets_since or ("auto" if getattr(args, "affected_datasets", False) else None)
    instruments: list[str] | None = None
    if _diffs_only(args):
        instruments, every_date = affected_instruments(store, old, new)
        _notify(f"rules differences from {old} to {new} affect: {', '.join(instruments) or 'no instrument'}")
        if since == "auto" and every_date:
            _notify("checking all dates: an rmap header changed or a file was deleted")
            since = "1900-01-01 00:00:00"
    elif args.instruments:
        instruments = [i.lower() for i in args.instruments]
    elif args.all_instruments:
        from ..instruments import personality

        instruments = [i for i in personality(observatory).INSTRUMENTS if i not in _NOT_INSTRUMENTS]
    if since == "auto":
        since = auto_datasets_since(store, old, new)
        _notify("datasets since, by instrument: "
                + (", ".join(f"{k} {v}" for k, v in sorted(since.items())) or "none (every date)"))
    selection = Selection.of(args.only_ids, args.drop_ids, since)

    writer = None
    if args.save_pickle:
        from ..sources.save import DumpWriter

        writer = DumpWriter(args.save_pickle)

    saved = None
    if writer is not None:
        only = selection.only_ids

        def saved(dataset_id: str, params: object) -> None:
            if only is None or dataset_id in only:
                writer.add(dataset_id, params)

    spans = None  # a dump's, for workers that list it themselves
    if args.load_pickles:
        items = dump_items(args.load_pickles, selection, saved=saved,
                           on_skipped=lambda exc: _notify(f"skipping bad dataset: {exc}"))
        rest: Iterator = iter(items)
        total, described, spans = items.total, " ".join(args.load_pickles), items.spans
    else:
        from ..archive.remote import server_items

        if instruments is not None and not instruments:
            rest, total = iter(()), 0
        else:
            # the workers ask the server for the parameters, unless this process needs them:
            # --save-pickle writes them, a comparison with recorded references reads them
            found = server_items(cfg, new, observatory, instruments=instruments, datasets=args.datasets,
                                 selection=selection, notify=_notify,
                                 deferred=(saved is None and not compares_with_recorded(args)
                                           and not args.remote_bestrefs))
            rest, total = iter(found), found.total
            if saved is not None:
                rest = _tap_all(rest, saved)
        described = (" ".join(args.datasets) if args.datasets else
                     f"the archive's {', '.join(instruments or [])} datasets")
    finish = abort = None
    if writer is not None:
        finish, abort = writer.close, writer.abort
    inputs = Inputs([], rest, described, total, finish, abort, spans)
    try:
        inputs.leading = list(itertools.islice(rest, PROBES))
    except BaseException:
        if abort is not None:
            abort()
        raise
    if not inputs.leading and finish is not None:
        finish()  # nothing to run: the (empty) dump is still written, as the reference does
    return inputs


def _tap_all(items: Iterator, saved: Callable[[str, object], None]) -> Iterator:
    for item in items:
        saved(*item)
        yield item
