"""The server's file catalogue: name -> path, size and sha1 of every served file.

Built by walking a cache directory (mappings, references in flat or instrument
layout) and kept in ``<config>/<obs>/crds_batch_catalogue.json`` so a restart only
hashes files whose size or mtime changed.  A read-only cache keeps it in memory.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from .download import file_sha1
from .layout import atomic_write_text, find_cached
from .names import MAPPING_SUFFIXES

__all__ = ["CatalogueEntry", "Catalogue", "CATALOGUE_FILE"]

log = logging.getLogger(__name__)

CATALOGUE_FILE = "crds_batch_catalogue.json"


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    path: Path
    size: int
    sha1: str
    kind: str  # "mapping" or "reference"


def _writable_dir(directory: Path) -> bool:
    # Mode bits, not os.access: root passes os.access on a read-only shared cache.
    try:
        return bool(directory.stat().st_mode & stat.S_IWUSR) and os.access(directory, os.W_OK)
    except OSError:
        return False


class Catalogue:
    """Every mapping and reference of one observatory in a cache, with size and sha1.

    Parameters
    ----------
    cfg : Config
        Locates the served cache's branches.
    observatory : str
    """

    def __init__(self, cfg: Config, observatory: str, *, persist: bool = True) -> None:
        self.cfg = cfg
        self.observatory = observatory
        self.persist = persist and _writable_dir(cfg.config_dir(observatory))
        self.entries: dict[str, CatalogueEntry] = {}

    @property
    def store_path(self) -> Path:
        return self.cfg.config_dir(self.observatory) / CATALOGUE_FILE

    def _load_store(self) -> dict[str, list]:
        try:
            data = json.loads(self.store_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def refresh(self) -> int:
        """Re-walk the cache; hash only new or changed files.  Returns the number hashed."""
        known = self._load_store()
        files: dict[str, tuple[Path, str]] = {}
        mapdir = self.cfg.mapping_dir(self.observatory)
        if mapdir.is_dir():
            for path in mapdir.iterdir():
                if path.name.endswith(MAPPING_SUFFIXES) and path.is_file():
                    files[path.name] = (path, "mapping")
        for name, path in find_cached(self.cfg, self.observatory).items():
            files.setdefault(name, (path, "reference"))
        hashed = 0
        entries: dict[str, CatalogueEntry] = {}
        store: dict[str, list] = {}
        for name, (path, kind) in sorted(files.items()):
            stat = path.stat()
            previous = known.get(name)
            if (isinstance(previous, list) and len(previous) == 3
                    and previous[0] == stat.st_size and previous[1] == stat.st_mtime_ns):
                sha1 = str(previous[2])
            else:
                sha1 = file_sha1(path)
                hashed += 1
            entries[name] = CatalogueEntry(name, path, stat.st_size, sha1, kind)
            store[name] = [stat.st_size, stat.st_mtime_ns, sha1]
        self.entries = entries
        if self.persist and (hashed or len(store) != len(known)):
            try:
                atomic_write_text(self.store_path, json.dumps(store, separators=(",", ":")))
            except OSError as exc:
                log.info("catalogue kept in memory only (%s is not writable: %s)", self.store_path,
                         exc.strerror or exc)
        return hashed

    def get(self, name: str) -> CatalogueEntry | None:
        return self.entries.get(name)

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, e in self.entries.items() if kind is None or e.kind == kind)

    def download_metadata(self) -> dict[str, dict[str, str]]:
        """``{name: {"size": str, "sha1sum": str}}`` as ``server_info["download_metadata"]`` carries."""
        return {n: {"size": str(e.size), "sha1sum": e.sha1} for n, e in self.entries.items()}

    def exists(self) -> bool:
        return os.path.exists(self.store_path)
