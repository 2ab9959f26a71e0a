"""Shared plumbing of the inspection commands (list, diff, matches, uses, certify).

Configuration comes from ``CRDS_*`` once; the observatory from ``--observatory``,
``CRDS_OBSERVATORY``, the file names given, or the server URL; contexts from
``--contexts``, ``CRDS_CONTEXT`` or ``<obs>-operational`` resolved offline.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..config import OBSERVATORIES, Config, config_from_env
from ..errors import ConfigError
from ..fetch.server_config import read_server_config
from ..rules.contexts import is_mapping_name, observatory_of_spec, resolve_context

__all__ = [
    "add_observatory_arg",
    "load_config",
    "pick_observatory",
    "resolve_mapping_specs",
    "mapping_store",
    "print_json",
    "observatory_of_file_name",
    "cached_observatories",
    "user_state_dir",
]

#: a CDBS-style (HST) reference name: 9 characters, an optional _suffix, FITS or GEIS
_CDBS_NAME = re.compile(r"^[a-z0-9]{9}(_[a-z0-9]+)?\.(fits|r[0-9][hd])$", re.IGNORECASE)


def add_observatory_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--observatory", choices=OBSERVATORIES, default=None,
                        help="observatory (default: CRDS_OBSERVATORY, the files named, or CRDS_SERVER_URL)")


def load_config(args: argparse.Namespace) -> Config:
    """The Config from the environment, with ``--observatory`` applied."""
    cfg = config_from_env()
    if getattr(args, "observatory", None):
        cfg = cfg.replace(observatory=args.observatory)
    return cfg


def _observatory_of_url(url: str | None) -> str | None:
    if not url:
        return None
    host = url.split("//", 1)[-1].split("/", 1)[0].lower()
    for obs in OBSERVATORIES:
        if host.startswith(obs + "-") or host.startswith(obs + "."):
            return obs
    return None


def observatory_of_file_name(name: str) -> str | None:
    """The observatory a mapping or reference name implies (``jwst_miri_flat_0371.fits``,
    ``s9j15534i_drk.fits``), from the name alone; None when it does not tell."""
    base = name.rsplit("/", 1)[-1]
    if (obs := observatory_of_spec(base)) in OBSERVATORIES:
        return obs
    prefix, sep, _rest = base.partition("_")
    if sep and prefix.lower() in OBSERVATORIES:
        return prefix.lower()
    if _CDBS_NAME.match(base):
        from ..instruments import personality

        if personality("hst").reference_properties(base.lower()) is not None:
            return "hst"
    return None


def cached_observatories(cfg: Config) -> list[str]:
    """The observatories whose server configuration the cache holds."""
    return [obs for obs in OBSERVATORIES if (cfg.config_dir(obs) / "server_config").is_file()]


def pick_observatory(cfg: Config, names: Iterable[str] = (), *, from_cache: bool = False) -> str:
    """The observatory to work on; ConfigError if nothing says which.

    ``--observatory``/``CRDS_OBSERVATORY``, then the mapping or reference names given,
    ``CRDS_CONTEXT``, ``CRDS_SERVER_URL``; with ``from_cache``, last the cache: its only
    observatory, or (several) ``jwst``, the reference's default observatory.
    """
    if cfg.observatory:
        return cfg.observatory
    for name in names:
        if (obs := observatory_of_file_name(name)) is not None:
            return obs
    if cfg.context and (obs := observatory_of_spec(cfg.context)) in OBSERVATORIES:
        return obs
    if (obs := _observatory_of_url(cfg.server_url)) is not None:
        return obs
    if from_cache:
        cached = cached_observatories(cfg)
        if len(cached) == 1:
            return cached[0]
        if "jwst" in cached:
            return "jwst"
    raise ConfigError("cannot tell the observatory: pass --observatory, set CRDS_OBSERVATORY, "
                      "or name a mapping such as hst_0729.pmap")


def resolve_mapping_specs(cfg: Config, observatory: str, specs: Sequence[str] | None) -> list[str]:
    """Literal mapping names for context specs (``.pmap/.imap/.rmap`` names or symbolic contexts).

    With no specs: ``CRDS_CONTEXT``, else ``<obs>-operational``, resolved from the
    cached server configuration.
    """
    if not specs:
        specs = [cfg.context or f"{observatory}-operational"]
    resolved: list[str] = []
    server_config: dict | None = None
    for spec in specs:
        if is_mapping_name(spec):
            resolved.append(spec)
            continue
        if server_config is None:
            server_config = read_server_config(cfg.config_dir(observatory))
        resolved.append(resolve_context(spec, server_config))
    return resolved


def mapping_store(cfg: Config, observatory: str):
    """A :class:`~crds_async.fetch.mapping_files.FileMappingStore` over the cache's mappings."""
    from ..fetch.mapping_files import FileMappingStore

    return FileMappingStore(cfg.mapping_dir(observatory), verify_checksum=not cfg.ignore_mapping_checksum)


def user_state_dir(cfg: Config, observatory: str, kind: str) -> Path:
    """The user's directory for state derived from one CRDS cache (``$XDG_CACHE_HOME/crds_async``,
    beside the compiled contexts): a CRDS cache, served or read-only, is never written to."""
    return cfg.state_dir(kind, observatory)


def print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
