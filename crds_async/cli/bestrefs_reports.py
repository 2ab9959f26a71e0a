"""The ``--print-*`` reports of ``crds-batch bestrefs``, line for line those of ``crds bestrefs``.

The reference collects, per dataset, its *updates* ``(instrument, type, old, new)``:

- without a comparison, every type answered without an error (``old`` is ``None``);
- with ``--old-context`` or ``--compare-source-bestrefs``, every type whose normalized
  answer differs (``old`` from the old context, or from the dataset's recorded keywords);

and a *kill list*: datasets with a failed new answer, never "affected".  :class:`Reports`
keeps the same two and prints them as the reference does, after the batch:
``--print-new-references`` (stdout), ``--print-update-counts`` (stderr),
``--print-affected`` and ``--print-affected-details`` (stdout).

Dataset names are printed as given (the reference lower-cases the whole line, paths
included; for a path with an upper-case letter that names another file).
"""

from __future__ import annotations

import pprint
import sys
from collections.abc import Iterable, Mapping

from ..engine.results import DatasetResult
from ..sources import normalize_bestref

__all__ = ["Reports", "normalized"]


def normalized(answer: object, undefined_is_error: bool = False) -> tuple[bool, str]:
    """``(ok, NAME)`` as the reference compares an answer (``N/A`` forms folded, upper case)."""
    if isinstance(answer, (tuple, list)):
        answer = str(tuple(answer))
    return normalize_bestref("UNDEFINED" if answer is None else answer, undefined_is_error=undefined_is_error)


def _no_match(name: str) -> bool:
    return name in ("NOT FOUND NO MATCH FOUND.", "UNDEFINED", "NONE", "", "*")


class Reports:
    """Updates and failed datasets of a batch, as the reference's bestrefs collects them."""

    def __init__(self, *, undefined_matter: bool = False, skip_types: Iterable[str] = ()) -> None:
        self.undefined_matter = undefined_matter
        self.skip = frozenset(t.lower() for t in skip_types)
        #: dataset -> [(INSTRUMENT, type, old or None, new)]
        self.updates: dict[str, list[tuple[str, str, str | None, str]]] = {}
        self.killed: set[str] = set()

    def add(self, result: DatasetResult, old: Mapping[str, object] | None = None,
            old_checked: Iterable[str] | None = None) -> list[str]:
        """Record one dataset's updates; return the error lines the reference adds for it
        beyond the new answers' failures: ``No match found`` errors with
        ``--undefined-differences-matter``, and the old answers' failures (of the types in
        ``old_checked``, default all; ``old`` None: no comparison).
        """
        if result.answers is None:
            return []
        instrument = (result.instrument or "").upper()
        new_answers = result.answers
        checked = None if old_checked is None else set(old_checked)
        types = set(new_answers) | set(old or ())
        errors: list[str] = []
        updates = []
        killed = False
        for reftype in sorted(types):
            if reftype in self.skip:
                continue
            raw_new = new_answers.get(reftype, "UNDEFINED")
            new_ok, new = normalized(raw_new, self.undefined_matter)
            if not new_ok and _no_match(new):
                errors.append(f"{result.path}: {reftype}: New: No match found: {str(raw_new)!r}")
            if old is None:
                if new_ok:
                    updates.append((instrument, reftype, None, new))
                else:
                    killed = True
                continue
            raw_old = old.get(reftype, "UNDEFINED")
            old_ok, was = normalized(raw_old, self.undefined_matter)
            if not old_ok and (checked is None or reftype in checked):
                what = "No match found" if _no_match(was) else "Bestref FAILED"
                errors.append(f"{result.path}: {reftype}: Old: {what}: {str(raw_old)!r}")
            if not new_ok:
                killed = True
            elif new != was:
                updates.append((instrument, reftype, was, new))
        if updates:
            self.updates[result.path] = updates
        if killed:
            self.killed.add(result.path)
        return errors

    def affected(self) -> list[str]:
        """Products with an update and no failed new answer (first ``:`` part of the name), sorted."""
        return sorted({name.split(":")[0] for name, ups in self.updates.items()
                       if ups and name not in self.killed}, key=str.lower)

    # ------------------------------------------------------------------ printing

    def new_references_lines(self) -> list[str]:
        return [f"{name} " + " ".join(str(v).lower() for v in update)
                for name in sorted(self.updates, key=str.lower) for update in self.updates[name]]

    def affected_details_lines(self) -> list[str]:
        return [f"{name} {ups[0][0].lower()} {' '.join(sorted(u[1] for u in ups))}"
                for name, ups in sorted(self.updates.items(), key=lambda kv: kv[0].lower()) if ups]

    def update_counts_text(self) -> str:
        stats: dict[str, dict[str, int]] = {}
        for ups in self.updates.values():
            for instrument, reftype, _old, _new in ups:
                per = stats.setdefault(instrument, {})
                per[reftype] = per.get(reftype, 0) + 1
        return "Updated exposure counts:\n " + pprint.pformat(stats)

    def print_all(self, args, out=None, err=None) -> None:
        """The reports the switches ask for, in the reference's order."""
        out = out or sys.stdout
        err = err or sys.stderr
        if getattr(args, "print_new_references", False):
            for line in self.new_references_lines():
                out.write(line + "\n")
        if getattr(args, "print_update_counts", False):
            err.write(self.update_counts_text() + "\n")
        if getattr(args, "print_affected", False):
            products = self.affected()
            err.write(f"Affected products = {len(products)}\n")
            for name in products:
                out.write(name + "\n")
        if getattr(args, "print_affected_details", False):
            for line in self.affected_details_lines():
                out.write(line + "\n")
        out.flush()
