"""JWST type screening equals the reference's: corpus files, generated headers, edge rules."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from crds_async.errors import RulesError
from crds_async.headers import read_header
from crds_async.instruments import bestrefs_parameters, dataset_header
from crds_async.instruments.jwst_types import (
    CAL_VER_KEYS,
    EXP_TYPE_KEYS,
    SCREENING_KEYWORDS,
    TABLE_VERSIONS,
    CrdsCfgTable,
    applicable_reftypes,
    cli_reftypes,
    load_table,
    table_for_version,
    table_name_for_version,
)
from crds_async.fetch.mapping_files import load_mapping_file
from tests.conftest import CACHE, CORPUS, ROOT, needs_reference

CONTEXT = "jwst_0541.pmap"


def _imap_reftypes() -> dict[str, list[str]]:
    """Instrument (lower case) -> the lower-case types of its imap in jwst_0541.pmap."""
    mappings = CACHE / "mappings" / "jwst"
    pmap = load_mapping_file(mappings / CONTEXT)
    return {instrument.lower(): [t.lower() for t in load_mapping_file(mappings / imap).selector]
            for instrument, imap in pmap.selector.items()}


def _corpus_parameters(name: str) -> dict[str, str]:
    """A corpus file's bestrefs parameters, read as pipeline._evaluate_one reads them."""
    path = str(CORPUS / "jwst" / name)
    raw = read_header(path)
    return bestrefs_parameters(dataset_header(raw, "ASDF" if path.lower().endswith(".asdf") else "FITS"))


@pytest.fixture(scope="module")
def cli_expected() -> dict[str, list[str]]:
    return json.loads((CORPUS / "cli_reftypes_jwst_0541.json").read_text())


@pytest.fixture(scope="module")
def corpus_parameters(cli_expected) -> dict[str, dict[str, str]]:
    return {name: _corpus_parameters(name) for name in cli_expected}


# -- the corpus: exactly the types the reference CLI evaluated ---------------------------------

def test_corpus_types_equal_the_reference_cli(cli_expected, corpus_parameters):
    imaps = _imap_reftypes()
    screened = 0
    wrong = {}
    for name, expected in cli_expected.items():
        parameters = corpus_parameters[name]
        instrument = parameters["META.INSTRUMENT.NAME"].lower()
        got = cli_reftypes(parameters, imaps[instrument])
        if got != expected:
            wrong[name] = sorted(set(got) ^ set(expected))
        screened += applicable_reftypes(parameters) is not None
    assert not wrong, f"{len(wrong)} files differ, e.g. {next(iter(wrong.items()))}"
    assert len(cli_expected) == 300
    # the corpus really exercises both paths: screened lists, and "all types" fall-backs
    assert 250 < screened < 300


def test_corpus_no_cal_ver_files_evaluate_every_type(cli_expected, corpus_parameters):
    manifest = json.loads((CORPUS / "manifest_jwst_0541.json").read_text())["files"]
    imaps = _imap_reftypes()
    names = [name for name, info in manifest.items() if info["edge"] == "no_cal_ver"]
    assert names
    for name in names:
        parameters = corpus_parameters[name]
        assert "CAL_VER" not in parameters and "META.CALIBRATION_SOFTWARE_VERSION" not in parameters
        assert applicable_reftypes(parameters) is None
        assert cli_expected[name] == sorted(imaps[parameters["META.INSTRUMENT.NAME"].lower()])


# -- edge rules ---------------------------------------------------------------------------------

def _header(cal_ver="1.12.5", exp_type="MIR_IMAGE", **extra):
    header = {"META.INSTRUMENT.NAME": "MIRI"}
    if cal_ver is not None:
        header["META.CALIBRATION_SOFTWARE_VERSION"] = cal_ver
    if exp_type is not None:
        header["META.EXPOSURE.TYPE"] = exp_type
    header.update(extra)
    return header


def test_known_exp_type_gives_its_pipelines_types():
    types = applicable_reftypes(_header())
    assert {"dark", "flat", "photom", "linearity"} <= types
    assert "barshadow" not in types and "msaoper" not in types   # NIRSpec MOS only
    table = load_table("jwst_system_crdscfg_b7.8.yaml")
    assert table.pipelines("MIR_IMAGE", _header()) == ["calwebb_detector1.cfg", "calwebb_image2.cfg"]


