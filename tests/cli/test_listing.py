"""crds-batch list: configuration, contexts, and the same context file sets as the reference's crds list."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


from crds_async import __version__
from crds_async.cli import main

from ..conftest import CACHE, CORPUS, needs_reference

SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu"}


def run_reference_list(obs: str, *args: str) -> list[str]:
    env = dict(os.environ, CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[obs],
               CRDS_READONLY_CACHE="1")
    proc = subprocess.run([sys.executable, "-m", "crds.list", *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRDS_PATH", str(CACHE))
    monkeypatch.setenv("CRDS_MODE", "local")
    for var in ("CRDS_OBSERVATORY", "CRDS_CONTEXT", "CRDS_SERVER_URL", "CRDS_READONLY_CACHE"):
        monkeypatch.delenv(var, raising=False)


def test_version(capsys) -> None:
    assert main(["list", "--version"]) == 0
    assert capsys.readouterr().out.strip() == f"crds-batch {__version__}"


def test_config_json(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("CRDS_SERVER_URL", "https://jwst-crds.stsci.edu")
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    assert main(["list", "--config", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["observatory"] == "jwst"
    assert info["paths"]["mappings"] == str(CACHE / "mappings" / "jwst")
    assert info["config"]["readonly_cache"] is True
    assert info["effective_context"] == "jwst_0541.pmap"


def test_config_text_and_status(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("CRDS_OBSERVATORY", "hst")
    monkeypatch.setenv("CRDS_CONTEXT", "hst_0600.pmap")
    assert main(["list", "--config", "--status"]) == 0
    out = capsys.readouterr().out
    assert "\tmode = 'local'" in out
    assert "effective_context = 'hst_0600.pmap'" in out  # CRDS_CONTEXT wins over the operational one
    assert "Last Synced = '2019-09-11 15:47:43.789608'" in out


def test_bad_environment_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("CRDS_MODE", "sideways")
    assert main(["list", "--config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CRDS_MODE" in err[0]


@needs_reference
@pytest.mark.parametrize("obs", ["hst", "jwst"])
def test_operational_context_as_reference(obs: str, capsys) -> None:
    expected = run_reference_list(obs, "--operational-context")[-1]
    assert main(["list", "--operational-context", "--observatory", obs]) == 0
    assert capsys.readouterr().out.strip() == expected


@needs_reference
@pytest.mark.parametrize("obs, context", [("hst", "hst_0729.pmap"), ("jwst", "jwst_0541.pmap"),
                                          ("hst", "hst_0600.pmap"), ("jwst", "jwst_0500.pmap")])
def test_mappings_and_references_as_reference(obs: str, context: str, capsys) -> None:
    expected = run_reference_list(obs, "--mappings", "--references", "--contexts", context)
    assert main(["list", "--mappings", "--references", "--contexts", context]) == 0
    ours = capsys.readouterr().out.split()
    assert len(ours) > 100
    assert ours == expected  # same names, same order


def test_full_path_and_json(capsys) -> None:
    assert main(["list", "--mappings", "--full-path", "--contexts", "hst_0729.pmap"]) == 0
    paths = capsys.readouterr().out.split()
    assert str(CACHE / "mappings" / "hst" / "hst_0729.pmap") in paths
    assert main(["list", "--mappings", "--references", "--json", "--contexts", "hst_0729.pmap"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "hst_acs_biasfile_0345.rmap" in data["mappings"] and "q9e1206kj_bia.fits" in data["references"]


def test_cat_mapping_and_reference(capsys) -> None:
    assert main(["list", "--cat", "hst_cos_tdstab_0251.rmap"]) == 0
    out = capsys.readouterr().out
    assert "'name' : 'hst_cos_tdstab_0251.rmap'" in out
    assert main(["list", "--observatory", "hst", "--cat", "z1r1943el_1dx.fits"]) == 0
    out = capsys.readouterr().out
    assert "INSTRUME = 'COS'" in out or "INSTRUME" in out
    assert main(["list", "--observatory", "hst", "--cat", "no_such_reference_00.fits"]) == 1
    assert "no_such_reference_00.fits" in capsys.readouterr().err


def test_nothing_to_list_is_a_usage_error(capsys) -> None:
    assert main(["list"]) == 2


MINIMUM_HEADER_SCRIPT = """
import json, sys
import crds
context, files = sys.argv[1], sys.argv[2:]
pmap = crds.get_cached_mapping(context)
out = {}
for f in files:
    try:
        out[f] = pmap.get_minimum_header(f)
    except Exception as exc:
        out[f] = "error: " + str(exc)
