"""Differences between two reference files of one kind (``crds-batch diff REF_A REF_B``).

- **FITS**: astropy's ``FITSDiff`` (header keywords and data, HDU by HDU), then
  the row differences of the tables (:mod:`.rowdiff`), laid out as the
  reference's ``crds diff`` prints them.
- **ASDF, JSON, YAML**: the two trees are walked side by side and every
  difference is one line naming its path: a value changed, a key only in A or
  only in B, a list of another length, or ndarrays that differ by shape,
  datatype or contents.  ASDF trees are read raw (tags are not converted, and
  not compared, as ``asdftool diff`` does); ndarrays are loaded through asdf
  and compared by value, NaN equal to NaN, so a file is always the same as itself.
  JSON or YAML text that does not parse is compared line by line (a unified
  diff after one line saying why), as the reference compares YAML.

Exit status, as for mappings: 0 the same, 1 different, 2 error.
"""

from __future__ import annotations

import difflib
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CrdsError
from .kinds import kind_of

__all__ = ["ReferenceDiffError", "TreeDifference", "ReferenceDiff", "diff_references", "tree_differences"]

#: the largest JSON/YAML reference read into memory (real ones are kilobytes)
_MAX_TEXT = 64 * 1024 * 1024
_NDARRAY_TAG = "core/ndarray"


class ReferenceDiffError(CrdsError):
    """Two references cannot be compared: missing, unreadable, or of different kinds."""