@pytest.mark.parametrize("exp_type", ["NOT_AN_EXPTYPE", "mir_image", " MIR_IMAGE", "UNDEFINED", "N/A"])
def test_unknown_exp_type_means_every_type(exp_type):
    assert applicable_reftypes(_header(exp_type=exp_type)) is None
    assert cli_reftypes(_header(exp_type=exp_type), ["flat", "dark"]) == ["dark", "flat"]


def test_missing_exp_type_means_every_type():
    assert applicable_reftypes(_header(exp_type=None)) is None


@pytest.mark.parametrize("cal_ver", [None, "", "latest", "1.x", "1!1.12.5", "1.12.5 beta"])
def test_missing_or_unparsable_cal_ver_means_every_type(cal_ver):
    assert applicable_reftypes(_header(cal_ver=cal_ver)) is None


def test_bare_fits_keywords_work_and_meta_names_win():
    bare = {"CAL_VER": "1.12.5", "EXP_TYPE": "MIR_IMAGE"}
    assert applicable_reftypes(bare) == applicable_reftypes(_header())
    both = dict(bare, **{"META.EXPOSURE.TYPE": "NOT_AN_EXPTYPE"})
    assert applicable_reftypes(both) is None
    both = dict(bare, **{"META.CALIBRATION_SOFTWARE_VERSION": "nonsense"})
    assert applicable_reftypes(both) is None


@pytest.mark.parametrize("cal_ver, table", [
    ("0.1", "jwst_system_crdscfg_b7.yaml"),            # older than every table: the first
    ("0.7.7", "jwst_system_crdscfg_b7.yaml"),
    ("0.8.99", "jwst_system_crdscfg_b7.yaml"),
    ("0.9", "jwst_system_crdscfg_b7.1.yaml"),          # missing parts are 0
    ("0.9.2", "jwst_system_crdscfg_b7.1.1.yaml"),
    ("0.9.7", "jwst_system_crdscfg_b7.1.3.yaml"),
    ("0.10.0", "jwst_system_crdscfg_b7.2.yaml"),       # numeric, not text, comparison
    ("0.13.7", "jwst_system_crdscfg_b7.3.yaml"),
    ("0.13.8rc1", "jwst_system_crdscfg_b7.4.yaml"),    # pre-releases count as their release
    ("0.16.0.dev12+gabc", "jwst_system_crdscfg_b7.5.yaml"),
    ("1.0.9", "jwst_system_crdscfg_b7.6.yaml"),
    ("1.1.0", "jwst_system_crdscfg_b7.8.yaml"),
    (" 1.17.1 ", "jwst_system_crdscfg_b7.8.yaml"),
    ("v2.0.0.7", "jwst_system_crdscfg_b7.8.yaml"),
    ("999.0", "jwst_system_crdscfg_b7.8.yaml"),
])
def test_version_picks_the_last_table_not_newer_than_it(cal_ver, table):
    assert table_name_for_version(cal_ver) == table
    assert table_for_version(cal_ver).name == table


def test_every_bundled_table_loads_once():
    for _, name in TABLE_VERSIONS:
        assert load_table(name) is load_table(name)
    with pytest.raises(RulesError, match="nope.yaml"):
        load_table("nope.yaml")


def test_tso_visit_switches_to_tso_pipelines():
    table = load_table("jwst_system_crdscfg_b7.8.yaml")
    # dont_replace is matched case-sensitively and whole: only F, FALSE, NONE, OFF keep the normal ones
    for tso in ("T", "TRUE", "True", "False", "f"):
        assert table.pipelines("MIR_IMAGE", {"META.VISIT.TSOVISIT": tso}) == [
            "calwebb_tso1.cfg", "calwebb_tso-image2.cfg"]
    for normal in ("F", "FALSE", "NONE", "OFF"):
        assert table.pipelines("MIR_IMAGE", {"META.VISIT.TSOVISIT": normal})[0] == "calwebb_detector1.cfg"
    assert table.pipelines("MIR_IMAGE", {})[0] == "calwebb_detector1.cfg"   # missing: its default F


