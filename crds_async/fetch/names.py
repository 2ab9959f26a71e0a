"""Untrusted file names: every name that comes from a server, a rules file or a user.

A name is accepted only when it is one plain file name (no directory part, no
``..``, no NUL or control characters, no leading dot or dash) with a suffix we
expect for its kind.  Anything else raises :class:`~crds_async.errors.UnsafeNameError`,
naming the offending value and where it came from, before it can reach a path.
"""

from __future__ import annotations

import re

from ..errors import UnsafeNameError
from ..rules.model import plain_name_problem

__all__ = [
    "MAPPING_SUFFIXES",
    "REFERENCE_SUFFIX_RE",
    "file_kind",
    "check_name",
    "check_names",
    "geis_conjugate",
]

MAPPING_SUFFIXES = (".pmap", ".imap", ".rmap")
#: Reference data formats CRDS serves: FITS, ASDF, JSON, YAML and GEIS header/data pairs.
REFERENCE_SUFFIX_RE = re.compile(r"\.(fits|asdf|json|yaml|r[0-9][hd])$")
#: Files of the config branch the protocol serves by name.
CONFIG_NAMES = frozenset({"server_config", "bad_files.txt", "ref_cache_subdir_mode"})


def file_kind(name: str) -> str:
    """``mappings``, ``references`` or ``config`` from a (checked) file name's suffix."""
    if name.endswith(MAPPING_SUFFIXES):
        return "mappings"
    if REFERENCE_SUFFIX_RE.search(name):
        return "references"
    if name in CONFIG_NAMES:
        return "config"
    raise UnsafeNameError(f"{name!r}: not a mapping, reference or config file name")


def check_name(name: object, *, where: str = "server", kinds: tuple[str, ...] = ("mappings", "references")) -> str:
    """Return ``name`` if it is a plain file name of one of ``kinds``, else raise.

    Parameters
    ----------
    name : object
        The untrusted value.
    where : str
        Where it came from, for the message (``"server"``, a file path, ``"--files"``).
    kinds : tuple of str
        Accepted kinds: ``mappings``, ``references``, ``config``.

    Raises
    ------
    UnsafeNameError
        One line naming the value, its source and the problem.
    """
    if not isinstance(name, str):
        raise UnsafeNameError(f"{where}: file name {name!r} is not a string")
    problem = plain_name_problem(name)  # the one name check, shared with the rules' builder
    if problem is None:
        try:
            kind = file_kind(name)
        except UnsafeNameError:
            problem = "has an unexpected suffix"
        else:
            if kind not in kinds:
                problem = f"is a {kind[:-1]} name where a {' or '.join(k[:-1] for k in kinds)} was expected"
    if problem is not None:
        raise UnsafeNameError(f"{where}: refusing file name {name!r}: it {problem}")
    return name


def check_names(names, *, where: str = "server", kinds: tuple[str, ...] = ("mappings", "references")) -> list[str]:
    """:func:`check_name` on each of ``names``; raises on the first bad one."""
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise UnsafeNameError(f"{where}: expected a list of file names, got {type(names).__name__}")
    return [check_name(n, where=where, kinds=kinds) for n in names]


def geis_conjugate(name: str) -> str | None:
    """The GEIS data file paired with header file ``name`` (``x.r3h`` -> ``x.r3d``), else None."""
    if re.search(r"\.r[0-9]h$", name):
        return name[:-1] + "d"
    return None
