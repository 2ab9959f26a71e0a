"""One immutable configuration, resolved from ``CRDS_*`` environment variables.

Resolution is a function of a mapping (``config_from_env(environ)``), so it is
testable without touching ``os.environ``; nothing else in crds_async reads the
environment after start-up.  Its one look at the file system: a cache root that
names a file is refused at once.  Names, defaults and the accepted spellings
follow the reference client (crds 14.0.3) so that existing setups keep working;
numeric values must also be finite and within a sane range.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = ["Config", "config_from_env", "user_cache_dir", "DEFAULT_CACHE", "OBSERVATORIES", "MODES"]

#: The reference's built-in cache root when no CRDS_PATH* variable is set.
DEFAULT_CACHE = "/grp/crds/cache"
OBSERVATORIES = ("hst", "jwst", "roman", "tobs")
MODES = ("local", "remote", "auto", "s3")

# The reference lowercases boolean values, then accepts exactly these.
_TRUE = frozenset({"true", "t", "1"})
_FALSE = frozenset({"false", "f", "0"})

# Accepted ranges of the numeric variables: wide enough for any real setup, narrow enough that
# a slip (inf, 1e12, or 0 meaning "no timeout") cannot hang, overflow or silently disable the client.
_RETRY_COUNT_RANGE = (0, 100)
_RETRY_DELAY_RANGE = (0.0, 3600.0)
_TIMEOUT_RANGE = (0.0, 86400.0)  # exclusive minimum: a timeout of 0 would be none at all
_VERBOSITY_RANGE = (-3, 100)  # the reference's own bounds (log.set_verbose)

# cache branch -> (environment root name, sub-directory of CRDS_PATH)
_BRANCHES = {
    "mappings": "CRDS_MAPPATH",
    "references": "CRDS_REFPATH",
    "config": "CRDS_CFGPATH",
    "pickles": "CRDS_PICKLEPATH",
}


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use 1/0, true/false or t/f")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer; use one from {minimum} to {maximum}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={raw!r} is out of range; use an integer from {minimum} to {maximum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float,
           *, above_minimum: bool = False) -> float:
    """A finite number of seconds in ``[minimum, maximum]`` (``(minimum, maximum]`` if ``above_minimum``)."""
    raw = env.get(name)
    if raw is None:
        return default
    low = f"more than {minimum:g}" if above_minimum else f"from {minimum:g}"
    accepted = f"use a finite number of seconds {low} to {maximum:g}"
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds; {accepted}") from None
    # Written so that nan and +-inf fail every comparison they reach.
    in_range = math.isfinite(value) and value <= maximum and (value > minimum if above_minimum else value >= minimum)
    if not in_range:
        raise ConfigError(f"{name}={raw!r} is out of range; {accepted}")
    return value


def _str(env: Mapping[str, str], name: str) -> str | None:
    """A variable's text; unset, empty and ``none`` (any case, as the reference reads it) are None."""
    raw = env.get(name)
    if raw is None or raw.strip() == "" or raw.strip().lower() == "none":
        return None
    return raw.strip()


def _clean_path(path: str) -> str:
    # The reference drops trailing slashes and expands ~ and $VARS.
    path = os.path.expanduser(os.path.expandvars(path))
    return path.rstrip("/") or "/"


def _check_cache_roots(roots: tuple[tuple[str, str], ...]) -> None:
    """ConfigError when a cache root given names a file (or lies under one).

    A root that does not exist yet is fine (``sync`` creates it); one that cannot
    be examined is left for its first real use to report.
    """
    for name, value in roots:
        path = Path(_clean_path(value))
        for candidate in (path, *path.parents):
            try:
                mode = os.stat(candidate).st_mode
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                break
            if not stat.S_ISDIR(mode):
                inside = "" if candidate == path else f" ({candidate} is a file)"
                raise ConfigError(f"{name}={value!r} is not a directory{inside}; point it at a cache directory")
            break


