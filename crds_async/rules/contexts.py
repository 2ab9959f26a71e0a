"""Context names: literal (``hst_0729.pmap``) and symbolic (``jwst-operational``).

Symbolic names that the cache can answer offline (``-operational``, ``-latest``,
``-edit``, ``-versions``, bare ``latest``) are resolved from a server_config
dict (``crds_async.engine.server_config`` reads the cache's); date-based names
need a server and raise a :class:`ConfigError` that says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import ConfigError

__all__ = [
    "is_context_spec",
    "is_mapping_name",
    "observatory_of_spec",
    "resolve_context",
    "SAFE_MAPPING_NAME",
]

_DATETIME = r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?)?"
_TAGS = r"edit|operational|latest|build|versions"
_SYMBOLIC = re.compile(rf"^(?P<obs>[a-z]{{1,8}})-(?P<tag>{_DATETIME}|{_TAGS})$|^{_DATETIME}$")
#: A plain mapping file name: no directory parts, a known mapping extension.
SAFE_MAPPING_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}\.[pir]map$")


def is_mapping_name(name: str) -> bool:
    """True for a bare ``*.pmap/.imap/.rmap`` file name (no path, no ``..``)."""
    return bool(SAFE_MAPPING_NAME.match(name)) and ".." not in name


def is_context_spec(spec: str) -> bool:
    """True for a ``.pmap`` name or a symbolic context such as ``hst-edit``."""
    if spec in ("latest", "build"):
        return True
    if is_mapping_name(spec) and spec.endswith(".pmap"):
        return True
    return bool(_SYMBOLIC.match(spec))


def observatory_of_spec(spec: str) -> str | None:
    """The observatory a context spec names, if it names one."""
    if is_mapping_name(spec):
        return spec.split("_")[0].split(".")[0].lower()
    if match := _SYMBOLIC.match(spec):
        return match.group("obs")
    return None


def _latest(server_config: Mapping) -> str:
    for key in ("latest_context", "operational_context"):
        if isinstance(value := server_config.get(key), str) and value:
            return value
    raise ConfigError("server_config names no latest_context or operational_context")


def resolve_context(spec: str, server_config: Mapping) -> str:
    """Resolve ``spec`` to a literal ``.pmap`` name using a cached server_config.

    Raises :class:`ConfigError` for names that only a live server can resolve.
    """
    if spec.endswith(".pmap"):
        if not is_mapping_name(spec):
            raise ConfigError(f"context {spec!r} is not a plain .pmap file name")
        return spec
    if spec == "latest":
        return _checked(_latest(server_config), spec)
    match = _SYMBOLIC.match(spec)
    if not match:
        raise ConfigError(
            f"{spec!r} is not a context: use a .pmap name or <obs>-operational/-latest/-edit/-versions"
        )
    obs, tag = match.group("obs"), match.group("tag")
    configured = str(server_config.get("observatory", obs)).lower()
    if obs is not None and configured != obs:
        raise ConfigError(f"context {spec!r} names {obs!r} but the cached server_config is for {configured!r}")
    if tag in ("operational", "latest"):
        return _checked(_latest(server_config), spec)
    if tag == "edit":
        return _checked(server_config.get("edit_context") or _latest(server_config), spec)
    if tag == "versions":
        value = server_config.get("versions_context")
        if not value:
            raise ConfigError(f"{spec!r}: the cached server_config has no versions_context")
        return _checked(value, spec)
    raise ConfigError(
        f"{spec!r} needs a CRDS server to resolve (build or date-based context); "
        "name a .pmap instead or set CRDS_SERVER_URL"
    )


def _checked(name: object, spec: str) -> str:
    if not isinstance(name, str) or not is_mapping_name(name) or not name.endswith(".pmap"):
        raise ConfigError(f"{spec!r} resolved to {name!r}, which is not a .pmap name")
    return name