def test_wfsc_visit_title_switches_image2():
    table = load_table("jwst_system_crdscfg_b7.8.yaml")
    header = {"META.VISIT.TSOVISIT": "F", "META.VISIT.TITLE": "PRIME_WFSC_ROUTINE"}
    assert table.pipelines("NRC_IMAGE", header) == ["calwebb_detector1.cfg", "calwebb_wfs-image2.cfg"]


def test_old_table_string_exception_list_counts_characters():
    # b7.3 writes dont_replace as one string "F, FALSE, NONE, OFF": the reference iterates its
    # characters, so FALSE does not keep the normal pipeline there, but a lone F does
    table = load_table("jwst_system_crdscfg_b7.3.yaml")
    assert table.pipelines("MIR_IMAGE", {"META.VISIT.TSOVISIT": "FALSE"})[0] == "calwebb_tso1.cfg"
    assert table.pipelines("MIR_IMAGE", {"META.VISIT.TSOVISIT": "F"})[0] == "calwebb_detector1.cfg"


def test_a_given_table_replaces_the_version_rule_but_not_the_cal_ver_requirement():
    text = """
exptypes_to_pipelines: {MIR_IMAGE: [one.cfg], MIR_DARK: [missing.cfg]}
pipeline_cfgs_to_steps: {one.cfg: [a, b]}
steps_to_reftypes: {a: [dark, flat], b: [flat, photom]}
"""
    table = CrdsCfgTable.from_yaml_text(text, "jwst_system_crdscfg_0042.yaml")
    assert applicable_reftypes(_header(cal_ver="0.1"), table) == {"dark", "flat", "photom"}
    assert applicable_reftypes(_header(cal_ver="nonsense"), table) == {"dark", "flat", "photom"}
    assert applicable_reftypes(_header(cal_ver=None), table) is None
    assert applicable_reftypes(_header(exp_type="MIR_DARK"), table) is None   # undescribed pipeline
    with pytest.raises(RulesError, match="jwst_system_crdscfg_0042.yaml: not a CRDSCFG table"):
        CrdsCfgTable.from_yaml_text("- a list", "jwst_system_crdscfg_0042.yaml")
    with pytest.raises(RulesError, match="bad.yaml: not valid YAML"):
        CrdsCfgTable.from_yaml_text("a: [", "bad.yaml")


def test_answers_are_memoised_per_exp_type_and_exception_values():
    table = load_table("jwst_system_crdscfg_b7.8.yaml")
    first = table.reftypes("NRS_IFU", _header(exp_type="NRS_IFU"))
    # another dataset with the same EXP_TYPE and exception keywords: the same object, no recomputation
    assert table.reftypes("NRS_IFU", _header(exp_type="NRS_IFU", OTHER="x")) is first
    assert table.exception_keys == ("META.VISIT.TSOVISIT", "META.INSTRUMENT.LAMP_STATE", "META.VISIT.TITLE")
    tso = table.reftypes("NRS_IFU", _header(exp_type="NRS_IFU", **{"META.VISIT.TSOVISIT": "T"}))
    assert tso != first
    assert table_for_version("1.12.5") is table_for_version("1.12.5")


# -- generated headers against the reference's own function ------------------------------------

_REFERENCE_SCRIPT = """
import json, sys
from crds.core import log
log.set_verbose(False)
log.warning = lambda *a, **k: None
from crds.jwst.pipeline import header_to_reftypes
out = [header_to_reftypes(h, sys.argv[1]) for h in json.loads(sys.stdin.read())]
sys.stdout.write("\\n" + json.dumps(out) + "\\n")
"""


