"""Context names and their offline resolution from the cached server_config."""

from __future__ import annotations

import pytest

from crds_async.errors import ConfigError
from crds_async.rules.contexts import (
    is_context_spec,
    is_mapping_name,
    observatory_of_spec,
    resolve_context,
)
from crds_async.fetch.server_config import read_server_config
from tests.conftest import CACHE, needs_reference

SPECS = [
    "hst_0729.pmap", "jwst.pmap", "foo.pmap", "foo", "hst-edit", "jwst-operational", "jwst-latest",
    "hst-versions", "hst-build", "latest", "build", "hst-2040-01-29T12:00:00", "2040-01-29",
    "hst-acs-2040-01-29T12:00:00", "hst_acs_0421.imap", "../hst_0729.pmap", "/abs/hst_0729.pmap",
    "hst-acs-edit", "HST-edit", "", "hst-2040-01-29T12:00:00.123",
]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_grammar(spec):
    expected = spec in {
        "hst_0729.pmap", "jwst.pmap", "foo.pmap", "hst-edit", "jwst-operational", "jwst-latest",
        "hst-versions", "hst-build", "latest", "build", "hst-2040-01-29T12:00:00", "2040-01-29",
        "hst-2040-01-29T12:00:00.123",
    }
    assert is_context_spec(spec) is expected


@needs_reference
def test_spec_grammar_equals_the_reference():
    from crds.core import config as ref

    for spec in SPECS:
        if spec.startswith(("/", "..")) or spec == "":
            continue  # we refuse paths on purpose; the reference accepts file paths
        assert is_context_spec(spec) == bool(ref.is_context_spec(spec)), spec


def test_mapping_names_refuse_paths_and_traversal():
    assert is_mapping_name("hst_acs_biasfile_0345.rmap")
    for bad in ("../x.rmap", "a/b.rmap", "/x.pmap", "x.fits", "x..pmap", "x.rmap\0", ""):
        assert not is_mapping_name(bad), bad


@pytest.mark.parametrize(
    "obs, spec, expected_key",
    [("hst", "hst-operational", "operational_context"), ("hst", "hst-latest", "operational_context"),
     ("hst", "latest", "operational_context"), ("jwst", "jwst-edit", "edit_context"),
     ("jwst", "jwst-versions", "versions_context")],
)
def test_symbolic_names_resolve_offline(obs, spec, expected_key):
    server_config = read_server_config(CACHE / "config" / obs)
    assert resolve_context(spec, server_config) == server_config[expected_key]
    assert observatory_of_spec(spec) in (obs, None)


def test_names_that_need_a_server_say_so():
    server_config = read_server_config(CACHE / "config" / "hst")
    for spec in ("hst-2019-01-01T00:00:00", "hst-build"):
        with pytest.raises(ConfigError, match="needs a CRDS server"):
            resolve_context(spec, server_config)
    with pytest.raises(ConfigError, match="no versions_context"):
        resolve_context("hst-versions", server_config)  # empty in the HST snapshot
    with pytest.raises(ConfigError, match="cached server_config is for 'hst'"):
        resolve_context("jwst-edit", server_config)


def test_unreadable_or_hostile_server_config(tmp_path):
    with pytest.raises(ConfigError, match="server_config"):
        read_server_config(tmp_path)
    (tmp_path / "server_config").write_text("__import__('os').system('touch pwned')")
    with pytest.raises(ConfigError, match="not a valid server configuration"):
        read_server_config(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_a_server_config_is_parsed_once_per_version(tmp_path, monkeypatch):
    """HST's server_config is 2 MB of literal: a process parses each version of it once."""
    import shutil

    from crds_async.fetch import server_config as contexts

    shutil.copytree(CACHE / "config" / "hst", tmp_path / "hst")
    (tmp_path / "hst" / "server_config").chmod(0o644)
    parsed = []
    real = contexts.ast.literal_eval
    monkeypatch.setattr(contexts.ast, "literal_eval", lambda text: parsed.append(1) or real(text))
    first = contexts.read_server_config(tmp_path / "hst")
    assert contexts.read_server_config(tmp_path / "hst") is first and len(parsed) == 1
    path = tmp_path / "hst" / "server_config"
    path.write_text(path.read_text().replace("'hst_0729.pmap'", "'hst_0700.pmap'"))
    changed = contexts.read_server_config(tmp_path / "hst")
    assert len(parsed) == 2 and changed["operational_context"] == "hst_0700.pmap"
