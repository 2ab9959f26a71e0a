"""Helpers for fetch and sync tests: served caches with generated references, server processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from crds_async.config import Config

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def make_served_cache(dest: Path, shared_cache: Path, *, observatories: Iterable[str] = ("hst",),
                      mappings: bool = True) -> Path:
    """A served cache: a writable copy of the shared config, and the shared mappings linked
    from a private copy made once per session (copying 2,000+ files per test costs seconds;
    linking into ../shared would let a faulty write reach it).
    """
    for obs in observatories:
        shutil.copytree(shared_cache / "config" / obs, dest / "config" / obs)
        if mappings:
            (dest / "mappings").mkdir(parents=True, exist_ok=True)
            # a private copy (made once per session), never ../shared itself
            (dest / "mappings" / obs).symlink_to(private_mappings() / obs)
        else:
            (dest / "mappings" / obs).mkdir(parents=True)
        (dest / "references" / obs).mkdir(parents=True)
    # copytree keeps the shared cache's read-only mode bits; a served copy is writable.
    for directory in [dest, *(p for p in (dest / "config").rglob("*") if p.is_dir()), dest / "config"]:
        directory.chmod(0o755)
    return dest


def fake_reference_bytes(name: str, size: int) -> bytes:
    """Deterministic content for a generated reference ``name`` of ``size`` bytes."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def add_references(cache: Path, observatory: str, names: Iterable[str], size: int | None = None) -> dict[str, bytes]:
    """Write generated references (flat) into a served cache; returns ``{name: content}``."""
    refdir = cache / "references" / observatory
    refdir.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate(names):
        content = fake_reference_bytes(name, size if size is not None else 200 + (i * 37) % 3000)
        (refdir / name).write_bytes(content)
        written[name] = content
    return written


def client_config(dest: Path, server_url: str, **changes: object) -> Config:
    """Config for a client cache at ``dest`` talking to ``server_url``."""
    cfg = Config(cache_roots=(("CRDS_PATH", str(dest)),), server_url=server_url, mode="local")
    return cfg.replace(**changes) if changes else cfg


def final_files(root: Path) -> dict[str, Path]:
    """Every visible (non-temp, non-lock) regular file under ``root`` by name."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.name.startswith(".") \
                and not path.name.endswith(".lock"):
            found[path.name] = path
    return found


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@contextlib.contextmanager
def server_process(cache: Path, *args: str, env: dict | None = None) -> Iterator[str]:
    """Run ``crds-batch serve --port 0`` on ``cache`` in a subprocess; yields its URL."""
    cmd = [PYTHON, "-m", "crds_async", "serve", "--cache", str(cache), "--port", "0", *args]
    # stderr to a file: a pipe nobody reads could fill up and block the server.
    errors = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True,
                            env=env or dict(os.environ), cwd=ROOT)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        if not match:
            proc.kill()
            errors.seek(0)
            raise RuntimeError(f"server did not start: {line!r} {errors.read()[-2000:]}")
        yield match.group(1)
    finally:
        stop_server(proc)
        errors.close()


def stop_server(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a ``crds-batch serve`` process: SIGTERM (SIGINT would be ignored by a server whose
    tests or benchmark were started in the background, ``cmd &``), then SIGKILL after
    ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def sync_env(dest: Path, server_url: str, **extra: str) -> dict[str, str]:
    """Environment for a ``crds-batch sync`` (or reference ``crds sync``) subprocess into ``dest``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(CRDS_PATH=str(dest), CRDS_SERVER_URL=server_url, CRDS_MODE="local")
    env.update(extra)
    return env


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


_PRIVATE_MAPPINGS: list[Path] = []


def private_mappings() -> Path:
    """A private copy of the shared cache's mappings, made on first use (one per test process)."""
    if not _PRIVATE_MAPPINGS:
        import atexit

        from tests.conftest import CACHE

        root = Path(tempfile.mkdtemp(prefix="crds-async-mappings-")) / "mappings"
        atexit.register(shutil.rmtree, root.parent, True)
        shutil.copytree(CACHE / "mappings", root)
        _PRIVATE_MAPPINGS.append(root)
    return _PRIVATE_MAPPINGS[0]
