"""Mapping files of a CRDS cache: read (size-checked, UTF-8), then handed to the pure rules core to parse."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MappingSyntaxError, RulesError
from ..rules.certify import MAX_CERTIFY_CHARS, Problem, certify_mapping_text
from ..rules.contexts import is_mapping_name
from ..rules.inspect import MappingStore
from ..rules.parse import MAX_MAPPING_BYTES, ParsedMapping, parse_checked_mapping

__all__ = ["read_mapping_text", "load_mapping_file", "FileMappingStore", "certify_mapping_file"]


def read_mapping_text(path: str | Path, limit: int = MAX_MAPPING_BYTES) -> str:
    """The text of a mapping file, with universal newlines as the reference reads it.

    Raises
    ------
    MappingSyntaxError
        Larger than ``limit`` bytes (checked before reading), or not UTF-8.
    RulesError
        Unreadable (the message names the file).
    """
    path = Path(path)
    name = path.name
    try:
        with open(path, encoding="utf-8", newline=None) as handle:
            if os.fstat(handle.fileno()).st_size > limit:
                raise MappingSyntaxError(f"{name}:1: mapping larger than {limit // 2**20} MB")
            return handle.read()
    except UnicodeDecodeError as exc:
        raise MappingSyntaxError(f"{name}:?: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise RulesError(f"{name}: cannot read mapping: it is a directory") from None
    except OSError as exc:
        raise RulesError(f"{name}: cannot read mapping: {exc.strerror or exc}") from None


def load_mapping_file(path: str | Path, *, verify_checksum: bool = True) -> ParsedMapping:
    """Read, parse and check one mapping file (:func:`~crds_async.rules.parse.parse_checked_mapping`)."""
    path = Path(path)
    return parse_checked_mapping(read_mapping_text(path), path.name, verify_checksum=verify_checksum)


class FileMappingStore(MappingStore):
    """The parsed mappings of one cache directory, loaded on demand and kept.

    Parameters
    ----------
    mapping_dir : Path
        Directory holding the observatory's ``.pmap/.imap/.rmap`` files.
    verify_checksum : bool
        Check each file's ``sha1sum`` header while loading.
    """

    def __init__(self, mapping_dir: str | Path, *, verify_checksum: bool = True) -> None:
        super().__init__(verify_checksum=verify_checksum)
        self.mapping_dir = Path(mapping_dir)

    def path(self, name: str) -> Path:
        """Cache path of mapping ``name``; rejects anything but a plain mapping file name."""
        if not is_mapping_name(name):
            raise RulesError(f"{name!r} is not a plain mapping file name (.pmap/.imap/.rmap)")
        return self.mapping_dir / name

    def read_text(self, name: str) -> str:
        path = self.path(name)
        if not path.is_file():
            raise RulesError(f"{path}: mapping not found in the cache")
        return read_mapping_text(path)

    def all_names(self) -> list[str]:
        if not self.mapping_dir.is_dir():
            return []
        return sorted(p.name for p in self.mapping_dir.iterdir() if is_mapping_name(p.name))


def certify_mapping_file(path: str | Path, **checks) -> list[Problem]:
    """:func:`~crds_async.rules.certify.certify_mapping_text` of a file (unreadable: one problem)."""
    path = Path(path)
    if path.suffix not in (".pmap", ".imap", ".rmap"):
        return certify_mapping_text("", path.name, **checks)  # says what it is not
    try:
        text = read_mapping_text(path, limit=MAX_CERTIFY_CHARS)
    except MappingSyntaxError as exc:
        message = str(exc).split(": ", 1)[-1]
        return [Problem(path.name, "syntax", "file is too large to be a mapping" if "larger" in message
                        else f"cannot read: {message}")]
    except RulesError as exc:
        return [Problem(path.name, "syntax", f"cannot read: {str(exc).split(': ', 1)[-1]}")]
    return certify_mapping_text(text, path.name, **checks)
