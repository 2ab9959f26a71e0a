"""Run the reference client (crds 14.0.3) on many headers in a clean subprocess.

Tests send ``{"context", "observatory", "requests": [[header, reftypes], ...]}`` as
JSON on stdin and get one answer per request back: the getrecommendations dict
(fast=True; tuples printed element by element) or ``["raised", message]``.  A
fresh process per batch keeps the reference's process-wide caches and the
environment variables it writes back from leaking between tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

SERVERS = {"hst": "https://hst-crds.stsci.edu", "jwst": "https://jwst-crds.stsci.edu",
           "roman": "https://roman-crds.stsci.edu"}


def _printable(answer: object) -> object:
    if isinstance(answer, tuple):
        return [a if isinstance(a, str) else repr(a) for a in answer]
    return answer


def reference_answers(cache: Path, context: str, observatory: str, requests: list, extra_env=None) -> list:
    """Answers of the reference for each (header, reftypes) request."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(cache), CRDS_MODE="local", CRDS_SERVER_URL=SERVERS[observatory],
               CRDS_READONLY_CACHE="1", **(extra_env or {}))
    payload = json.dumps({"context": context, "observatory": observatory, "requests": requests})
    proc = subprocess.run([sys.executable, "-m", "tests.reference_runner"], input=payload, env=env,
                          capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise RuntimeError(f"reference runner failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


#: Where :func:`run_once` keeps the reference's runs for this test session (set by
#: tests/conftest.py; shared by pytest-xdist workers); None: every call runs.
MEMO_DIR: Path | None = None


def run_once(argv: list[str], env: dict, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, capture_output=True, text=True, ...)`` of a reference command,
    run once per test session: a later call with the same command line, CRDS_* environment and
    working directory gets the first call's stdout, stderr and exit status (from a small
    on-disk memo under the session's temp dir; a lock per command makes a parallel worker wait
    for the run in flight instead of running it again).

    Only for commands that read and print (no --update-bestrefs, --save-pickle, ...): their
    output is all a test sees of them.  The inputs they name must not change during the
    session (the read-only shared corpus, or a module's own temp copies).
    """
    if MEMO_DIR is None:
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    # the reference reads its CRDS_* variables; the rest (PYTEST_CURRENT_TEST, a worker's own
    # XDG_CACHE_HOME, ...) names the caller, not the command
    settings = sorted((k, v) for k, v in env.items() if k.startswith("CRDS_"))
    key = hashlib.sha256(json.dumps([argv, settings, str(cwd or os.getcwd())]).encode()).hexdigest()[:32]
    MEMO_DIR.mkdir(parents=True, exist_ok=True)
    record = MEMO_DIR / f"{key}.json"
    with open(MEMO_DIR / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
            tmp = record.with_suffix(".part")
            tmp.write_text(json.dumps({"argv": argv, "returncode": proc.returncode, "stdout": proc.stdout,
                                       "stderr": proc.stderr}))
            tmp.replace(record)
        saved = json.loads(record.read_text())
    return subprocess.CompletedProcess(saved["argv"], saved["returncode"], saved["stdout"], saved["stderr"])


def main() -> None:
    import crds
    from crds.core import log

    log.set_verbose(False)
    log.warning = lambda *a, **k: None  # the reference warns per header about type screening
    job = json.loads(sys.stdin.read())
    out = []
    for header, reftypes in job["requests"]:
        try:
            answer = crds.getrecommendations(header, reftypes=reftypes, context=job["context"],
                                             observatory=job["observatory"], fast=True)
            out.append({k: _printable(v) for k, v in answer.items()})
        except Exception as exc:  # noqa: BLE001 - every failure is an answer to compare
            out.append(["raised", str(exc)])
    sys.stdout.write("\n" + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
