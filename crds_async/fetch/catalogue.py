"""The server's file catalogue: name -> path, size and sha1 of every served file.

Built by walking a cache directory (mappings, references in flat or instrument
layout) and kept in the user's cache directory, with the compiled contexts
(``$XDG_CACHE_HOME/crds_async/catalogue/<served cache>/<obs>.json``), so a restart only
hashes files whose size or mtime changed.  The served cache itself is never written;
when the user's directory cannot be written the catalogue lives in memory only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, user_cache_dir
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
        self.persist = persist
        self.entries: dict[str, CatalogueEntry] = {}

    @property
    def store_path(self) -> Path:
        """Where the catalogue is kept: the user's cache directory, one file per served tree."""
        served = f"{self.cfg.mapping_dir(self.observatory)}\n{self.cfg.reference_dir(self.observatory)}"
        origin = hashlib.sha1(served.encode()).hexdigest()[:16]
        return user_cache_dir() / "catalogue" / origin / f"{self.observatory}-{CATALOGUE_FILE}"

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
                self.store_path.parent.mkdir(parents=True, exist_ok=True)
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
