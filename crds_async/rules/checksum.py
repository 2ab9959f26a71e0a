"""The sha1sum a mapping carries in its own header (rules.md §5).

The digest covers the UTF-8 text with every line that mentions ``sha1sum``
removed (line endings kept), so a mapping can store its own checksum.
"""

from __future__ import annotations

import hashlib

from ..errors import ChecksumError

__all__ = ["mapping_sha1", "verify_mapping_checksum"]


def mapping_sha1(text: str) -> str:
    """SHA-1 hex digest of ``text`` without its ``sha1sum`` lines."""
    kept = [line for line in text.splitlines(keepends=True) if "sha1sum" not in line]
    return hashlib.sha1("".join(kept).encode("utf-8")).hexdigest()


def verify_mapping_checksum(text: str, header: dict, filename: str) -> None:
    """Raise :class:`ChecksumError` naming ``filename`` if the header's sha1sum is absent or wrong."""
    declared = header.get("sha1sum")
    if declared is None:
        raise ChecksumError(f"sha1sum is missing in {filename!r}")
    if mapping_sha1(text) != str(declared).strip().lower():
        raise ChecksumError(f"sha1sum mismatch in {filename!r}")
