"""``ensure_references``: the one call a pipeline makes to have references in the cache.

Used by ``getreferences``/``agetreferences`` and ``crds-batch bestrefs --sync-references``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..config import Config
from ..errors import FetchError
from .fetcher import CacheFetcher
from .layout import reference_path as _layout_reference_path
from .names import check_name, geis_conjugate

__all__ = ["ensure_references", "reference_path"]


def reference_path(cfg: Config, observatory: str, name: str) -> Path:
    """Cache path of reference ``name`` (flat or by instrument, §5.3); the name is checked."""
    return _layout_reference_path(cfg, observatory, name)


async def ensure_references(cfg: Config, observatory: str, names: Iterable[str], *,
                            context: str | None = None, jobs: int = 8,
                            progress: bool | None = None, ignore_cache: bool = False) -> dict[str, Path]:
    """Cache paths of ``names``, downloading (verified, ``jobs`` at a time) those missing.

    GEIS header files (``.rNh``) bring their data file (``.rNd``) along, as in the reference.

    Parameters
    ----------
    cfg : Config
        ``CRDS_SERVER_URL``, retries, ``CRDS_READONLY_CACHE``, cache paths.
    observatory : str
    names : iterable of str
        Reference file names (untrusted: each is checked).
    context : str, optional
        Accepted for symmetry with the reference's API; downloads do not depend on it.
    jobs : int
        Concurrent transfers.
    ignore_cache : bool
        Also check the cached ones against the server's sha1 (fetched again when they
        differ); not with a read-only cache.

    Returns
    -------
    dict
        ``{name: Path}`` for every requested name (and GEIS conjugates).

    Raises
    ------
    UnsafeNameError
        A name is not a plain reference file name.
    FetchError
        Some files could not be made present (read-only cache: no server is contacted;
        unknown to the server,
        transfer or verification failed); the message lists them.  Files that did
        arrive stay in the cache.
    """
    wanted = [check_name(n, where="reference list", kinds=("references",)) for n in names]
    wanted += [c for n in wanted if (c := geis_conjugate(n))]
    wanted = list(dict.fromkeys(wanted))
    paths = {name: reference_path(cfg, observatory, name) for name in wanted}
    missing = [name for name, path in paths.items() if not path.exists()]
    if cfg.readonly_cache:
        if missing:  # no server is contacted
            listed = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise FetchError(f"CRDS_READONLY_CACHE is set and {len(missing)} reference(s) are not cached: {listed}")
        return paths
    if ignore_cache:
        missing = list(paths)
    if not missing:
        return paths
    async with CacheFetcher(cfg, observatory, jobs=jobs, progress=progress) as fetcher:
        report, refused = await fetcher.fetch(missing, verify_existing_sha1=ignore_cache)
    failures = dict(refused)
    failures.update({o.name: o.error or "failed" for o in report.failed})
    # Instrument-mode paths of new files are decided when they are fetched.
    paths.update({o.name: o.path for o in report.outcomes})
    if failures:
        first = next(iter(failures.items()))
        raise FetchError(f"{len(failures)} of {len(missing)} reference download(s) failed; "
                         f"first: {first[0]}: {first[1]}")
    return paths
