"""Open and verify one reference file of any kind with the standard libraries.

FITS goes through astropy (structure verified, ``CHECKSUM``/``DATASUM`` checked,
binary and ASCII tables read by ``astropy.io.fits``), ASDF through ``asdf``
(validated against the schemas of the tags the installed extensions know),
JSON through :mod:`json` and YAML through ``yaml.safe_load``.  What is wrong with
the file comes back as :class:`Finding` values; only a file that cannot be read
at all (missing, a directory, an unknown kind) raises :class:`UnusableInput`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CrdsError
from ..instruments.asdf_tree import flatten_tree, history_text
from .kinds import kind_of

__all__ = ["Finding", "Table", "OpenedReference", "UnusableInput", "open_reference"]

#: The largest JSON/YAML reference read into memory (real ones are kilobytes).
_MAX_TEXT = 64 * 1024 * 1024


class UnusableInput(CrdsError):
    """The input is not a reference file that can be checked at all (exit 2)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a reference: ``check`` is the kind of check, ``where`` a keyword or row."""

    check: str
    message: str
    where: str | None = None


@dataclass(slots=True)
class Table:
    """One table HDU: its index in the file, column names (upper case) and rows as tuples."""

    segment: int
    name: str
    colnames: list[str]
    rows: list[tuple]


@dataclass(slots=True)
class OpenedReference:
    """What certify needs from a reference: its kind, flat header, tables and findings."""

    path: Path
    kind: str
    header: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    asdf_standard: str | None = None


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


def _fits_value(value: object) -> str:
    return str(value)


def _open_fits(ref: OpenedReference) -> None:
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError

    # Checksums are read from each HDU's verdict, not from astropy's warnings: files are
    # certified on a thread pool, and the warnings machinery is process-wide (one thread's
    # catch_warnings could swallow another's warning).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            hdul = fits.open(ref.path, checksum=True, memmap=False, lazy_load_hdus=False)
        except (OSError, ValueError, TypeError, IndexError, KeyError, VerifyError) as exc:
            ref.findings.append(Finding("format", f"not a readable FITS file: {_first_line(exc)}"))
            return
        with hdul:
            try:
                hdul.verify("exception")
            except (VerifyError, ValueError) as exc:
                ref.findings.append(Finding("format", f"FITS verification failed: {_first_line(exc)}"))
            for index, hdu in enumerate(hdul):
                where = (hdu.name if hdu.name != "PRIMARY" else "", hdu.ver)
                if getattr(hdu, "_checksum_valid", 1) == 0:
                    ref.findings.append(Finding("checksum", f"Checksum verification failed for HDU {where!r}.",
                                                "CHECKSUM"))
                if getattr(hdu, "_datasum_valid", 1) == 0:
                    ref.findings.append(Finding("checksum", f"Datasum verification failed for HDU {where!r}.",
                                                "DATASUM"))
                history = [str(v) for v in hdu.header.get("HISTORY", [])]
                if history and "HISTORY" not in ref.header:
                    ref.header["HISTORY"] = "\n".join(history)
                for key, value in hdu.header.items():
                    if key and key not in ("COMMENT", "HISTORY") and key not in ref.header:
                        ref.header[key] = _fits_value(value)
                if hdu.name == "ASDF":
                    ref.findings.append(Finding("format", "FITS references must not include an ASDF extension",
                                                "ASDF"))
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                    try:
                        data = hdu.data
                        names = [name.upper() for name in (data.columns.names if data is not None else [])]
                        rows = [tuple(row) for row in data] if data is not None else []
                    except (ValueError, TypeError, OSError) as exc:
                        ref.findings.append(Finding("format", f"table HDU {index} unreadable: {_first_line(exc)}"))
                        continue
                    ref.tables.append(Table(index, hdu.name, names, rows))


def _open_asdf(ref: OpenedReference) -> None:
    import asdf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with asdf.open(ref.path, lazy_load=True, memmap=False) as handle:
                tree = dict(handle.tree)
                version = getattr(handle, "version_string", None)
                ref.asdf_standard = str(version) if version else None
                ref.header.update(flatten_tree({k: v for k, v in tree.items() if k != "history"}))
                history = tree.get("history")
                entries = history.get("entries") if isinstance(history, dict) else history
                if entries:
                    ref.header.setdefault("META.HISTORY", history_text(entries))
    except asdf.ValidationError as exc:  # type: ignore[attr-defined]
        ref.findings.append(Finding("schema", f"ASDF schema validation failed: {_first_line(exc)}"))
    except Exception as exc:  # noqa: BLE001 - asdf and yaml raise many kinds; one line names the problem
        ref.findings.append(Finding("format", f"not a readable ASDF file: {_first_line(exc)}"))


def _read_text(path: Path) -> str | None:
    if path.stat().st_size > _MAX_TEXT:
        return None
    return path.read_text("utf-8")


def _open_json_yaml(ref: OpenedReference) -> None:
    try:
        text = _read_text(ref.path)
    except UnicodeDecodeError as exc:
        ref.findings.append(Finding("format", f"not UTF-8 text: {_first_line(exc)}"))
        return
    if text is None:
        ref.findings.append(Finding("format", f"larger than {_MAX_TEXT // (1024 * 1024)} MB"))
        return
    try:
        if ref.kind == "json":
            tree = json.loads(text)
        else:
            import yaml

            tree = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - json/yaml syntax errors of several classes
        what = "JSON" if ref.kind == "json" else "YAML"
        ref.findings.append(Finding("format", f"{what} syntax error: {' '.join(str(exc).split())[:200]}"))
        return
    if not isinstance(tree, dict):
        ref.findings.append(Finding("format", f"top level is a {type(tree).__name__}, not a mapping"))
        return
    ref.header.update(flatten_tree(tree))


_OPENERS = {"fits": _open_fits, "asdf": _open_asdf, "json": _open_json_yaml, "yaml": _open_json_yaml}


def open_reference(path: str | Path) -> OpenedReference:
    """Open, verify and summarise the reference at ``path``.

    Raises
    ------
    UnusableInput
        ``path`` does not exist, is not a regular file, cannot be read, or is not
        FITS, ASDF, JSON or YAML.
    """
    path = Path(path)
    if not path.is_file():
        raise UnusableInput(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    kind = kind_of(path)
    if kind is None:
        raise UnusableInput(f"{path}: not a FITS, ASDF, JSON or YAML reference")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise UnusableInput(f"{path}: cannot be read ({exc.strerror or exc})") from None
    ref = OpenedReference(path, kind)
    _OPENERS[kind](ref)
    return ref
