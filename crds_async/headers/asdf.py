"""ASDF (Roman) dataset headers: the tree flattened as the reference's reader does."""

from __future__ import annotations

from ..errors import HeaderError

__all__ = ["read_asdf_header", "ASDF_MAGIC"]

ASDF_MAGIC = b"#ASDF"


def read_asdf_header(path) -> dict[str, str]:
    """Upper-case dotted keys of the ASDF tree -> text (arrays are never loaded)."""
    import asdf

    from ..instruments.asdf_tree import asdf_header

    name = str(path)
    try:
        with asdf.open(name, lazy_load=True, memmap=False) as handle:
            tree = dict(handle.tree)
            history = tree.get("history")
            entries = history.get("entries") if isinstance(history, dict) else history
            return asdf_header(tree, entries)
    except HeaderError:
        raise
    except Exception as exc:  # noqa: BLE001 - asdf raises many kinds; one line names the file
        raise HeaderError(f"{name}: not a readable ASDF file ({str(exc).splitlines()[0][:120]})") from None
