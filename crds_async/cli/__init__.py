"""``crds-batch``: argument parsing and dispatch only.

Each sub-command lives in its own module under ``crds_async.cli`` and provides
``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``handler(args) -> int`` (the exit code).  Modules are imported
lazily so that ``crds-batch --help`` stays fast.

Global switches, accepted before the sub-command and after it: ``-V/--version``,
``-v/--verbose`` (repeatable), ``--verbosity N`` (as the reference's; ``CRDS_VERBOSITY``
is the default) and ``--debug``.  A sub-command's own option of the same spelling keeps
its meaning after the sub-command (``bestrefs -v`` shows N/A answers, ``list --version``
prints the versions).  Logging is set up once here: ``logging`` records go to stderr,
warnings by default, ``INFO`` from verbosity 1 (one ``-v``), ``DEBUG`` from 50 (``-vv``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import importlib.util
import sys
import traceback
from collections.abc import Sequence

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES", "setup_logging", "verbosity_of"]

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


def _add_global_switches(parser: argparse.ArgumentParser, version: str, suffix: str,
                         default: object) -> None:
    """-V/--version, -v/--verbose, --verbosity and --debug, where the parser has no such option."""
    taken = parser._option_string_actions  # noqa: SLF001 - argparse offers no public lookup

    def free(*flags: str) -> list[str]:
        return [f for f in flags if f not in taken]

    if flags := free("-V", "--version"):
        parser.add_argument(*flags, action="version", version=version, help="print the version and exit")
    if flags := free("-v", "--verbose"):
        parser.add_argument(*flags, action="count", dest="g_verbose" + suffix, default=default,
                            help="log more (repeat for debug output)")
    if flags := free("--verbosity"):
        parser.add_argument(*flags, type=_verbosity, dest="g_verbosity" + suffix, default=default, metavar="N",
                            help="log level as the reference's (0-100; default CRDS_VERBOSITY or 0)")
    if flags := free("--debug"):
        parser.add_argument(*flags, action="store_true", dest="debug" + suffix, default=default,
                            help="print the traceback of an error")


def _verbosity(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--verbosity {text!r} is not a whole number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"--verbosity {value} is not in 0-100")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="crds-batch",
        description="Fast batch CRDS best references, sync and rules inspection.",
    )
    version = f"crds-batch {__version__}"
    _add_global_switches(parser, version, "", 0)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        modname = f"{__name__}.{name}"
        if importlib.util.find_spec(modname) is None:
            continue  # not built yet in this checkout
        importlib.import_module(modname).register(subparsers)
    for sub in subparsers.choices.values():
        # suppressed defaults: what was given before the sub-command stands
        _add_global_switches(sub, version, "_sub", argparse.SUPPRESS)
    return parser


def verbosity_of(args: argparse.Namespace, environ=None) -> int:
    """The run's verbosity: the largest of ``--verbosity``, 50 per ``-v`` (1 for the first
    one), ``CRDS_VERBOSITY``, and a sub-command's own ``--verbose`` (except bestrefs')."""
    env = os.environ if environ is None else environ
    try:
        from_env = int(env.get("CRDS_VERBOSITY", "0").strip() or 0)
    except ValueError:
        from_env = 0  # config_from_env reports it, naming the variable
    count = (getattr(args, "g_verbose", 0) or 0) + (getattr(args, "g_verbose_sub", 0) or 0)
    levels = [from_env, getattr(args, "g_verbosity", 0) or 0, getattr(args, "g_verbosity_sub", 0) or 0,
              {0: 0, 1: 1}.get(count, 50)]
    if getattr(args, "verbose", None) is True and getattr(args, "command", None) != "bestrefs":
        levels.append(1)
    return max(levels)


def setup_logging(verbosity: int) -> None:
    """``logging`` to stderr for every command: warnings, INFO from 1, DEBUG from 50."""
    level = logging.DEBUG if verbosity >= 50 else logging.INFO if verbosity >= 1 else logging.WARNING
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("crds_async").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``crds-batch`` console script."""
    from ..errors import CrdsError, exit_code

    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = bool(getattr(args, "debug", False) or getattr(args, "debug_sub", False))
    setup_logging(verbosity_of(args))
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