def user_cache_dir() -> Path:
    """The user's own cache directory for what crds_async derives (compiled contexts, indexes,
    catalogues): ``$XDG_CACHE_HOME/crds_async``, by default ``~/.cache/crds_async``; never a
    CRDS cache, which may be shared or read-only."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crds_async"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything crds_async needs to know about its environment.

    Build with :func:`config_from_env`; derive variants with :meth:`replace`.
    """

    #: every CRDS_{PATH,MAPPATH,REFPATH,CFGPATH,PICKLEPATH}[_SINGLE] that was set
    cache_roots: tuple[tuple[str, str], ...] = ()
    observatory: str | None = None
    context: str | None = None
    server_url: str | None = None
    mode: str = "auto"
    verbosity: int = 0
    ignore_mapping_checksum: bool = False
    allow_bad_rules: bool = False
    allow_bad_references: bool = False
    readonly_cache: bool = False
    retry_count: int = 1
    retry_delay_seconds: float = 0.0
    client_timeout_seconds: float = 3600.0
    download_checksums: bool = True
    download_lengths: bool = True
    mapping_uri: str | None = None
    reference_uri: str | None = None
    config_uri: str | None = None

    # ------------------------------------------------------------------ paths
    def _root(self, name: str) -> str | None:
        for key, value in self.cache_roots:
            if key == name:
                return value
        return None

    def cache_dir(self, branch: str, observatory: str) -> Path:
        """Directory of one cache branch for one observatory.

        ``branch`` is ``mappings``, ``references``, ``config`` or ``pickles``.
        The first defined of ``CRDS_<X>_SINGLE``, ``CRDS_<X>/<obs>``,
        ``CRDS_PATH_SINGLE/<branch>`` and ``CRDS_PATH/<branch>/<obs>`` wins.
        """
        root = _BRANCHES[branch]
        if (single := self._root(root + "_SINGLE")) is not None:
            path = single
        elif (multi := self._root(root)) is not None:
            path = os.path.join(multi, observatory)
        elif (psingle := self._root("CRDS_PATH_SINGLE")) is not None:
            path = os.path.join(psingle, branch)
        else:
            base = self._root("CRDS_PATH") or DEFAULT_CACHE
            path = os.path.join(base, branch, observatory)
        return Path(_clean_path(path))

    def mapping_dir(self, observatory: str) -> Path:
        return self.cache_dir("mappings", observatory)

    def reference_dir(self, observatory: str) -> Path:
        return self.cache_dir("references", observatory)

    def config_dir(self, observatory: str) -> Path:
        return self.cache_dir("config", observatory)

    def pickle_dir(self, observatory: str) -> Path:
        return self.cache_dir("pickles", observatory)

    @property
    def crds_path(self) -> Path:
        """The overall cache root (CRDS_PATH_SINGLE, CRDS_PATH or the default)."""
        return Path(_clean_path(self._root("CRDS_PATH_SINGLE") or self._root("CRDS_PATH") or DEFAULT_CACHE))

    def state_dir(self, kind: str, observatory: str) -> Path:
        """``user_cache_dir()/<kind>/<digest of this cache's mapping directory>``: where state of
        one ``kind`` derived from this CRDS cache's rules of ``observatory`` is kept."""
        import hashlib

        origin = hashlib.sha1(str(self.mapping_dir(observatory)).encode()).hexdigest()[:16]
        return user_cache_dir() / kind / origin

    def replace(self, **changes: object) -> "Config":
        """A copy with some fields changed (e.g. from command-line flags)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        """Plain values for ``crds-batch list --config``."""
        out = dataclasses.asdict(self)
        out["cache_roots"] = dict(self.cache_roots)
        return out


def config_from_env(environ: Mapping[str, str] | None = None) -> Config:
    """Resolve a :class:`Config` from ``environ`` (default ``os.environ``).

    Raises :class:`ConfigError` naming the variable for any malformed or out-of-range
    value (and the accepted range), or a cache root that is not a directory.
    """
    env = os.environ if environ is None else environ
    roots = []
    for name in ("CRDS_PATH", "CRDS_PATH_SINGLE") + tuple(
        n + suffix for n in _BRANCHES.values() for suffix in ("", "_SINGLE")
    ):
        value = env.get(name)
        if value is not None and value.strip():
            roots.append((name, value.strip()))

    observatory = _str(env, "CRDS_OBSERVATORY")
    if observatory is not None:
        observatory = observatory.lower()
        if observatory not in OBSERVATORIES:
            raise ConfigError(
                f"CRDS_OBSERVATORY={observatory!r} is not one of {', '.join(OBSERVATORIES)}"
            )

    mode = (_str(env, "CRDS_MODE") or "auto").lower()
    if mode not in MODES:
        raise ConfigError(f"CRDS_MODE={mode!r} is not one of {', '.join(MODES)}")

    context = _str(env, "CRDS_CONTEXT")
    if context is not None:
        # Imported here: rules/ must not be needed just to build a Config.
        from .rules.contexts import is_context_spec

        if not is_context_spec(context):
            raise ConfigError(
                f"CRDS_CONTEXT={context!r} is not a context: use a .pmap name "
                "(hst_0729.pmap) or a symbolic one (jwst-operational, hst-edit)"
            )

    # Set but empty means the default, as in the reference.
    verbosity = _int(env, "CRDS_VERBOSITY", 0, *_VERBOSITY_RANGE) if env.get("CRDS_VERBOSITY", "").strip() else 0
    _check_cache_roots(tuple(roots))

    return Config(
        cache_roots=tuple(roots),
        observatory=observatory,
        context=context,
        server_url=_str(env, "CRDS_SERVER_URL"),
        mode=mode,
        verbosity=verbosity,
        ignore_mapping_checksum=_bool(env, "CRDS_IGNORE_MAPPING_CHECKSUM", False),
        allow_bad_rules=_bool(env, "CRDS_ALLOW_BAD_RULES", False),
        allow_bad_references=_bool(env, "CRDS_ALLOW_BAD_REFERENCES", False),
        readonly_cache=_bool(env, "CRDS_READONLY_CACHE", False),
        # The reference treats 1 as "no retry"; 0 crashes it.  We accept 0 and
        # treat it like 1 (one attempt), which is what a user means by it.
        retry_count=max(1, _int(env, "CRDS_CLIENT_RETRY_COUNT", 1, *_RETRY_COUNT_RANGE)),
        retry_delay_seconds=_float(env, "CRDS_CLIENT_RETRY_DELAY_SECONDS", 0.0, *_RETRY_DELAY_RANGE),
        client_timeout_seconds=_float(env, "CRDS_CLIENT_TIMEOUT_SECONDS", 3600.0, *_TIMEOUT_RANGE,
                                      above_minimum=True),
        download_checksums=_bool(env, "CRDS_DOWNLOAD_CHECKSUMS", True),
        download_lengths=_bool(env, "CRDS_DOWNLOAD_LENGTHS", True),
        mapping_uri=_str(env, "CRDS_MAPPING_URI"),
        reference_uri=_str(env, "CRDS_REFERENCE_URI"),
        config_uri=_str(env, "CRDS_CONFIG_URI"),
    )
