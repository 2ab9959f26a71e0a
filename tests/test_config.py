"""Configuration from CRDS_* variables: defaults, precedence, malformed values."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from crds_async.config import DEFAULT_CACHE, Config, config_from_env
from crds_async.errors import ConfigError
from tests.conftest import needs_reference


def test_defaults_match_the_reference_client():
    cfg = config_from_env({})
    assert cfg.mode == "auto"
    assert cfg.retry_count == 1 and cfg.retry_delay_seconds == 0
    assert cfg.client_timeout_seconds == 3600
    assert cfg.download_checksums and cfg.download_lengths
    assert not (cfg.readonly_cache or cfg.allow_bad_rules or cfg.allow_bad_references or cfg.ignore_mapping_checksum)
    assert cfg.mapping_dir("hst") == Path(DEFAULT_CACHE) / "mappings" / "hst"


def test_resolution_is_pure_and_ignores_os_environ(monkeypatch):
    monkeypatch.setenv("CRDS_PATH", "/from/os/environ")
    assert config_from_env({"CRDS_PATH": "/given"}).mapping_dir("jwst") == Path("/given/mappings/jwst")


@pytest.mark.parametrize(
    "env, branch, expected",
    [
        ({"CRDS_PATH": "/c/"}, "mappings", "/c/mappings/hst"),
        ({"CRDS_PATH": "/c", "CRDS_PATH_SINGLE": "/s"}, "references", "/s/references"),
        ({"CRDS_PATH": "/c", "CRDS_REFPATH": "/r"}, "references", "/r/hst"),
        ({"CRDS_PATH": "/c", "CRDS_REFPATH": "/r", "CRDS_REFPATH_SINGLE": "/rs"}, "references", "/rs"),
        ({"CRDS_PATH": "/c", "CRDS_CFGPATH_SINGLE": "/cfg"}, "config", "/cfg"),
        ({"CRDS_PATH": "/c", "CRDS_MAPPATH": "/m"}, "references", "/c/references/hst"),
    ],
)
def test_branch_precedence(env, branch, expected):
    assert config_from_env(env).cache_dir(branch, "hst") == Path(expected)


@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), ("T", True), ("True", True),
                                        ("0", False), ("false", False), ("F", False), (" FALSE ", False)])
def test_booleans_accept_the_reference_spellings(raw, value):
    assert config_from_env({"CRDS_READONLY_CACHE": raw}).readonly_cache is value


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"CRDS_ALLOW_BAD_RULES": "yes please"}, "CRDS_ALLOW_BAD_RULES"),
        ({"CRDS_CLIENT_RETRY_COUNT": "three"}, "CRDS_CLIENT_RETRY_COUNT"),
        ({"CRDS_CLIENT_RETRY_COUNT": "-1"}, "CRDS_CLIENT_RETRY_COUNT"),
        ({"CRDS_CLIENT_RETRY_DELAY_SECONDS": "soon"}, "CRDS_CLIENT_RETRY_DELAY_SECONDS"),
        ({"CRDS_CLIENT_RETRY_DELAY_SECONDS": "nan"}, "CRDS_CLIENT_RETRY_DELAY_SECONDS"),
        ({"CRDS_MODE": "sideways"}, "CRDS_MODE"),
        ({"CRDS_OBSERVATORY": "hubble"}, "CRDS_OBSERVATORY"),
        ({"CRDS_CONTEXT": "hst_acs_0001.imap"}, "CRDS_CONTEXT"),
        ({"CRDS_VERBOSITY": "loud"}, "CRDS_VERBOSITY"),
    ],
)
def test_malformed_values_name_the_variable(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_from_env(env)


def test_retry_count_zero_means_one_attempt():
    # The reference crashes on 0; a user who writes 0 means "don't retry".
    assert config_from_env({"CRDS_CLIENT_RETRY_COUNT": "0"}).retry_count == 1
    assert config_from_env({"CRDS_CLIENT_RETRY_COUNT": "5"}).retry_count == 5


def test_contexts_and_modes_are_accepted():
    cfg = config_from_env({"CRDS_CONTEXT": "jwst-operational", "CRDS_MODE": "LOCAL",
                           "CRDS_OBSERVATORY": "JWST", "CRDS_SERVER_URL": " https://x "})
    assert (cfg.context, cfg.mode, cfg.observatory, cfg.server_url) == (
        "jwst-operational", "local", "jwst", "https://x")


def test_config_is_immutable_and_replace_returns_a_copy():
    cfg = config_from_env({})
    with pytest.raises(AttributeError):
        cfg.mode = "local"  # type: ignore[misc]
    assert cfg.replace(mode="local").mode == "local" and cfg.mode == "auto"
    assert isinstance(cfg, Config)


@needs_reference
def test_cache_paths_equal_the_reference(monkeypatch):
    """Every combination of path variables resolves like the reference's."""
    import crds.core.config as ref

    names = ["CRDS_PATH", "CRDS_PATH_SINGLE", "CRDS_MAPPATH", "CRDS_REFPATH_SINGLE", "CRDS_CFGPATH"]
    getters = {"mappings": ref.get_crds_mappath, "references": ref.get_crds_refpath,
               "config": ref.get_crds_cfgpath}
    for n in range(len(names) + 1):
        for subset in itertools.combinations(names, n):
            env = {name: f"/x/{name.lower()}/" for name in subset}
            for key in [k for k in os.environ if k.startswith("CRDS_")]:
                monkeypatch.delenv(key)
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            ours = config_from_env(env)
            for branch, getter in getters.items():
                for obs in ("hst", "jwst"):
                    assert str(ours.cache_dir(branch, obs)) == getter(obs), (subset, branch, obs)


def test_none_means_unset_as_the_reference_reads_it():
    """The reference reads CRDS_* variables valued none/None/NONE as unset (its own tests set
    CRDS_OBSERVATORY=none); so do we."""
    for spelling in ("none", "None", "NONE"):
        cfg = config_from_env({"CRDS_OBSERVATORY": spelling, "CRDS_CONTEXT": spelling})
        assert cfg.observatory is None and cfg.context is None
