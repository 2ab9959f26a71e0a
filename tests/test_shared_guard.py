"""The session guard on ../shared/cache sees content, mode and deletions, not only new files."""

from __future__ import annotations

from tests.conftest import state_changes, tree_state


def test_the_guard_sees_a_change_of_content_mode_or_presence(tmp_path):
    root = tmp_path / "cache"
    (root / "mappings").mkdir(parents=True)
    rmap = root / "mappings" / "x.rmap"
    rmap.write_text("header = {}\n")
    (root / "mappings" / "gone.rmap").write_text("old\n")
    before = tree_state(root)
    assert state_changes(before, tree_state(root)) == []

    rmap.write_text("header = {}\n".replace("{}", "{1}"))      # same listing, other content
    (root / "mappings" / "gone.rmap").unlink()                  # a deletion
    (root / "mappings").chmod(0o555)                            # a mode
    try:
        changes = state_changes(before, tree_state(root))
    finally:
        (root / "mappings").chmod(0o755)
    assert any(c.startswith("changed mappings/x.rmap") for c in changes), changes
    assert "removed mappings/gone.rmap" in changes
    assert any(c.startswith("changed mappings:") for c in changes), changes


def test_the_session_sees_the_shared_cache_read_only():
    import os

    from crds_async.config import config_from_env

    assert os.environ.get("CRDS_READONLY_CACHE") == "1"
    assert config_from_env().readonly_cache
