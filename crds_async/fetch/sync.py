"""``crds-batch sync``: bring contexts, their rules and references into the cache, verified.

Same switches and meaning as the reference's ``crds sync`` (observatories-and-protocol.md
§4.8), with parallel verified downloads.  Differences, on purpose:

- a file under its final name is always complete (atomic rename after size+sha1);
  an existing file whose size differs from the server's is fetched again rather
  than trusted;
- ``--check-files`` failures and download failures are all reported, and the exit
  status says whether anything failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pprint
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..tasks import run_all
from ..errors import ConfigError, CrdsError, FetchError
from ..rules.contexts import is_context_spec, resolve_context
from .closure import RulesView
from .download import file_sha1
from .fetcher import CacheFetcher
from .client import CrdsClient
from .layout import (HST_PREFIXES, INSTRUMENTS, atomic_write_text, find_cached, reference_path,
                     subdir_mode, write_subdir_mode)
from .names import check_name, file_kind, geis_conjugate

__all__ = ["SyncOptions", "SyncResult", "run_sync", "organize_references", "sync_observatory",
           "can_fetch_rules", "sync_context_rules"]

log = logging.getLogger(__name__)


@dataclass
class SyncOptions:
    """The switches of ``crds-batch sync`` (see ``crds-batch sync --help``)."""

    contexts: list[str] = field(default_factory=list)
    all: bool = False
    files: list[str] = field(default_factory=list)
    fetch_references: bool = False
    dataset_files: list[str] = field(default_factory=list)
    check_files: bool = False
    check_sha1sum: bool = False
    repair_files: bool = False
    purge_mappings: bool = False
    purge_references: bool = False
    organize: str | None = None
    dry_run: bool = False
    jobs: int = 8
    progress: bool | None = None
    stall_seconds: float = 60.0
    #: ``(observatory, contexts, dataset files, report(error line)) -> reference names`` for
    #: ``dataset_files`` (``crds_async.engine.datasets.references_of_datasets`` bound to a configuration)
    dataset_references: Callable[[str, list[str], list[str], Callable[[str], None]], set[str]] | None = None


@dataclass
class SyncResult:
    """What a sync did; ``errors`` empty means success."""

    contexts: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    downloaded_bytes: int = 0
    #: time spent in download batches (first request to last byte), for transfer rates
    transfer_seconds: float = 0.0
    checked: int = 0
    purged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def error(self, message: str) -> None:
        log.error("%s", message)
        self.errors.append(message)


# ---------------------------------------------------------------------------- organize
def organize_references(cfg: Config, observatory: str, new_mode: str) -> list[tuple[Path, Path]]:
    """Move every cached reference to its place under ``new_mode``; returns the moves."""
    if cfg.readonly_cache:
        raise ConfigError("CRDS_READONLY_CACHE is set: cannot reorganize the cache")
    old_mode = subdir_mode(cfg, observatory)
    cached = find_cached(cfg, observatory)
    write_subdir_mode(cfg, observatory, new_mode)
    moves = []
    for name, old in sorted(cached.items()):
        new = reference_path(cfg, observatory, name, new_mode, create_dirs=True)
        if new == old:
            continue
        if new.exists():
            log.warning("%s already exists; leaving %s where it is", new, old)
            continue
        os.replace(old, new)
        moves.append((old, new))
    if new_mode == "flat" and old_mode != "flat":
        refdir = cfg.reference_dir(observatory)
        for instrument in INSTRUMENTS.get(observatory, ()):
            link = refdir / HST_PREFIXES.get(instrument, "\0")
            if observatory == "hst" and link.is_symlink():
                link.unlink()
            with contextlib.suppress(OSError):
                (refdir / instrument).rmdir()  # only when empty
    return moves


# ---------------------------------------------------------------------------- helpers
def _delete(path: Path, result: SyncResult) -> None:
    try:
        path.unlink()
        result.purged.append(path.name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        result.error(f"{path}: cannot remove: {exc.strerror or exc}")


def _dataset_references(options: "SyncOptions", observatory: str, contexts: list[str],
                        result: SyncResult) -> set[str]:
    """Best references of the dataset files under each context (the reference's ``--dataset-files``),
    from ``options.dataset_references`` (the engine's; this package evaluates nothing)."""
    if options.dataset_references is None:
        raise ConfigError("--dataset-files needs a best-references function (SyncOptions.dataset_references)")
    names = options.dataset_references(observatory, contexts, options.dataset_files, result.error)
    return {check_name(n, where="best references", kinds=("references",)) for n in names}


def _record(result: SyncResult, report, refused: dict[str, str]) -> None:
    result.transfer_seconds += report.seconds
    for outcome in report.outcomes:
        if outcome.status == "downloaded":
            result.downloaded.append(outcome.name)
            result.downloaded_bytes += outcome.nbytes
        elif outcome.status == "cached":
            result.cached.append(outcome.name)
        else:
            result.failed[outcome.name] = outcome.error or "failed"
    result.failed.update(refused)
    result.errors.extend(refused.values())
    result.errors.extend(f"{o.name}: {o.error}" for o in report.failed)


async def _fetch(fetcher: CacheFetcher, names: set[str], options: SyncOptions, result: SyncResult) -> None:
    cfg = fetcher.cfg
    if not names:
        return
    if cfg.readonly_cache:
        missing = sorted(n for n in names if not fetcher.path_of(n).exists())
        if missing:
            assert fetcher.client is not None
            infos = await fetcher.client.get_file_info_map(fetcher.observatory, missing, ["size"])
            total = sum(int(i["size"]) for i in infos.values() if isinstance(i, dict) and str(i.get("size")).isdigit())
            log.info("READONLY CACHE: would download %d file(s), %d bytes", len(missing), total)
        return
    report, refused = await fetcher.fetch(names)
    _record(result, report, refused)


async def _check_files(fetcher: CacheFetcher, names: list[str], options: SyncOptions, result: SyncResult) -> None:
    assert fetcher.client is not None
    infos = await fetcher.client.get_file_info_map(
        fetcher.observatory, names, ["blacklisted", "rejected", "sha1sum", "size", "state"])
    hashing = asyncio.Semaphore(4)  # hashlib releases the GIL: a few files at once

    async def check(name: str, info: dict) -> str | None:
        path = fetcher.path_of(name)
        if not path.exists():
            return f"File {name!r} doesn't exist at {str(path)!r}"
        size = path.stat().st_size
        if str(size) != str(info.get("size")):
            return f"File {name!r} length mismatch LOCAL size={size} CRDS size={info.get('size')}"
        if options.check_sha1sum or file_kind(name) == "mappings":
            async with hashing:
                local = await asyncio.to_thread(file_sha1, path)
            if info.get("sha1sum") not in (None, "", "none") and local != info["sha1sum"]:
                return f"File {name!r} checksum mismatch CRDS={info['sha1sum']!r} LOCAL={local!r}"
        return None

    known = {}
    for name in names:
        info = infos.get(name, "NOT FOUND")
        if isinstance(info, dict):
            known[name] = info
        else:
            result.error(f"CRDS has no record of file {name!r}")
    problems = await run_all(check(n, i) for n, i in known.items())
    result.checked += len(known)
    bad_files = set()
    for name, problem in zip(known, problems):
        if problem:
            result.error(problem)
            if "doesn't exist" not in problem:  # as the reference: a missing file is only reported
                bad_files.add(name)
    if options.repair_files and bad_files and not fetcher.cfg.readonly_cache:
        for name in sorted(bad_files):
            log.info("Repairing file %s", fetcher.path_of(name))
            with contextlib.suppress(FileNotFoundError):
                fetcher.path_of(name).unlink()
        before = len(result.errors)
        await _fetch(fetcher, bad_files, options, result)
        if len(result.errors) == before:
            log.info("Repaired %d file(s)", len(bad_files))


def _save_server_config(cfg: Config, observatory: str, info: dict) -> None:
    info = dict(info, connected=True, status="server")
    atomic_write_text(cfg.config_dir(observatory) / "server_config", pprint.pformat(info))
    bad = info.get("bad_files_list")
    if isinstance(bad, list):
        atomic_write_text(cfg.config_dir(observatory) / "bad_files.txt", "\n".join(map(str, bad)) + "\n")


# ---------------------------------------------------------------------------- main
async def run_sync(cfg: Config, observatory: str, options: SyncOptions) -> SyncResult:
    """Run one sync; never raises for a single file's failure (see ``result.errors``).

    Raises
    ------
    FetchError
        The server cannot be reached or answers nonsense.
    ConfigError
        Contexts or switches cannot be used.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    if options.dry_run:
        cfg = cfg.replace(readonly_cache=True)
    result = SyncResult()
    if options.organize:
        moves = organize_references(cfg, observatory, options.organize)
        log.info("Reorganized %d reference(s) to %s layout", len(moves), options.organize)
    async with CacheFetcher(cfg, observatory, jobs=options.jobs, progress=options.progress,
                            stall_seconds=options.stall_seconds) as fetcher:
        assert fetcher.client is not None
        info = await fetcher.server_info()

        contexts: list[str] = []
        mappings: set[str] = set()
        if options.all:
            server_mappings = info.get("mappings") or []
            mappings = {check_name(m, where="server_info mappings", kinds=("mappings",)) for m in server_mappings}
            contexts = sorted(m for m in mappings if m.endswith(".pmap"))
        for spec in options.contexts:
            if not is_context_spec(spec):
                raise ConfigError(f"--contexts: {spec!r} is not a context (.pmap name or e.g. hst-latest)")
            contexts.append(resolve_context(spec, info))
        if not contexts and not options.files and not options.organize:
            contexts = [resolve_context(cfg.context or f"{observatory}-latest", info)]
        contexts = list(dict.fromkeys(contexts))
        result.contexts = contexts

        if not options.all:  # --all already has every mapping the server knows
            for context in contexts:
                mappings.update(await fetcher.client.get_mapping_names(context))
        await _fetch(fetcher, mappings, options, result)
        checking = options.check_files or options.check_sha1sum or options.repair_files
        if checking and mappings:
            # Before the rules are read for references: a repaired mapping must be the one read.
            await _check_files(fetcher, sorted(mappings), options, result)
        verify_names: set[str] = set()

        references: set[str] = set()
        if contexts and (options.fetch_references or options.purge_references):
            if options.dataset_files:
                references = await asyncio.to_thread(_dataset_references, options, observatory, contexts, result)
            else:
                mapdir = cfg.mapping_dir(observatory)
                local_rules = all((mapdir / m).is_file() for m in mappings)
                rules = RulesView(cfg, observatory)
                for context in contexts:
                    if local_rules:  # as the reference: read the (verified) rules in the cache
                        references.update(await asyncio.to_thread(rules.reference_closure, context))
                    else:  # read-only cache without the rules: ask the server
                        references.update(await fetcher.client.get_reference_names(context))
            references |= {c for n in references if (c := geis_conjugate(n))}
            if options.fetch_references:
                await _fetch(fetcher, references, options, result)
                verify_names |= references

        if options.files:
            explicit = {check_name(os.path.basename(f), where="--files") for f in options.files}
            await _fetch(fetcher, explicit, options, result)
            verify_names |= explicit

        if checking and verify_names:
            await _check_files(fetcher, sorted(verify_names), options, result)

        if not cfg.readonly_cache:
            if options.purge_mappings and contexts:
                keep: set[str] = set()
                rules = RulesView(cfg, observatory)
                for context in contexts:
                    keep.update(await asyncio.to_thread(rules.mapping_closure, context))
                mapdir = cfg.mapping_dir(observatory)
                for path in sorted(mapdir.glob("*.[pir]map")) if mapdir.is_dir() else []:
                    if path.name not in keep:
                        _delete(path, result)
            if options.purge_references and contexts:
                for name, path in sorted(find_cached(cfg, observatory).items()):
                    if name not in references:
                        _delete(path, result)
            if not result.errors and (contexts or options.files):
                # As the reference: a clean sync records the server's configuration for offline use.
                _save_server_config(cfg, observatory, info)
    result.seconds = loop.time() - started
    return result


async def sync_observatory(cfg: Config, options: SyncOptions) -> str:
    """The observatory a sync works on.

    From its contexts or file names, else ``CRDS_OBSERVATORY``/``CRDS_CONTEXT``,
    else the server URL's name, else the server's own answer.
    """
    from ..rules.contexts import observatory_of_spec

    for spec in list(options.contexts) + [os.path.basename(f) for f in options.files]:
        obs = observatory_of_spec(spec) if is_context_spec(spec) else None
        if obs is None and "_" in spec:
            obs = spec.split("_")[0].lower()
        if obs in INSTRUMENTS:
            return obs
    if cfg.observatory:
        return cfg.observatory
    if cfg.context and (obs := observatory_of_spec(cfg.context)):
        return obs
    url = cfg.server_url or ""
    for obs in INSTRUMENTS:
        if f"{obs}-crds" in url or f"{obs}." in url:
            return obs
    if cfg.server_url:
        async with CrdsClient(cfg.server_url, cfg) as client:
            obs = (await client.get_server_info()).get("observatory")
        if obs in INSTRUMENTS:
            return obs
        raise FetchError(f"CRDS server {cfg.server_url} names no known observatory ({obs!r})")
    raise ConfigError("cannot tell the observatory: give --contexts with a .pmap name, "
                      "or set CRDS_OBSERVATORY or CRDS_SERVER_URL")


def can_fetch_rules(cfg: Config) -> bool:
    """Whether missing rules may be fetched on demand, as the reference client does: a server
    is named, the cache is writable, and ``CRDS_MODE`` is not ``local``."""
    return bool(cfg.server_url) and not cfg.readonly_cache and cfg.mode != "local"


async def sync_context_rules(cfg: Config, observatory: str, context: str | None) -> None:
    """Fetch a context's mappings (only the missing ones) and the server configuration.

    ``context`` may be symbolic (``hst-operational``): the server resolves it.  None: the
    observatory's latest.

    Raises
    ------
    FetchError
        The server cannot be reached, or some mapping could not be fetched.
    """
    result = await run_sync(cfg, observatory, SyncOptions(contexts=[context] if context else [], progress=False))
    if result.errors:
        raise FetchError(f"syncing the rules of {context or observatory} failed: {result.errors[0]}")
