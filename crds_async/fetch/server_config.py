"""The cache's ``config/<obs>/server_config``: read once per version, and the names it resolves.

``ast.literal_eval`` only: nothing in the file is ever executed.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from ..errors import ConfigError
from ..memo import BoundedMemo
from ..rules.contexts import resolve_context

__all__ = ["read_server_config", "resolve_cached_context", "cached_server_config"]

#: (path, size, mtime) -> parsed server_config: HST's is 2 MB and takes ~20 ms to parse,
#: and a run needs it more than once (context name, bad files)
_SERVER_CONFIGS: BoundedMemo = BoundedMemo(8)


def read_server_config(config_dir: Path) -> dict:
    """Read the cached ``server_config`` (a Python literal written by the client).

    Parsed once per version of the file in a process; the dict returned is shared, so
    callers only read it.
    """
    path = Path(config_dir) / "server_config"
    try:
        with open(path, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            key = (str(path), info.st_size, info.st_mtime_ns)
            found = _SERVER_CONFIGS.get(key)
            if found is not None:
                return found
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the cached server configuration ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ConfigError(f"{path}: not a valid server configuration literal ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: server configuration is not a dict")
    _SERVER_CONFIGS.put(key, value)
    return value


def resolve_cached_context(context: str, config_dir: Path) -> str:
    """A context name as a literal ``.pmap``, symbolic names resolved from the cache's server_config.

    Raises
    ------
    ConfigError
        A symbolic name and no server_config in ``config_dir`` (no cache there, most
        likely: the message says where it looked and what to do), or a name it cannot resolve.
    """
    if context.endswith(".pmap"):
        return resolve_context(context, {})
    path = Path(config_dir) / "server_config"
    if not path.exists():
        raise ConfigError(f"{context!r} is resolved from {path}, which does not exist: "
                          "set CRDS_PATH to a CRDS cache, or name a .pmap")
    return resolve_context(context, read_server_config(config_dir))


def cached_server_config(config_dir: Path) -> dict:
    """The cache's server_config (:func:`read_server_config`), or ``{}`` if the cache has none."""
    return read_server_config(config_dir) if (Path(config_dir) / "server_config").exists() else {}
