"""Running ``crds-batch bestrefs`` for the sink tests (a subprocess, the shared cache read-only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import CACHE


def crds_batch() -> list[str]:
    script = Path(sys.executable).with_name("crds-batch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "crds_async"]


def run_cli(*args: str, stdout=subprocess.PIPE, text: bool = True, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(CACHE), CRDS_READONLY_CACHE="1")
    return subprocess.run(crds_batch() + [os.fsdecode(a) for a in args], stdout=stdout,
                          stderr=subprocess.PIPE, text=text, env=env, timeout=300, cwd=cwd)
