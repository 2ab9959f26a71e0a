"""The ``--print-*`` reports of ``crds-batch bestrefs``, line for line those of ``crds bestrefs``.

The reference collects, per dataset, its *updates* ``(instrument, type, old, new)``:

- without a comparison, every type answered without an error (``old`` is ``None``);
- with ``--old-context`` or ``--compare-source-bestrefs``, every type whose normalized
  answer differs (``old`` from the old context, or from the dataset's recorded keywords);

and a *kill list*: datasets with a failed new answer, never "affected".  :class:`Reports`
keeps the same two and prints them as the reference does, after the batch:
``--print-new-references`` (stdout), ``--print-update-counts`` (stderr),
``--print-affected`` and ``--print-affected-details`` (stdout).

Archive dataset ids (dumps, the server's datasets) are printed lower-cased, as the reference
prints every name.  File paths are printed as given: the reference lower-cases them too, which
for a path with an upper-case letter names another file.
"""

from __future__ import annotations

import pprint
import sys
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ..engine.results import DatasetResult
from ..memo import BoundedMemo
from ..sources import normalize_bestref

__all__ = ["Reports", "Recorded", "normalized"]


def normalized(answer: object, undefined_is_error: bool = False) -> tuple[bool, str]:
    """``(ok, NAME)`` as the reference compares an answer (``N/A`` forms folded, upper case)."""
    if isinstance(answer, (tuple, list)):
        answer = str(tuple(answer))
    return normalize_bestref("UNDEFINED" if answer is None else answer, undefined_is_error=undefined_is_error)


def _no_match(name: str) -> bool:
    return name in ("NOT FOUND NO MATCH FOUND.", "UNDEFINED", "NONE", "", "*")


class Recorded(NamedTuple):
    """What :meth:`Reports.add` recorded of one dataset."""

    errors: list[str]   # error lines beyond the new answers' failures
    updated: bool       # some type's answer changed
    killed: bool        # some new answer failed: never "affected"


