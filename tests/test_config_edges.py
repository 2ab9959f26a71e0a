"""Configuration edges: non-finite and out-of-range CRDS_* numbers, a CRDS_PATH that is a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crds_async.config import config_from_env
from crds_async.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, raw, accepted", [
    # inf would sleep forever between retries
    ("CRDS_CLIENT_RETRY_DELAY_SECONDS", "inf", "from 0 to 3600"),
    ("CRDS_CLIENT_RETRY_DELAY_SECONDS", "1e400", "from 0 to 3600"),  # float() makes this inf
    ("CRDS_CLIENT_RETRY_DELAY_SECONDS", "7200", "from 0 to 3600"),
    ("CRDS_CLIENT_RETRY_DELAY_SECONDS", "-inf", "from 0 to 3600"),
    # inf overflowed asyncio's timer; 0 silently disabled the timeout
    ("CRDS_CLIENT_TIMEOUT_SECONDS", "inf", "more than 0 to 86400"),
    ("CRDS_CLIENT_TIMEOUT_SECONDS", "0", "more than 0 to 86400"),
    ("CRDS_CLIENT_TIMEOUT_SECONDS", "-5", "more than 0 to 86400"),
    ("CRDS_CLIENT_TIMEOUT_SECONDS", "NaN", "more than 0 to 86400"),
    ("CRDS_CLIENT_TIMEOUT_SECONDS", "1e9", "more than 0 to 86400"),
    ("CRDS_CLIENT_RETRY_COUNT", "1000000000", "from 0 to 100"),
    ("CRDS_CLIENT_RETRY_COUNT", "-1", "from 0 to 100"),
    ("CRDS_VERBOSITY", "1000", "from -3 to 100"),
    ("CRDS_VERBOSITY", "-50", "from -3 to 100"),
])
def test_numbers_out_of_range_are_one_line_naming_variable_and_range(name, raw, accepted):
    with pytest.raises(ConfigError) as info:
        config_from_env({name: raw})
    message = str(info.value)
    assert message.startswith(f"{name}={raw!r}") and accepted in message and "\n" not in message


@pytest.mark.parametrize("name, raw, field, value", [
    ("CRDS_CLIENT_RETRY_DELAY_SECONDS", "3600", "retry_delay_seconds", 3600.0),
    ("CRDS_CLIENT_RETRY_DELAY_SECONDS", "0", "retry_delay_seconds", 0.0),
    ("CRDS_CLIENT_TIMEOUT_SECONDS", "0.2", "client_timeout_seconds", 0.2),
    ("CRDS_CLIENT_TIMEOUT_SECONDS", "86400", "client_timeout_seconds", 86400.0),
    ("CRDS_CLIENT_RETRY_COUNT", "100", "retry_count", 100),
    ("CRDS_VERBOSITY", "-3", "verbosity", -3),
    ("CRDS_VERBOSITY", "100", "verbosity", 100),
    ("CRDS_VERBOSITY", "", "verbosity", 0),
])
def test_range_ends_are_accepted(name, raw, field, value):
    assert getattr(config_from_env({name: raw}), field) == value


def test_crds_path_naming_a_file_is_refused(tmp_path):
    afile = tmp_path / "cache"
    afile.write_text("not a directory")
    with pytest.raises(ConfigError, match=r"^CRDS_PATH='.*cache' is not a directory"):
        config_from_env({"CRDS_PATH": str(afile)})
    with pytest.raises(ConfigError, match=r"CRDS_REFPATH_SINGLE='.*' is not a directory \(.*cache is a file\)"):
        config_from_env({"CRDS_REFPATH_SINGLE": str(afile / "refs")})


def test_crds_path_missing_or_a_directory_is_fine(tmp_path):
    assert config_from_env({"CRDS_PATH": str(tmp_path)}).crds_path == tmp_path
    missing = tmp_path / "not" / "yet"
    assert config_from_env({"CRDS_PATH": str(missing)}).mapping_dir("hst") == missing / "mappings" / "hst"


def test_sync_with_crds_path_a_file_exits_2_with_one_line(tmp_path):
    afile = tmp_path / "cache"
    afile.write_text("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(afile), CRDS_SERVER_URL="http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, "-m", "crds_async", "sync", "--contexts", "hst_0729.pmap"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CRDS_PATH=" in lines[0] and "is not a directory" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and afile.read_text() == "x"


def test_sync_with_infinite_timeout_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(tmp_path / "c"), CRDS_SERVER_URL="http://127.0.0.1:9",
               CRDS_CLIENT_TIMEOUT_SECONDS="inf")
    proc = subprocess.run([sys.executable, "-m", "crds_async", "sync", "--contexts", "hst_0729.pmap"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CRDS_CLIENT_TIMEOUT_SECONDS='inf' is out of range" in lines[0], proc.stderr
