"""Untrusted names: only plain file names with expected suffixes pass."""

from __future__ import annotations

import pytest

from crds_async.errors import UnsafeNameError
from crds_async.fetch.names import check_name, check_names, file_kind, geis_conjugate


@pytest.mark.parametrize("name", [
    "hst_0729.pmap", "hst_acs_biasfile_0250.rmap", "v8q14451j_idc.fits", "jwst_nircam_pars-tweakreg_0001.asdf",
    "x1b1732sm_tmt.fits", "e1b09593u.r3h", "e1b09593u.r3d", "jwst_system_datalvl_0002.json",
    "roman_wfi_flat_0004.asdf", "a+b_x.yaml",
])
def test_plain_names_pass(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name, problem", [
    ("../etc/passwd.fits", "directory part"),
    ("/etc/x.fits", "directory part"),
    ("..fits", "'..'"),
    ("a..b.fits", "'..'"),
    ("x\x00.fits", "NUL"),
    ("", "empty"),
    (".hidden.fits", "starts with"),
    ("-rf.fits", "starts with"),
    ("x y.fits", "characters"),
    ("evil.sh", "suffix"),
    ("x.fits.lock", "suffix"),
    ("sub\\x.fits", "directory part"),
    ("a" * 300 + ".fits", "longer"),
])
def test_unsafe_names_are_refused_with_a_reason(name, problem):
    with pytest.raises(UnsafeNameError) as info:
        check_name(name, where="unit test")
    message = str(info.value)
    assert problem in message and "unit test" in message and "\n" not in message


def test_kinds_and_non_strings():
    assert file_kind("x.rmap") == "mappings" and file_kind("x.fits") == "references"
    assert file_kind("server_config") == "config"
    with pytest.raises(UnsafeNameError, match="reference name where a mapping"):
        check_name("x_drk.fits", kinds=("mappings",))
    with pytest.raises(UnsafeNameError, match="not a string"):
        check_name(7)
    with pytest.raises(UnsafeNameError, match="list of file names"):
        check_names("hst.pmap")
    assert check_name("server_config", kinds=("config",)) == "server_config"
    with pytest.raises(UnsafeNameError):
        check_name("server_config")  # config names only where asked for


def test_geis_conjugates():
    assert geis_conjugate("e1b09593u.r3h") == "e1b09593u.r3d"
    assert geis_conjugate("x_drk.fits") is None
