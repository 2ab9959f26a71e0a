"""Everything that touches a CRDS server or the cache's files.

Modules (one job each):

- :mod:`.names`       untrusted file names: plain names with expected suffixes only
- :mod:`.layout`      cache paths, flat/instrument reference layouts, atomic small writes
- :mod:`.locks`       one lock per cache file (the download's temp file, ``fcntl.flock``)
- :mod:`.client`      async JSON-RPC client with the reference's retry semantics
- :mod:`.download`    verified, bounded-parallel downloads (temp file, size+sha1, rename)
- :mod:`.fetcher`     server info, download URLs, CRDS_MODE; ties client and downloads together
- :mod:`.references`  ``ensure_references``: have these references in the cache
- :mod:`.closure`     mapping/reference closures of contexts (from the rules engine)
- :mod:`.sync`        ``crds-batch sync``
- :mod:`.catalogue`, :mod:`.faults`, :mod:`.server`   ``crds-batch serve``

Submodules are imported on first use, so ``import crds_async.fetch`` stays cheap.
"""

from __future__ import annotations

import importlib

__all__ = ["ensure_references", "reference_path", "run_sync", "SyncOptions", "check_name"]

_EXPORTS = {
    "ensure_references": "references",
    "reference_path": "references",
    "run_sync": "sync",
    "SyncOptions": "sync",
    "check_name": "names",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
