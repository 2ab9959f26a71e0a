"""Where a file lives in the cache: branches, flat/instrument reference layouts.

The reference layout of an observatory (observatories-and-protocol.md §5.3) is
stored in ``<config>/ref_cache_subdir_mode``; when the file is missing it is
``flat`` if the reference directory already holds more than 20 entries, else
``instrument``, and the choice is saved (atomically) unless the cache is read-only.
In ``instrument`` mode references go to ``<refpath>/<instrument>/<name>``
(HST synphot to ``synphot/``; HST also gets the legacy ``jref -> acs`` links).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..atomic import atomic_write
from ..config import Config
from ..errors import ConfigError
from .names import check_name, file_kind

__all__ = [
    "SUBDIR_MODES",
    "HST_PREFIXES",
    "subdir_mode",
    "write_subdir_mode",
    "instrument_of_reference",
    "reference_path",
    "cache_path",
    "find_cached",
    "atomic_write_text",
]

SUBDIR_MODES = ("flat", "instrument")
#: HST instrument -> legacy IRAF directory prefix (without '$').
HST_PREFIXES = {"acs": "jref", "stis": "oref", "nicmos": "nref", "wfc3": "iref",
                "cos": "lref", "wfpc2": "uref", "synphot": "ttab"}
# CDBS names: last character of the first field picks the HST instrument.
_HST_CDBS_LETTERS = {"j": "acs", "o": "stis", "n": "nicmos", "u": "wfpc2", "i": "wfc3", "l": "cos", "m": "synphot"}
INSTRUMENTS = {
    "hst": tuple(HST_PREFIXES),
    "jwst": ("fgs", "miri", "nircam", "niriss", "nirspec", "system"),
    "roman": ("wfi",),
    "tobs": ("acs", "wfc3", "cos", "stis", "nicmos", "wfpc2"),
}
_AUTO_FLAT_THRESHOLD = 20


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (its directory made first) through :func:`crds_async.atomic.atomic_write`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def subdir_mode(cfg: Config, observatory: str) -> str:
    """The reference layout (``flat`` or ``instrument``) of ``observatory`` in ``cfg``'s cache."""
    mode_file = cfg.config_dir(observatory) / "ref_cache_subdir_mode"
    try:
        mode = mode_file.read_text().strip()
    except FileNotFoundError:
        refdir = cfg.reference_dir(observatory)
        entries = len(os.listdir(refdir)) if refdir.is_dir() else 0
        mode = "flat" if entries > _AUTO_FLAT_THRESHOLD else "instrument"
        if not cfg.readonly_cache:
            atomic_write_text(mode_file, mode + "\n")
        return mode
    if mode not in SUBDIR_MODES:
        raise ConfigError(f"{mode_file}: reference layout {mode!r} is not one of {', '.join(SUBDIR_MODES)}")
    return mode


def write_subdir_mode(cfg: Config, observatory: str, mode: str) -> None:
    """Record ``mode`` as the observatory's reference layout."""
    if mode not in SUBDIR_MODES:
        raise ConfigError(f"reference layout {mode!r} is not one of {', '.join(SUBDIR_MODES)}")
    atomic_write_text(cfg.config_dir(observatory) / "ref_cache_subdir_mode", mode + "\n")


def instrument_of_reference(observatory: str, name: str) -> str | None:
    """The instrument a reference belongs to, from its name alone; None when unknown."""
    lower = name.lower()
    known = INSTRUMENTS.get(observatory, ())
    match = re.match(r"(hst|jwst|roman|tobs)_([a-z0-9]+)_", lower)
    if match and match.group(2) in known:
        return match.group(2)
    if observatory == "hst":
        first = re.split(r"[_.]", lower, maxsplit=1)[0]
        if first in ("syn", "th") or lower.endswith(("_syn.fits", "_th.fits", "_tmt.fits", "_tmg.fits", "_tmc.fits")):
            return "synphot"
        if first:
            return _HST_CDBS_LETTERS.get(first[-1])
    if observatory == "roman":
        return "wfi"
    return None


def _hst_legacy_link(refdir: Path, instrument: str) -> None:
    prefix = HST_PREFIXES.get(instrument)
    if not prefix or instrument == "synphot":
        return
    link = refdir / prefix
    if not os.path.lexists(link):
        try:
            (refdir / instrument).mkdir(parents=True, exist_ok=True)
            os.symlink(refdir / instrument, link)
        except FileExistsError:
            pass  # another process made it first


def reference_path(cfg: Config, observatory: str, name: str, mode: str | None = None,
                   *, create_dirs: bool = False, search_existing: bool = True) -> Path:
    """Cache path of reference ``name`` under the observatory's layout.

    In ``instrument`` mode an existing copy in any instrument directory wins, as
    in the reference (``search_existing=False``: the caller already looked); an
    unknown instrument falls back to the flat location.
    """
    check_name(name, where="reference name", kinds=("references",))
    refdir = cfg.reference_dir(observatory)
    mode = mode or subdir_mode(cfg, observatory)
    if mode == "flat":
        return refdir / name
    for instrument in INSTRUMENTS.get(observatory, ()) if search_existing else ():
        if (refdir / instrument / name).exists():
            return refdir / instrument / name
    instrument = instrument_of_reference(observatory, name)
    if instrument is None:
        return refdir / name
    if create_dirs and not cfg.readonly_cache:
        (refdir / instrument).mkdir(parents=True, exist_ok=True)
        if observatory == "hst":
            _hst_legacy_link(refdir, instrument)
    return refdir / instrument / name


def cache_path(cfg: Config, observatory: str, name: str, *, create_dirs: bool = False,
               mode: str | None = None, search_existing: bool = True) -> Path:
    """Cache path of any mapping, reference or config file ``name`` (``mode``: known layout)."""
    kind = file_kind(check_name(name, where="file name", kinds=("mappings", "references", "config")))
    if kind == "mappings":
        return cfg.mapping_dir(observatory) / name
    if kind == "config":
        return cfg.config_dir(observatory) / name
    return reference_path(cfg, observatory, name, mode, create_dirs=create_dirs, search_existing=search_existing)


def find_cached(cfg: Config, observatory: str, pattern: str = "*") -> dict[str, Path]:
    """Every reference file in the cache (flat and instrument directories): ``{name: path}``."""
    refdir = cfg.reference_dir(observatory)
    found: dict[str, Path] = {}
    if not refdir.is_dir():
        return found
    dirs = [refdir] + [refdir / i for i in INSTRUMENTS.get(observatory, ()) if (refdir / i).is_dir()
                       and not (refdir / i).is_symlink()]
    for directory in dirs:
        for path in directory.glob(pattern):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                try:
                    file_kind(path.name)
                except Exception:
                    continue  # lock files, temp files, strangers
                found.setdefault(path.name, path)
    return found