class Reports:
    """Updates and failed datasets of a batch, as the reference's bestrefs collects them.

    A campaign of a million datasets must not hold a million update lists: each
    dataset's updates are kept only when a report prints them (``keep_updates``:
    ``--print-new-references``, ``--print-affected-details``); the affected products
    and the update counts are kept as they come.
    """

    #: distinct answer sets a batch compares (a campaign's datasets share few)
    _MEMO_LIMIT = 1 << 16

    def __init__(self, *, undefined_matter: bool = False, skip_types: Iterable[str] = (),
                 keep_updates: bool = True, lower_names: bool = False) -> None:
        self.undefined_matter = undefined_matter
        #: print names lower-cased (archive ids, as the reference prints them; not file paths)
        self.shown = str.lower if lower_names else str
        self.skip = frozenset(t.lower() for t in skip_types)
        self.keep_updates = keep_updates
        #: dataset -> [(INSTRUMENT, type, old or None, new)], with keep_updates
        self.updates: dict[str, list[tuple[str, str, str | None, str]]] = {}
        #: INSTRUMENT -> type -> datasets updated
        self.counts: dict[str, dict[str, int]] = {}
        self._products: set[str] = set()
        self._compared: BoundedMemo = BoundedMemo(self._MEMO_LIMIT)  # answer sets -> what they record

    def add(self, result: DatasetResult, old: Mapping[str, object] | None = None,
            old_checked: Iterable[str] | None = None, *,
            old_overrides: Mapping[str, object] | None = None) -> Recorded:
        """Record one dataset's updates.  Its ``errors`` are the lines the reference adds
        beyond the new answers' failures: ``No match found`` errors with
        ``--undefined-differences-matter``, and the old answers' failures (of the types in
        ``old_checked``, default all; ``old`` None: no comparison).  ``old_overrides``:
        the old answers are the new ones but these (an old context's answers of the types
        whose rules changed).
        """
        if result.answers is None:
            return Recorded([], False, False)
        instrument = (result.instrument or "").upper()
        checked = None if old_checked is None else tuple(old_checked)
        olds = old if old_overrides is None else old_overrides
        # A campaign's datasets share few distinct answer sets: each is compared once.
        try:
            key = (instrument, tuple(result.answers.items()), None if olds is None else tuple(olds.items()),
                   old_overrides is not None, checked)
            found = self._compared.get(key)
        except TypeError:  # an unhashable answer (a list): no memo
            key, found = None, None
        if found is None:
            if old_overrides is not None:
                old = {**result.answers, **old_overrides}
            found = self._compare(instrument, result.answers, old, checked)
            if key is not None:
                self._compared.put(key, found)
        tails, updates, killed = found
        if updates:
            per = self.counts.setdefault(instrument, {})
            for update in updates:
                per[update[1]] = per.get(update[1], 0) + 1
            if self.keep_updates:
                self.updates[result.path] = list(updates)
            if not killed:
                self._products.add(result.path.split(":")[0])
        return Recorded([result.path + tail for tail in tails], bool(updates), killed)

    def take_part(self) -> tuple:
        """What was recorded since the last call, to :meth:`merge` elsewhere (a worker's
        chunk), and forget it here; the memo of compared answer sets stays."""
        part = (self.counts, self._products, self.updates)
        self.counts, self._products, self.updates = {}, set(), {}
        return part

    def merge(self, part: tuple) -> None:
        """Add another :class:`Reports`' :meth:`take_part` to this one's records."""
        counts, products, updates = part
        for instrument, per_type in counts.items():
            mine = self.counts.setdefault(instrument, {})
            for reftype, count in per_type.items():
                mine[reftype] = mine.get(reftype, 0) + count
        self._products |= products
        self.updates.update(updates)

    def _compare(self, instrument: str, new_answers: Mapping[str, object], old: Mapping[str, object] | None,
                 checked: tuple[str, ...] | None) -> tuple[tuple[str, ...], tuple, bool]:
        """(error lines without the dataset's name, updates, killed) of one set of answers."""
        def norm(answer: object) -> tuple[bool, str]:
            return normalized(answer, self.undefined_matter)

        tails: list[str] = []
        updates = []
        killed = False
        for reftype in sorted(new_answers.keys() | (old or {}).keys()):
            if reftype in self.skip:
                continue
            raw_new = new_answers.get(reftype, "UNDEFINED")
            new_ok, new = norm(raw_new)
            if not new_ok and _no_match(new):
                tails.append(f": {reftype}: New: No match found: {str(raw_new)!r}")
            if old is None:
                if new_ok:
                    updates.append((instrument, reftype, None, new))
                else:
                    killed = True
                continue
            raw_old = old.get(reftype, "UNDEFINED")
            old_ok, was = (new_ok, new) if raw_old is raw_new else norm(raw_old)
            if not old_ok and (checked is None or reftype in checked):
                what = "No match found" if _no_match(was) else "Bestref FAILED"
                tails.append(f": {reftype}: Old: {what}: {str(raw_old)!r}")
            if not new_ok:
                killed = True
            elif new != was:
                updates.append((instrument, reftype, was, new))
        return tuple(tails), tuple(updates), killed

    def affected(self) -> list[str]:
        """Products with an update and no failed new answer (first ``:`` part of the name), sorted."""
        return sorted(map(self.shown, self._products), key=str.lower)

    # ------------------------------------------------------------------ printing

    def new_references_lines(self) -> list[str]:
        return [f"{self.shown(name)} " + " ".join(str(v).lower() for v in update)
                for name in sorted(self.updates, key=str.lower) for update in self.updates[name]]

    def affected_details_lines(self) -> list[str]:
        return [f"{self.shown(name)} {ups[0][0].lower()} {' '.join(sorted(u[1] for u in ups))}"
                for name, ups in sorted(self.updates.items(), key=lambda kv: kv[0].lower()) if ups]

    def update_counts_text(self) -> str:
        return "Updated exposure counts:\n " + pprint.pformat(self.counts)

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
