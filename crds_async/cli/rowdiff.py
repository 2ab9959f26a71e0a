"""``crds-batch rowdiff TABLE_A TABLE_B``: row differences between the tables of two FITS files.

The report has the shape of the reference's ``crds rowdiff``: per table HDU the
ranges of rows removed, added and changed, then a unified diff of the rows; with
``--mode-fields`` the missing, duplicated and changed modes.  Exit status: 0 once
the report is printed (as the reference), 2 when a file cannot be compared.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import CrdsError

EXIT_OK, EXIT_ERROR = 0, 2


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()] if text else []


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rowdiff",
        help="row differences between the table HDUs of two FITS files",
        description="Line up the rows of each table HDU of two FITS files and print the rows removed, "
        "added and changed (or, with --mode-fields, the missing, duplicated and changed modes). "
        "Exit 0: report printed, 2: error.",
    )
    parser.add_argument("table_a", help="first FITS file (Table A)")
    parser.add_argument("table_b", help="second FITS file (Table B)")
    parser.add_argument("--ignore-fields", metavar="A,B", help="comma-separated columns not to compare")
    parser.add_argument("--fields", metavar="A,B", help="comma-separated columns to compare (only these)")
    parser.add_argument("--mode-fields", metavar="A,B",
                        help="comma-separated key columns: compare the tables as sets of modes")
    parser.set_defaults(handler=run_rowdiff)


def run_rowdiff(args: argparse.Namespace) -> int:
    from ..reffiles.rowdiff import row_diff

    try:
        report = row_diff(args.table_a, args.table_b, fields=_names(args.fields),
                          ignore_fields=_names(args.ignore_fields), mode_fields=_names(args.mode_fields))
    except (CrdsError, OSError) as exc:
        print(f"crds-batch rowdiff: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(report.text())
    return EXIT_OK
