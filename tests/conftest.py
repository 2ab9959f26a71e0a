"""Shared fixtures: where the shared cache and corpus live, the reference's availability."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRDS_ASYNC_SHARED", ROOT.parent / "shared")).resolve()
CACHE = SHARED / "cache"
CORPUS = SHARED / "corpus"

#: True when the reference implementation (crds==14.0.3) is importable.
HAVE_REFERENCE = importlib.util.find_spec("crds") is not None

needs_reference = pytest.mark.skipif(not HAVE_REFERENCE, reason="reference crds==14.0.3 not installed")


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    """Compiled contexts and other per-user caches go to a temp dir, not ~/.cache."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(autouse=True, scope="session")
def _reference_memo(tmp_path_factory):
    """One memo of the reference's command runs for the session (tests/reference_runner.run_once):
    under the session's temp root, which pytest-xdist's workers share."""
    from tests import reference_runner

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # each worker's basetemp is a child of the session's
    previous, reference_runner.MEMO_DIR = reference_runner.MEMO_DIR, root / "reference-memo"
    yield
    reference_runner.MEMO_DIR = previous


def tree_state(root: Path) -> dict[str, tuple]:
    """``{relative path: (kind, mode, size, sha1)}`` of everything under ``root`` (links not followed)."""
    state: dict[str, tuple] = {}
    if not root.is_dir():
        return state
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            state[rel] = ("link", info.st_mode, os.readlink(path), "")
        elif path.is_dir():
            state[rel] = ("dir", info.st_mode, 0, "")
        else:
            state[rel] = ("file", info.st_mode, info.st_size, hashlib.sha1(path.read_bytes()).hexdigest())
    return state


def state_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """One line per path added, removed or changed (content, size or mode) between two states."""
    lines = [f"added {p}" for p in sorted(set(after) - set(before))]
    lines += [f"removed {p}" for p in sorted(set(before) - set(after))]
    lines += [f"changed {p}: {before[p]} -> {after[p]}" for p in sorted(set(before) & set(after))
              if before[p] != after[p]]
    return lines


@pytest.fixture(autouse=True, scope="session")
def _shared_cache_stays_untouched():
    """../shared (the cache, the corpus, the reference files) is read-only for tests (root
    ignores its mode bits): after the session every file and directory must be as it was:
    same content (sha1), size and mode, nothing added or removed."""
    roots = {"cache": CACHE, "corpus": CORPUS, "refdata": SHARED / "refdata"}
    before = {name: tree_state(root) for name, root in roots.items()}
    yield
    changes = [f"{name}/{line}" for name, root in roots.items()
               for line in state_changes(before[name], tree_state(root))]
    assert not changes, f"tests changed ../shared: {changes[:5]}"


@pytest.fixture(autouse=True, scope="session")
def _shared_cache_is_read_only_for_the_session():
    """Code under test that reads CRDS_READONLY_CACHE from the environment sees the shared
    cache as read-only; tests that build their own environment for a writable copy set it."""
    previous = os.environ.get("CRDS_READONLY_CACHE")
    os.environ["CRDS_READONLY_CACHE"] = "1"
    yield
    if previous is None:
        os.environ.pop("CRDS_READONLY_CACHE", None)
    else:
        os.environ["CRDS_READONLY_CACHE"] = previous


@pytest.fixture(scope="session")
def shared_mappings_copy(tmp_path_factory) -> Path:
    """One private copy of the shared cache's mappings per session (``<copy>/<obs>/*.?map``).

    Writable caches in tests link to this copy instead of into ../shared: whatever a test
    (or the code under test) does to a linked mapping cannot reach the shared cache.
    """
    dest = tmp_path_factory.mktemp("shared-mappings") / "mappings"
    shutil.copytree(CACHE / "mappings", dest)
    return dest


def pytest_collection_modifyitems(config, items):
    if not CACHE.is_dir():
        skip = pytest.mark.skip(reason=f"shared cache not found at {CACHE}")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_cache() -> Path:
    """The read-only shared CRDS cache."""
    return CACHE


@pytest.fixture(scope="session")
def corpus() -> Path:
    return CORPUS


@pytest.fixture(scope="session")
def expected_hst() -> dict:
    return json.loads((CORPUS / "expected_hst_0729.json").read_text())


@pytest.fixture(scope="session")
def expected_jwst() -> dict:
    return json.loads((CORPUS / "expected_jwst_0541.json").read_text())


@pytest.fixture
def cache_copy(tmp_path: Path) -> Path:
    """A writable copy of the shared cache's config and mappings (references empty).

    Mappings are copied, not linked, so tests may modify them freely.
    """
    dest = tmp_path / "cache"
    shutil.copytree(CACHE / "config", dest / "config")
    shutil.copytree(CACHE / "mappings", dest / "mappings")
    (dest / "references").mkdir()
    return dest