print(json.dumps(out))
"""


@needs_reference
@pytest.mark.parametrize("obs, context", [("hst", "hst_0729.pmap"), ("jwst", "jwst_0541.pmap")])
def test_dataset_parameters_as_reference(obs: str, context: str) -> None:
    """The parameters the rules see equal the reference's get_minimum_header on corpus files."""
    from crds_async.cli.listing import rules_view
    from crds_async.config import config_from_env

    files = sorted(str(p) for p in (CORPUS / obs).glob("*.fits"))[::12]
    env = dict(os.environ, CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[obs],
               CRDS_READONLY_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", MINIMUM_HEADER_SCRIPT, context, *files], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = json.loads(proc.stdout.splitlines()[-1])
    cfg = config_from_env({"CRDS_PATH": str(CACHE), "CRDS_MODE": "local"})
    assert sum(isinstance(v, dict) for v in expected.values()) >= 20
    for f in files:
        view = rules_view(cfg, f, [context], obs)
        assert view["parameters"] == expected[f], f


def test_dataset_headers_cli(capsys) -> None:
    dataset = sorted((CORPUS / "hst").glob("*.fits"))[0]
    assert main(["list", "--json", "--dataset-headers", str(dataset), "--contexts", "hst_0729.pmap"]) == 0
    view = json.loads(capsys.readouterr().out)[str(dataset)]
    assert view["context"] == "hst_0729.pmap"
    assert view["parameters"]["INSTRUME"].lower() == view["instrument"]
    assert "DATE-OBS" in view["parameters"]


def test_operational_context_from_the_cache(tmp_path, monkeypatch, capsys) -> None:
    """--operational-context needs no --observatory: the cache names it (one observatory cached:
    that one; several: jwst, the reference's default, as its crds list prints)."""
    import shutil

    one = tmp_path / "cache"
    shutil.copytree(CACHE / "config" / "hst", one / "config" / "hst")
    monkeypatch.setenv("CRDS_PATH", str(one))
    assert main(["list", "--operational-context"]) == 0
    assert capsys.readouterr().out.strip() == "hst_0729.pmap"


@needs_reference
def test_operational_context_of_a_cache_of_several_as_reference(capsys) -> None:
    env_free = run_reference_list_env_free()
    assert main(["list", "--operational-context"]) == 0
    assert capsys.readouterr().out.strip() == env_free


def run_reference_list_env_free() -> str:
    """The reference's crds list --operational-context with no observatory or server named."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_MODE="local", CRDS_READONLY_CACHE="1")
    proc = subprocess.run([sys.executable, "-m", "crds.list", "--operational-context"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()[-1]


@pytest.mark.parametrize("argv, level", [
    (["list", "--version"], "WARNING"),
    (["-v", "list", "--version"], "INFO"),
    (["list", "--version", "-v"], "INFO"),
    (["-vv", "list", "--version"], "DEBUG"),
    (["--verbosity", "60", "list", "--version"], "DEBUG"),
    (["list", "--version", "--verbosity", "10"], "INFO"),
])
def test_global_switches_before_and_after_the_command(argv, level, capsys) -> None:
    import logging

    assert main(argv) == 0
    assert logging.getLevelName(logging.getLogger("crds_async").level) == level


def test_crds_verbosity_takes_effect(monkeypatch, capsys) -> None:
    import logging

    monkeypatch.setenv("CRDS_VERBOSITY", "55")
    assert main(["list", "--version"]) == 0
    assert logging.getLogger("crds_async").level == logging.DEBUG


@pytest.mark.parametrize("command", ["bestrefs", "sync", "serve", "list", "diff", "matches", "uses", "certify"])
def test_every_command_takes_version(command) -> None:
    """-V on every sub-command (list keeps its own --version; -V prints the same)."""
    proc = subprocess.run([sys.executable, "-m", "crds_async", command, "-V"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"crds-batch {__version__}", proc.stderr


def test_bestrefs_keeps_its_own_v() -> None:
    """bestrefs -v still means 'show N/A answers'; the global -v before it means verbose."""
    from crds_async.cli import build_parser, verbosity_of

    args = build_parser().parse_args(["-v", "bestrefs", "-v", "x.fits"])
    assert args.verbose is True and verbosity_of(args, {}) == 1
    args = build_parser().parse_args(["bestrefs", "-v", "x.fits"])
    assert args.verbose is True and verbosity_of(args, {}) == 0
    args = build_parser().parse_args(["sync", "-v", "--contexts", "hst_0729.pmap"])
    assert verbosity_of(args, {}) == 1  # sync's own -v: log each retry, as before


def test_log_records_reach_stderr(tmp_path) -> None:
    """Logging is set up for every command: an INFO record of crds_async shows with -v."""
    script = ("import logging, sys\n"
              "from crds_async.cli import main, setup_logging, verbosity_of, build_parser\n"
              "setup_logging(verbosity_of(build_parser().parse_args(sys.argv[1:]), {}))\n"
              "logging.getLogger('crds_async.test').info('hello from crds_async')\n")
    quiet = subprocess.run([sys.executable, "-c", script, "list", "--version"], capture_output=True, text=True)
    loud = subprocess.run([sys.executable, "-c", script, "-v", "list", "--version"], capture_output=True, text=True)
    assert "hello from crds_async" not in quiet.stderr
    assert "hello from crds_async" in loud.stderr and loud.stdout == ""