def _generated_headers(count: int, seed: int = 16) -> list[dict[str, str]]:
    rng = random.Random(seed)
    exp_types = sorted({e for _, name in TABLE_VERSIONS
                        for e in load_table(name).exp_types})
    exp_types += ["NOT_AN_EXPTYPE", "mir_image", "UNDEFINED"]
    versions = [v for v, _ in TABLE_VERSIONS] + [
        "0.1", "0.9.2", "0.13.7", "1.0.9", "1.12.5", "0.13.8rc1", "1.1.0.dev3+gabc",
        " 1.8.2", "1!1.0", "latest", "1.x", "9"]
    flags = ["T", "F", "True", "False", "FALSE", "TRUE", "NONE", "OFF", "ON", "N", "L", ""]
    titles = ["PRIME_WFSC_ROUTINE", "PRIME_TARGETED_FIXED", "wfsc", "X WFSC Y", "PARALLEL_PURE"]
    headers = []
    for _ in range(count):
        header = {"META.INSTRUMENT.NAME": "SYSTEM", "EXP_TYPE": rng.choice(exp_types),
                  "CAL_VER": rng.choice(versions)}
        if rng.random() < 0.5:
            header["META.EXPOSURE.TYPE"] = rng.choice(exp_types)
        if rng.random() < 0.3:
            header["META.CALIBRATION_SOFTWARE_VERSION"] = rng.choice(versions)
        for key, choices in (("META.VISIT.TSOVISIT", flags), ("META.INSTRUMENT.LAMP_STATE", flags),
                             ("META.VISIT.TITLE", titles)):
            if rng.random() < 0.8:
                header[key] = rng.choice(choices)
        headers.append(header)
    return headers


@needs_reference
def test_generated_headers_equal_the_reference():
    headers = _generated_headers(600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL="https://jwst-crds.stsci.edu",
               CRDS_READONLY_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", _REFERENCE_SCRIPT, CONTEXT], input=json.dumps(headers),
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = json.loads(proc.stdout.splitlines()[-1])
    wrong = []
    for header, want in zip(headers, expected, strict=True):
        got = applicable_reftypes(header)
        if sorted(got or ()) != want:
            wrong.append((header, sorted(set(got or ()) ^ set(want))))
    assert not wrong, f"{len(wrong)} of {len(headers)} differ, e.g. {wrong[0]}"
    # the sample covers both outcomes
    assert 0 < sum(1 for want in expected if not want) < len(expected) // 2


def test_module_has_no_memo_leak_between_tables():
    # each table keeps its own memo: the same EXP_TYPE may need other types in an older table
    old = load_table("jwst_system_crdscfg_b7.yaml").reftypes("MIR_IMAGE", {})
    new = load_table("jwst_system_crdscfg_b7.8.yaml").reftypes("MIR_IMAGE", {})
    assert old != new
    assert "MIR_IMAGE" in load_table("jwst_system_crdscfg_b7.yaml").exp_types


def test_screening_keywords_cover_every_keyword_a_table_reads():
    from crds_async.instruments.jwst import DM_TO_FITS

    read = set(CAL_VER_KEYS + EXP_TYPE_KEYS)
    for _, name in TABLE_VERSIONS:
        read.update(load_table(name).exception_keys)
    read.update(DM_TO_FITS[key] for key in list(read) if key in DM_TO_FITS)
    assert read == SCREENING_KEYWORDS


def test_each_dataset_costs_a_memo_lookup_once_its_kind_was_seen(corpus_parameters, monkeypatch):
    """Over the corpus the tables compute once per (table, EXP_TYPE, exception values), not per file."""
    computed = []
    original = CrdsCfgTable._compute

    def counting(self, exp_type, header):
        computed.append((self.name, exp_type))
        return original(self, exp_type, header)

    monkeypatch.setattr(CrdsCfgTable, "_compute", counting)
    for _, name in TABLE_VERSIONS:   # a fresh memo per table for this count
        monkeypatch.setattr(load_table(name), "_memo", {})
    headers = list(corpus_parameters.values())
    first = [applicable_reftypes(h) for h in headers]
    kinds = len(computed)
    assert 0 < kinds < len(headers)     # files of one kind share an answer (this corpus mixes kinds on purpose)
    again = [applicable_reftypes(h) for h in headers]
    assert again == first and len(computed) == kinds   # the second pass is pure lookups


def test_tables_load_as_yaml_safe_load_reads_them():
    import yaml
    from importlib import resources

    for _, name in TABLE_VERSIONS:
        text = resources.files("crds_async.instruments").joinpath("data", "jwst_crdscfg", name).read_text("utf-8")
        assert load_table(name)._data == yaml.safe_load(text)
    with pytest.raises(RulesError, match="bad.yaml: not valid YAML"):
        CrdsCfgTable.from_yaml_text("!!python/object:os.system {}", "bad.yaml")
