"""Every name a module promises in __all__ exists (the public surface cannot drift silently)."""

from __future__ import annotations

import importlib
import pkgutil

import crds_async


def test_every_module_exports_what_it_declares():
    checked = 0
    for info in pkgutil.walk_packages(crds_async.__path__, "crds_async."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{info.name}.__all__ names {name!r}, which it lacks"
            checked += 1
    assert checked > 100


def test_the_top_level_api():
    for name in ("getrecommendations", "getreferences", "agetreferences", "load_context", "Evaluator",
                 "config_from_env", "Config", "CrdsError"):
        assert name in crds_async.__all__ and callable(getattr(crds_async, name))
