"""On-disk cache of compiled contexts, so a second process loads one in milliseconds.

A loaded :class:`~.model.Context` (selector trees, matchers, expressions) is
pickled into the user's cache directory (``$XDG_CACHE_HOME/crds_async``, by
default ``~/.cache/crds_async``), never into the CRDS cache itself.  Pickles execute code when loaded,
so we only ever load one we wrote: each file carries an HMAC-SHA256 under a
per-user secret key (mode 0600), and the key of the rules it was built from:
crds_async's version, a digest of the source of the modules whose objects
are pickled (so an edited checkout never loads objects of an older shape),
and the name, size, mtime and sha1sum of every mapping in the context's closure.  Anything else (a changed mapping, a foreign or
tampered file) is ignored and the context is rebuilt from the rules.  Each build
(version, rules code, options) has its own file, so builds sharing a home
directory do not rebuild over each other; another build's files are removed once
unused for a week.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import secrets
import time
from pathlib import Path

from .. import rules
from ..atomic import atomic_write
from ..config import Config, user_cache_dir
from ..errors import CrdsError
from ..rules.contexts import is_mapping_name, observatory_of_spec
from ..rules.model import Context
from . import loader
from .loader import load_context
from ..fetch.server_config import resolve_cached_context

__all__ = ["load_context_cached", "cache_file_for", "resolved_context_name", "FORMAT"]

FORMAT = b"crds_async-compiled-context-4"  # bump whenever a pickled class changes shape
_CODE_DIGEST: list[bytes] = []  # computed once per process


def _secret() -> bytes | None:
    path = user_cache_dir() / "compiled-context.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        return path.read_bytes()
    except FileExistsError:
        return path.read_bytes()
    except OSError:
        return None


#: Compiled forms of the same context made by other builds are removed once this old:
#: a build no longer run should not leave its pickles behind for ever.
_STALE_SECONDS = 7 * 24 * 3600


def cache_file_for(cfg: Config, observatory: str, context_name: str) -> Path:
    """Where the compiled form of a context lives: always in the user's own cache
    directory (keyed by the CRDS cache it was built from), never inside a CRDS cache,
    which may be shared by many users or mounted read-only.

    The file name carries the build (:func:`_build_tag`): two installations sharing a
    home directory (a pipeline's and a developer's, cluster nodes mid-upgrade) keep one
    file each instead of rebuilding over each other's at every run, and another build's
    pickle is never even read.
    """
    return _origin_dir(cfg, observatory) / f"{context_name}.{_build_tag(cfg)}.pkl"


def _origin_dir(cfg: Config, observatory: str) -> Path:
    """The user's directory for what is derived from one CRDS cache's rules of ``observatory``."""
    return cfg.state_dir("compiled", observatory)


def _build_parts(cfg: Config) -> list[bytes]:
    """What besides the mappings decides the compiled objects: format, version, rules code, options."""
    from .._version import __version__

    return [FORMAT, __version__.encode(), _code_digest(), str(cfg.ignore_mapping_checksum).encode()]


def _build_tag(cfg: Config) -> str:
    return hashlib.sha256(b"\n".join(_build_parts(cfg))).hexdigest()[:16]


def _fingerprint(ctx: Context, cfg: Config) -> bytes:
    mapping_dir = cfg.mapping_dir(ctx.observatory)
    parts = _build_parts(cfg)
    server_config = cfg.config_dir(ctx.observatory) / "server_config"  # bad-files list lives there
    if server_config.exists():
        info = os.stat(server_config)
        parts.append(f"server_config:{info.st_size}:{info.st_mtime_ns}".encode())
    for name in ctx.mapping_names():
        info = os.stat(mapping_dir / name)
        parts.append(f"{name}:{info.st_size}:{info.st_mtime_ns}".encode())
    return hashlib.sha256(b"\n".join(parts)).digest()


def _code_digest() -> bytes:
    """sha256 of the source of what a compiled context is made of: the rules package's
    classes, and the loader that decides what goes into them."""
    if not _CODE_DIGEST:
        digest = hashlib.sha256()
        sources = sorted(Path(rules.__file__).parent.glob("*.py")) + [Path(loader.__file__)]
        for source in sources:
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        _CODE_DIGEST.append(digest.hexdigest().encode())
    return _CODE_DIGEST[0]


def _try_load(path: Path, secret: bytes, cfg: Config) -> Context | None:
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    if len(blob) < 64 or not hmac.compare_digest(hmac.new(secret, blob[32:], "sha256").digest(), blob[:32]):
        return None  # not ours, or tampered with: never unpickle it
    fingerprint, payload = blob[32:64], blob[64:]
    try:
        ctx = pickle.loads(payload)  # ours (HMAC checked), but possibly from another version
    except Exception:  # noqa: BLE001 - any failure just means "rebuild"
        return None
    try:
        if not isinstance(ctx, Context) or _fingerprint(ctx, cfg) != fingerprint:
            return None
    except OSError:
        return None
    try:
        os.utime(path)  # in use: other builds' pruning (_prune_other_builds) goes by this time
    except OSError:
        pass
    return ctx


def _store(path: Path, ctx: Context, secret: bytes, cfg: Config) -> None:
    body = _fingerprint(ctx, cfg) + pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL)
    blob = hmac.new(secret, body, "sha256").digest() + body
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, blob, file_mode=0o600)
    _prune_other_builds(path, ctx.name)


def _prune_other_builds(path: Path, context_name: str) -> None:
    """Remove this context's compiled forms from other builds, unused for :data:`_STALE_SECONDS`
    (``<context>.pkl``, without a build in its name, is the form of builds before the tag)."""
    try:
        siblings = list(path.parent.glob(f"{context_name}.*.pkl")) + [path.parent / f"{context_name}.pkl"]
        now = time.time()
        for sibling in siblings:
            try:
                if sibling != path and now - sibling.stat().st_mtime > _STALE_SECONDS:
                    sibling.unlink()
            except FileNotFoundError:
                continue  # never there, or another process pruned it
    except OSError:
        pass  # the directory is not ours to tidy


def resolved_context_name(context: str, cfg: Config, observatory: str) -> str:
    """:func:`~.server_config.resolve_cached_context`, remembered across processes.

    A symbolic name (``hst-operational``) is resolved from the cache's server_config, which
    for HST is 2 MB of Python literal: parsing it took ~20 ms, a fifth of a one-file
    ``bestrefs`` run.  The names it resolved to are kept beside the compiled contexts,
    keyed by the server_config's path, size and mtime, so a changed server_config is read
    again.  The file holds names only, checked to be ``.pmap`` names when read back.
    """
    config_dir = cfg.config_dir(observatory)
    if context.endswith(".pmap"):
        return resolve_cached_context(context, config_dir)
    try:
        info = os.stat(config_dir / "server_config")
    except OSError:
        return resolve_cached_context(context, config_dir)  # words what is missing
    version = f"{config_dir / 'server_config'}:{info.st_size}:{info.st_mtime_ns}"
    memo_path = _origin_dir(cfg, observatory) / "symbolic-contexts.json"  # not per build: names only
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
        if memo.get("server_config") != version or not isinstance(memo.get("names"), dict):
            memo = {}
    except (OSError, ValueError, AttributeError):
        memo = {}
    known = (memo.get("names") or {}).get(context)
    if isinstance(known, str) and is_mapping_name(known) and known.endswith(".pmap"):
        return known
    name = resolve_cached_context(context, config_dir)
    names = dict(memo.get("names") or {}, **{context: name})
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(memo_path, json.dumps({"server_config": version, "names": names}))
    except (OSError, CrdsError):
        pass  # remembering is an optimisation
    return name


def load_context_cached(context: str, cfg: Config, observatory: str | None = None) -> Context:
    """:func:`~.loader.load_context`, through the compiled-context cache when it can be used."""
    obs = (observatory or observatory_of_spec(context) or cfg.observatory or "").lower()
    secret = _secret()
    if not obs or secret is None:
        return load_context(context, cfg, observatory)
    name = resolved_context_name(context, cfg, obs)
    path = cache_file_for(cfg, obs, name)
    cached = _try_load(path, secret, cfg)
    if cached is not None:
        return cached
    ctx = load_context(name, cfg, obs)
    if not ctx.load_errors:
        try:
            _store(path, ctx, secret, cfg)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            pass  # caching is an optimisation; an unwritable cache just means cold loads
    return ctx
