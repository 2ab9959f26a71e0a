"""Bring named files from a CRDS server into the cache: metadata, URLs, verified downloads.

:class:`CacheFetcher` ties the JSON-RPC client (:mod:`.client`), the cache layout
(:mod:`.layout`) and the download manager (:mod:`.download`) together for one
observatory.  It also implements ``CRDS_MODE`` (§4.7): :func:`effective_mode`
decides between computing locally and asking the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

import aiohttp

from ..config import Config
from ..tasks import run_all
from ..errors import ConfigError, FetchError
from .server_config import read_server_config
from .client import CrdsClient, default_server_url
from .download import Downloader, DownloadReport, RemoteFile, remote_file
from .layout import cache_path, find_cached, subdir_mode
from .names import check_name, file_kind

__all__ = ["CacheFetcher", "effective_mode", "download_url"]

log = logging.getLogger(__name__)

_URL_KEYS = {"mappings": "mapping_url", "references": "reference_url", "config": "config_url"}


def effective_mode(cfg: Config, server_info: dict | None) -> str:
    """``local`` or ``remote`` for ``cfg.mode`` given the server's info (None: not connected).

    ``local``/``s3`` compute locally; ``remote`` needs a server; ``auto`` goes remote
    only when connected and the server sets ``force_remote_mode``.
    """
    if cfg.mode in ("local", "s3"):
        return "local"
    if cfg.mode == "remote":
        if server_info is None:
            raise FetchError("CRDS_MODE=remote but the CRDS server cannot be reached")
        return "remote"
    return "remote" if server_info is not None and server_info.get("force_remote_mode") else "local"


def download_url(cfg: Config, server_info: dict, observatory: str, name: str) -> str:
    """Where to GET ``name``: ``CRDS_<KIND>_URI`` if set, else the server's ``<kind>_url`` (§4.3)."""
    kind = file_kind(name)
    override = {"mappings": cfg.mapping_uri, "references": cfg.reference_uri, "config": cfg.config_uri}[kind]
    if override:
        return override.rstrip("/") + "/" + name
    section = server_info.get(_URL_KEYS[kind])
    base = section.get(observatory) if isinstance(section, dict) else None
    if isinstance(base, dict):  # old servers: {"checked": ..., "unchecked": ...}
        base = base.get("unchecked")
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        raise FetchError(f"server_info gives no usable {_URL_KEYS[kind]} for {observatory}: {base!r}")
    return base.rstrip("/") + "/" + name


class CacheFetcher:
    """Downloads for one observatory's cache from one server.

    Parameters
    ----------
    cfg : Config
    observatory : str
    jobs : int
        Concurrent transfers.
    progress : bool, optional
        tqdm bar; default only on a terminal.
    stall_seconds : float
        Per-transfer silence limit.
    """

    def __init__(self, cfg: Config, observatory: str, *, jobs: int = 8, progress: bool | None = None,
                 stall_seconds: float = 60.0) -> None:
        self.cfg = cfg
        self.observatory = observatory
        self.jobs = jobs
        self.progress = progress
        self.stall_seconds = stall_seconds
        self._session: aiohttp.ClientSession | None = None
        self.client: CrdsClient | None = None
        self._server_info: dict | None = None
        self._layout: str | None = None

    async def __aenter__(self) -> "CacheFetcher":
        connector = aiohttp.TCPConnector(limit=max(self.jobs + 2, 10))
        self._session = aiohttp.ClientSession(connector=connector)
        self.client = CrdsClient(default_server_url(self.cfg, self.observatory), self.cfg, self._session)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ server info
    async def server_info(self) -> dict:
        """The server's info, checked to describe this observatory (cached per fetcher)."""
        if self._server_info is None:
            assert self.client is not None, "use 'async with CacheFetcher(...)'"
            info = await self.client.get_server_info()
            served = info.get("observatory")
            if served != self.observatory:
                raise ConfigError(f"CRDS server {self.client.server_url} serves observatory {served!r}, "
                                  f"not {self.observatory!r}; check CRDS_SERVER_URL")
            self._server_info = info
        return self._server_info

    async def server_info_or_cached(self) -> tuple[dict, bool]:
        """``(info, connected)``: the server's info, or the cache's ``server_config`` when offline."""
        try:
            return await self.server_info(), True
        except FetchError as exc:
            log.warning("CRDS server unreachable (%s); using the cached server_config", exc)
            return read_server_config(self.cfg.config_dir(self.observatory)), False

    # ------------------------------------------------------------------ downloads
    @property
    def layout(self) -> str:
        """The cache's reference layout, read (or chosen) once per fetcher."""
        if self._layout is None:
            self._layout = subdir_mode(self.cfg, self.observatory)
        return self._layout

    def path_of(self, name: str) -> Path:
        return cache_path(self.cfg, self.observatory, name, mode=self.layout)

    async def remote_files(self, names: Iterable[str]) -> tuple[list[RemoteFile], dict[str, str]]:
        """Describe ``names`` for download; ``(files, {name: problem})`` for unknown ones."""
        assert self.client is not None
        names = sorted({check_name(n, where="download list") for n in names})
        if not names:
            return [], {}
        # Two round trips at once: on a high-latency link each costs a full RTT.
        info, infos = await run_all(
            [self.server_info(), self.client.get_file_info_map(self.observatory, names, ["sha1sum", "size"])])
        files, problems = [], {}
        # One directory scan instead of a stat per name and instrument directory.
        cached = find_cached(self.cfg, self.observatory) if self.layout == "instrument" else {}
        for name in names:
            try:
                path = cached.get(name) or cache_path(self.cfg, self.observatory, name, create_dirs=True,
                                                      mode=self.layout, search_existing=False)
                files.append(remote_file(name, download_url(self.cfg, info, self.observatory, name), path,
                                         infos.get(name, "NOT FOUND")))
            except FetchError as exc:
                problems[name] = str(exc)
        return files, problems

    async def fetch(self, names: Iterable[str], *, verify_existing_sha1: bool = False) -> tuple[DownloadReport, dict[str, str]]:
        """Make ``names`` present and verified; returns the report and names the server refused."""
        assert self._session is not None
        files, problems = await self.remote_files(names)
        downloader = Downloader(self._session, self.cfg, jobs=self.jobs, progress=self.progress,
                                stall_seconds=self.stall_seconds)
        report = await downloader.fetch_all(files, verify_existing_sha1=verify_existing_sha1)
        return report, problems
