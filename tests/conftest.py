"""Shared fixtures: where the shared cache and corpus live, the reference's availability."""

from __future__ import annotations

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


def _tree_listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.is_dir() else set()


@pytest.fixture(autouse=True, scope="session")
def _shared_cache_stays_untouched():
    """The shared cache is read-only for tests (root ignores its mode bits): nothing may appear in it."""
    before = _tree_listing(CACHE)
    yield
    added = _tree_listing(CACHE) - before
    assert not added, f"tests wrote into the shared cache: {sorted(added)[:5]}"


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
