"""Where ``crds-batch bestrefs`` datasets come from: files today; archive dumps and the
server's dataset parameters plug in here (issue #13).

:func:`add_arguments` registers the input switches; :func:`open_inputs` turns them into
an :class:`Inputs`: the items the batch evaluates (dataset file paths, or
``(dataset id, parameters)`` pairs) with the first few already read for probing.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..config import Config

__all__ = ["add_arguments", "open_inputs", "Inputs", "PROBES"]

#: datasets read, at most, to find the observatory when nothing else names it
PROBES = 8


@dataclass
class Inputs:
    """The batch's items: ``leading`` (already taken, for probing) then ``rest``."""

    leading: list
    rest: Iterator
    #: what the user named, for the "nothing found" message
    described: str
    #: how many items in all, when known without reading them (a progress bar's total)
    total: int | None = None

    def items(self) -> Iterable:
        yield from self.leading
        yield from self.rest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The input switches of ``bestrefs``."""
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="dataset files, directories (recursive), globs, @listfile, or - for stdin")
    parser.add_argument("--files", nargs="+", default=[], metavar="FILE", help="more dataset paths")


def check_arguments(args: argparse.Namespace) -> str | None:
    """A usage problem of the input switches (one line), or None."""
    if not (list(args.paths) + list(args.files)):
        return "give at least one PATH (or - for stdin)"
    return None


def open_inputs(args: argparse.Namespace, cfg: Config) -> Inputs:
    """The items of the batch the switches name (files discovered lazily)."""
    from ..engine.batch import discover

    specs = list(args.paths) + list(args.files)
    paths = discover(specs)
    leading = list(itertools.islice(paths, PROBES))  # read again by the batch
    return Inputs(leading, paths, " ".join(specs))
