"""``crds-batch``: argument parsing and dispatch only.

Each sub-command lives in its own module under ``crds_async.cli`` and provides
``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``handler(args) -> int`` (the exit code).  Modules are imported
lazily so that ``crds-batch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Sequence

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES"]

#: sub-command modules, in the order ``--help`` lists them
SUBCOMMAND_MODULES = (
    "bestrefs",
    "sync",
    "serve",
    "listing",
    "diff",
    "rowdiff",
    "matches",
    "uses",
    "certify",
    "catalogue",
)

from ..errors import EXIT_FATAL as EXIT_USAGE
from ..errors import EXIT_OK
from ..errors import EXIT_PROBLEMS as EXIT_SOME_FAILED


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="crds-batch",
        description="Fast batch CRDS best references, sync and rules inspection.",
    )
    parser.add_argument("--version", action="version", version=f"crds-batch {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        modname = f"{__name__}.{name}"
        if importlib.util.find_spec(modname) is None:
            continue  # not built yet in this checkout
        importlib.import_module(modname).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crds-batch`` console script."""
    from ..errors import CrdsError, exit_code

    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(handler(args))
    except CrdsError as exc:
        print(f"crds-batch {args.command}: error: {exc}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return exit_code(exc)
    except KeyboardInterrupt:
        print(f"crds-batch {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `crds-batch bestrefs ... | head` closed the pipe: not an error.
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - a bug: one line (the traceback with --debug), fatal
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"crds-batch {args.command}: internal error: {type(exc).__name__}: {first} "
              "(run again with --debug for the traceback, and please report it)", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
