"""Cache layout: flat and per-instrument reference paths, the stored/auto-chosen mode, organize."""

from __future__ import annotations

import os

import pytest

from crds_async.config import Config
from crds_async.errors import ConfigError, UnsafeNameError
from crds_async.fetch.layout import (find_cached, instrument_of_reference, reference_path, subdir_mode,
                                     write_subdir_mode)
from crds_async.fetch.sync import organize_references


def _cfg(root, **kw):
    return Config(cache_roots=(("CRDS_PATH", str(root)),), **kw)


@pytest.mark.parametrize("obs, name, instrument", [
    ("hst", "v8q14451j_idc.fits", "acs"), ("hst", "z1r1943el_1dx.fits", "cos"), ("hst", "t771350fo_bia.fits", "stis"),
    ("hst", "e1b09593u.r3h", "wfpc2"), ("hst", "x1b1732sm_tmt.fits", "synphot"), ("hst", "hst_wfc3_darkfile_0001.fits", "wfc3"),
    ("jwst", "jwst_nircam_flat_0001.fits", "nircam"), ("jwst", "odd.fits", None), ("roman", "roman_wfi_dark_0001.asdf", "wfi"),
])
def test_instrument_from_name(obs, name, instrument):
    assert instrument_of_reference(obs, name) == instrument


def test_new_cache_is_instrument_mode_and_remembers_it(tmp_path):
    cfg = _cfg(tmp_path)
    assert subdir_mode(cfg, "hst") == "instrument"
    assert (tmp_path / "config" / "hst" / "ref_cache_subdir_mode").read_text().strip() == "instrument"
    path = reference_path(cfg, "hst", "v8q14451j_idc.fits", create_dirs=True)
    assert path == tmp_path / "references" / "hst" / "acs" / "v8q14451j_idc.fits"
    assert os.readlink(tmp_path / "references" / "hst" / "jref") == str(tmp_path / "references" / "hst" / "acs")
    assert reference_path(cfg, "jwst", "jwst_miri_flat_0001.fits").parent.name == "miri"


def test_crowded_cache_is_flat_and_readonly_writes_nothing(tmp_path):
    refdir = tmp_path / "references" / "hst"
    refdir.mkdir(parents=True)
    for i in range(21):
        (refdir / f"z{i:07d}j_drk.fits").write_bytes(b"x")
    cfg = _cfg(tmp_path, readonly_cache=True)
    assert subdir_mode(cfg, "hst") == "flat"
    assert not (tmp_path / "config").exists()
    assert reference_path(cfg, "hst", "v8q14451j_idc.fits") == refdir / "v8q14451j_idc.fits"
    with pytest.raises(UnsafeNameError):
        reference_path(cfg, "hst", "../v8q14451j_idc.fits")


def test_bad_mode_file_is_a_config_error(tmp_path):
    (tmp_path / "config" / "hst").mkdir(parents=True)
    (tmp_path / "config" / "hst" / "ref_cache_subdir_mode").write_text("legacy\n")
    with pytest.raises(ConfigError, match="ref_cache_subdir_mode"):
        subdir_mode(_cfg(tmp_path), "hst")


def test_organize_round_trip(tmp_path):
    cfg = _cfg(tmp_path)
    write_subdir_mode(cfg, "hst", "flat")
    refdir = tmp_path / "references" / "hst"
    refdir.mkdir(parents=True)
    names = ["v8q14451j_idc.fits", "z1r1943el_1dx.fits", "x1b1732sm_tmt.fits"]
    for name in names:
        (refdir / name).write_bytes(name.encode())
    moves = organize_references(cfg, "hst", "instrument")
    assert len(moves) == 3
    assert (refdir / "acs" / names[0]).read_bytes() == names[0].encode()
    assert (refdir / "cos" / names[1]).exists() and (refdir / "synphot" / names[2]).exists()
    assert sorted(find_cached(cfg, "hst")) == sorted(names)
    organize_references(cfg, "hst", "flat")
    assert sorted(p.name for p in refdir.iterdir()) == sorted(names)
    assert subdir_mode(cfg, "hst") == "flat"
