"""The package's layering, as docs/architecture.md draws it, held by reading every module's imports.

The table in docs/architecture.md (between the ``layering:begin`` / ``layering:end`` marks)
lists, for each layer, the layers it may import.  A module's layer is its first package
below ``crds_async`` (``rules``, ``fetch``, ...) or its own name (``config``, ``api``).
Imports inside functions count as much as those at the top: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "crds_async"
DOC = ROOT / "docs" / "architecture.md"


def allowed_table(text: str) -> dict[str, set[str]]:
    """``{layer: layers it may import}`` from the marked Markdown table."""
    match = re.search(r"<!-- layering:begin -->(.*?)<!-- layering:end -->", text, re.S)
    assert match, f"{DOC}: no layering table between the layering:begin/end marks"
    table: dict[str, set[str]] = {}
    for line in match.group(1).splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0] or set(cells[0]) <= {"-", ":"} or cells[0] == "layer":
            continue
        names = {n.strip().strip("`") for n in cells[1].split(",")} - {"", "nothing", "(nothing)"}
        table[cells[0]] = names
    return table


def layer_of(module: str) -> str:
    """``crds_async.rules.model`` -> ``rules``; ``crds_async.config`` -> ``config``; the root -> ``api``."""
    parts = module.split(".")
    if parts == ["crds_async"] or parts[1] in ("__init__", "api", "references_api"):
        return "api"
    if parts[1] == "__main__":
        return "main"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every crds_async module ``path`` imports (``(line, module)``), relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("crds_async")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("crds_async"):
                continue
            if target == "crds_async" or not node.module:  # from .. import x: x may be a module
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(table: dict[str, set[str]], package: Path = PACKAGE) -> list[str]:
    """One line per import that the table does not allow."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        source = layer_of(module_name(path))
        if source not in table:
            bad.append(f"{path.relative_to(ROOT)}: layer {source!r} is not in the table")
            continue
        for line, target in imported_modules(path):
            layer = layer_of(target)
            if layer != source and layer not in table[source]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {source} -> {layer} ({target})")
    return bad


def test_every_import_follows_the_layering_table():
    assert violations(allowed_table(DOC.read_text(encoding="utf-8"))) == []


def test_a_bad_import_is_caught(tmp_path):
    """The test of the test: a copy of the package with rules importing instruments fails it,
    and so does a fetch module importing the facade lazily, inside a function."""
    import shutil

    copy = tmp_path / "crds_async"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    table = allowed_table(DOC.read_text(encoding="utf-8"))
    global ROOT
    saved = ROOT
    try:
        ROOT = tmp_path
        assert violations(table, copy) == []
        model = copy / "rules" / "model.py"
        model.write_text(model.read_text() + "\nfrom ..instruments import personality\n")
        client = copy / "fetch" / "client.py"
        client.write_text(client.read_text() + "\n\ndef _late():\n    from ..api import get_evaluator\n")
        found = violations(table, copy)
    finally:
        ROOT = saved
    assert any("rules/model.py" in v and "rules -> instruments" in v for v in found), found
    assert any("fetch/client.py" in v and "fetch -> api" in v for v in found), found
    assert len(found) == 2, found


@pytest.mark.parametrize("layer", ["rules"])
def test_the_rules_core_imports_nothing_but_errors(layer):
    """Stated on its own, because it is the point: the rules are pure (errors, and the bounded
    memo, which is plain code with no imports)."""
    assert allowed_table(DOC.read_text(encoding="utf-8"))[layer] == {"errors", "memo"}