@dataclass(frozen=True, slots=True)
class TreeDifference:
    """One difference between two trees.

    ``path`` holds dict keys (str) and list indices (int); ``action`` is
    ``changed``, ``removed`` (only in A), ``added`` (only in B), ``length`` (of a
    list: ``old`` and ``new`` are the lengths) or ``arrays`` (``old`` says how).
    """

    path: tuple[object, ...]
    action: str
    old: str | None = None
    new: str | None = None

    def where(self) -> str:
        """The path as text: ``meta.instrument.name``, ``dispx[0].coefficients``."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out or "(root)"

    def text(self) -> str:
        if self.action == "changed":
            return f"changed {self.where()}: {self.old} -> {self.new}"
        if self.action == "removed":
            return f"only in a: {self.where()}: {self.old}"
        if self.action == "added":
            return f"only in b: {self.where()}: {self.new}"
        if self.action == "arrays":
            return f"changed {self.where()}: {self.old}"
        return f"length of {self.where()}: {self.old} -> {self.new}"


@dataclass(slots=True)
class ReferenceDiff:
    """The outcome for one pair: its kind, whether they differ, and the text to print."""

    kind: str
    different: bool
    text: str
    differences: list[TreeDifference]


def _short(value: object, limit: int = 120) -> str:
    if isinstance(value, Mapping):
        text = "{" + ", ".join(sorted(map(str, value.keys()))) + "}"
    elif isinstance(value, list):
        text = f"[{len(value)} items]"
    else:
        text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _same_scalar(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # true is not 1
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _same_arrays(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # strings, records: NaN has no meaning there
        return bool(np.array_equal(a, b))


def _is_ndarray(node: object) -> bool:
    tag = getattr(node, "_tag", None)
    return isinstance(tag, str) and _NDARRAY_TAG in tag


def tree_differences(tree_a: object, tree_b: object, load_a=None, load_b=None) -> list[TreeDifference]:
    """Every difference between two trees of dicts, lists and scalars, keys in sorted order.

    ``load_a``/``load_b`` turn a raw ASDF ndarray node of that file into an array;
    without them (JSON, YAML) no node is an ndarray.
    """
    out: list[TreeDifference] = []
    seen: set[tuple[int, int]] = set()

    def walk(a: object, b: object, path: tuple) -> None:
        if (id(a), id(b)) in seen and isinstance(a, (Mapping, list)):
            return  # shared (anchored) subtrees are compared once
        seen.add((id(a), id(b)))
        if load_a is not None and _is_ndarray(a) and _is_ndarray(b):
            keys = (set(a) | set(b)) - {"source", "data"}
            walk_keys({k: a[k] for k in a if k in keys}, {k: b[k] for k in b if k in keys}, path)
            differ = [f for f in ("shape", "datatype") if a.get(f) != b.get(f)]
            if not _same_arrays(load_a(a), load_b(b)):
                differ.append("contents")
            if differ:
                out.append(TreeDifference(path, "arrays", "ndarrays differ by " + " and ".join(differ)))
        elif isinstance(a, Mapping) and isinstance(b, Mapping):
            walk_keys(a, b, path)
        elif isinstance(a, list) and isinstance(b, list):
            for index, (x, y) in enumerate(zip(a, b)):
                walk(x, y, path + (index,))
            if len(a) != len(b):
                out.append(TreeDifference(path, "length", str(len(a)), str(len(b))))
        elif isinstance(a, (Mapping, list)) or isinstance(b, (Mapping, list)) or not _same_scalar(a, b):
            out.append(TreeDifference(path, "changed", _short(a), _short(b)))

    def walk_keys(a: Mapping, b: Mapping, path: tuple) -> None:
        for key in sorted(set(a) & set(b), key=str):
            walk(a[key], b[key], path + (str(key),))
        for key in sorted(set(a) - set(b), key=str):
            out.append(TreeDifference(path + (str(key),), "removed", old=_short(a[key])))
        for key in sorted(set(b) - set(a), key=str):
            out.append(TreeDifference(path + (str(key),), "added", new=_short(b[key])))

    walk(tree_a, tree_b, ())
    return out


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ReferenceDiffError(f"{path}: no such file")
    if not path.is_file():
        raise ReferenceDiffError(f"{path}: not a regular file")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _read_text(path: Path) -> str:
    if path.stat().st_size > _MAX_TEXT:
        raise ReferenceDiffError(f"{path}: larger than {_MAX_TEXT // (1024 * 1024)} MB")
    return path.read_text(encoding="utf-8")


def _load_json(path: Path) -> object:
    try:
        return json.loads(_read_text(path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReferenceDiffError(f"{path}: not valid JSON: {_first_line(exc)}") from None


def _yaml_loader():
    import yaml

    class _AnyTagLoader(yaml.SafeLoader):
        """Safe loading, with nodes of unknown tags read as plain mappings, lists or strings."""

    def _untagged(loader, _suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    _AnyTagLoader.add_multi_constructor("", _untagged)
    return _AnyTagLoader


def _load_yaml(path: Path) -> object:
    import yaml

    try:
        return list(yaml.load_all(_read_text(path), Loader=_yaml_loader()))  # noqa: S506 - safe loader subclass
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ReferenceDiffError(f"{path}: not valid YAML: {_first_line(exc)}") from None


def _open_asdf(path: Path):
    import asdf

    try:
        return asdf.open(path, _force_raw_types=True, memmap=False, lazy_load=True)
    except Exception as exc:  # noqa: BLE001 - asdf raises many kinds; each is one line naming the file
        raise ReferenceDiffError(f"{path}: not a readable ASDF file: {_first_line(exc)}") from None


def _array_loader(asdf_file, path: Path):
    """A function reading one raw ndarray node of ``asdf_file`` into a numpy array."""
    from asdf.extension._serialization_context import BlockAccess

    converter = asdf_file.extension_manager.get_converter_for_type(np.ndarray)

    def load(node):
        if not hasattr(node, "_tag"):
            return node.get("data")
        try:
            context = asdf_file._create_serialization_context(BlockAccess.READ)
            return np.asarray(converter.from_yaml_tree(node, node._tag, context))
        except Exception as exc:  # noqa: BLE001
            raise ReferenceDiffError(f"{path}: an array cannot be read: {_first_line(exc)}") from None

    return load


def _text_diff(kind: str, path_a: Path, path_b: Path, why: str) -> ReferenceDiff:
    """Line differences, for JSON or YAML text that does not parse (the reference diffs YAML as text)."""
    lines_a = _read_text(path_a).splitlines()
    lines_b = _read_text(path_b).splitlines()
    if lines_a == lines_b:
        return ReferenceDiff(kind, False, "", [])
    body = "".join(line.rstrip("\n") + "\n"
                   for line in difflib.unified_diff(lines_a, lines_b, str(path_a), str(path_b), lineterm=""))
    return ReferenceDiff(kind, True, f"{why}: comparing lines\n{body}", [])


def _tree_diff(kind: str, path_a: Path, path_b: Path) -> ReferenceDiff:
    if kind == "asdf":
        with _open_asdf(path_a) as file_a, _open_asdf(path_b) as file_b:
            differences = tree_differences(file_a.tree, file_b.tree,
                                           _array_loader(file_a, path_a), _array_loader(file_b, path_b))
    else:
        load = _load_json if kind == "json" else _load_yaml
        try:
            trees = load(path_a), load(path_b)
        except ReferenceDiffError as exc:
            return _text_diff(kind, path_a, path_b, str(exc))
        differences = tree_differences(*trees)
    text = "".join(d.text() + "\n" for d in differences)
    return ReferenceDiff(kind, bool(differences), text, differences)


def _fits_diff(path_a: Path, path_b: Path, name_a: str, name_b: str) -> ReferenceDiff:
    from astropy.io.fits import FITSDiff

    from .rowdiff import RowDiffError, row_diff

    try:
        fits_diff = FITSDiff(name_a, name_b)
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise ReferenceDiffError(f"{name_a} vs {name_b}: cannot be compared as FITS: {_first_line(exc)}") from None
    if fits_diff.identical:
        return ReferenceDiff("fits", False, "", [])
    report = io.StringIO()
    fits_diff.report(fileobj=report)
    try:
        rows = row_diff(path_a, path_b).text()
    except RowDiffError as exc:
        rows = f"rowdiff: {exc}"
    return ReferenceDiff("fits", True, report.getvalue() + "\n " + rows + "\n", [])


def diff_references(path_a: str | Path, path_b: str | Path) -> ReferenceDiff:
    """Compare two reference files of the same kind.

    Parameters
    ----------
    path_a, path_b : str or Path
        The old and the new reference (FITS, ASDF, JSON or YAML).

    Returns
    -------
    ReferenceDiff
        ``different`` and the text to print (empty when the files are the same).

    Raises
    ------
    ReferenceDiffError
        A file is missing or unreadable, of an unknown kind, or the two are of different kinds.
    """
    name_a, name_b = str(path_a), str(path_b)
    path_a, path_b = Path(path_a), Path(path_b)
    _check_file(path_a)
    _check_file(path_b)
    kind_a, kind_b = kind_of(path_a), kind_of(path_b)
    if kind_a is None:
        raise ReferenceDiffError(f"{path_a}: not a reference file (FITS, ASDF, JSON or YAML)")
    if kind_b is None:
        raise ReferenceDiffError(f"{path_b}: not a reference file (FITS, ASDF, JSON or YAML)")
    if kind_a != kind_b:
        raise ReferenceDiffError(f"{path_a} is {kind_a.upper()} but {path_b} is {kind_b.upper()}: "
                                 "only references of one kind can be compared")
    try:
        if kind_a == "fits":
            return _fits_diff(path_a, path_b, name_a, name_b)
        return _tree_diff(kind_a, path_a, path_b)
    except OSError as exc:
        raise ReferenceDiffError(f"{name_a} vs {name_b}: {_first_line(exc)}") from None
