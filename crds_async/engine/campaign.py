"""Campaign logic: what changes between two contexts, which datasets are affected, what to write.

- :func:`changed_types`: per instrument, the reftypes whose rules differ (only those are
  evaluated twice);
- :func:`changes_of`, :func:`is_affected`: a dataset's updates, counted as the reference's
  bestrefs counts them;
- :func:`header_updates`, :func:`update_dataset`: the keywords ``--update-bestrefs`` writes
  (HST ``FILEKIND = 'jref$name.fits'`` or ``'N/A'``; JWST the schema keyword of
  ``META.REF_FILE.<KIND>.NAME`` valued ``'crds://name'``; ``CRDS_CTX`` and ``CRDS_VER``;
  omitted and failed types not written; a dataset with nothing to write is not touched,
  observatories-and-protocol.md §1.5).
"""

from __future__ import annotations

import operator

from ..memo import BoundedMemo
from ..rules.model import NOT_FOUND_NA, Context
from .batch import BatchSpec
from .results import NOT_FOUND_NO_MATCH, DatasetResult, is_error_answer, plain_answer as _plain

__all__ = ["changed_types", "comparable", "changes_of", "is_affected", "header_updates", "update_dataset",
           "CRDS_VER"]


def changed_types(old: Context, new: Context) -> dict[str, tuple[str, ...]]:
    """Per instrument, the reftypes whose rules differ between two loaded contexts."""
    changed: dict[str, tuple[str, ...]] = {}
    for instrument, imap_name in new.instrument_names.items():
        if old.instrument_names.get(instrument) == imap_name:
            continue
        new_types = new.instruments[instrument].reftypes if instrument in new.instruments else {}
        old_types = old.instruments[instrument].reftypes if instrument in old.instruments else {}
        changed[instrument] = tuple(sorted(t for t in set(new_types) | set(old_types)
                                           if new_types.get(t) != old_types.get(t)))
    return changed


def comparable(answer: object) -> object:
    """An answer as the reference's bestrefs compares old and new ones (N/A forms folded)."""
    if answer is None:
        return None
    if isinstance(answer, tuple):
        return tuple(str(a).upper() for a in answer)
    text = str(answer)
    if text in (NOT_FOUND_NA, NOT_FOUND_NO_MATCH) or text.upper() in ("N/A", "UNDEFINED", "NONE", "", "*"):
        return "N/A"
    return text if text.startswith("NOT FOUND") else text.upper()


def changes_of(result: DatasetResult) -> dict[str, tuple[object, object]]:
    """{reftype: (old, new)} for every compared type whose answer differs between the contexts.

    As in the reference, a type whose new answer is an error is never an update.
    """
    if result.answers is None or result.old_answers is None:
        return {}
    compared = result.compared
    # A campaign's datasets share few distinct (old, new) answer sets: each is compared once.
    getter = _GETTERS.get(compared)
    if getter is None:
        getter = _GETTERS.put(compared, operator.itemgetter(*compared) if compared else (lambda _: ()))
    try:
        key = (compared, getter(result.old_answers), getter(result.answers))
        found = _SETS.get(key)
    except (KeyError, TypeError):  # a type one context omits, or an unhashable answer: no memo
        return _changes(result)
    if found is None:
        found = _SETS.put(key, _changes(result))
    return dict(found)


#: compared types -> the getter of their answers; answer sets -> their changes (bounded)
_GETTERS = BoundedMemo(1 << 10)
_SETS = BoundedMemo(1 << 14)


def _changes(result: DatasetResult) -> dict[str, tuple[object, object]]:
    out = {}
    olds, news = result.old_answers, result.answers
    for reftype in result.compared:
        old, new = olds.get(reftype, "UNDEFINED"), news.get(reftype, "UNDEFINED")
        if old == new:  # most compared types keep their answer: no need to fold the forms
            continue
        change = _change(old, new)
        if change is not None:
            out[reftype] = change
    return out


def _change(old: object, new: object) -> tuple[object, object] | None:
    """The update from ``old`` to ``new``, or None (the same, or the new one an error)."""
    if is_error_answer(new) or comparable(old) == comparable(new):
        return None
    return _plain(old), _plain(new)


def is_affected(result: DatasetResult, changes: dict) -> bool:
    """Affected, as the reference counts it: some update, and no failed type in the new answers."""
    if not changes:
        return False
    values = tuple((result.answers or {}).values())
    try:
        failed = _FAILED.get(values)
    except TypeError:  # an unhashable answer: no memo
        return not any(map(is_error_answer, values))
    if failed is None:
        failed = _FAILED.put(values, any(map(is_error_answer, values)))
    return not failed


#: a dataset's answers -> whether one of them failed (answer sets repeat across a campaign)
_FAILED = BoundedMemo(1 << 14)


def _version() -> str:
    from .._version import __version__

    return f"{__version__}, crds_async, release"


#: What CRDS_VER records: this tool's version, in the reference's "<ver>, <branch>, <rev>" shape.
CRDS_VER = _version()


def _jwst_keyword(filekind: str) -> str:
    """The FITS keyword of a JWST type's best reference: the data models schema's, else (a type
    the schema does not know, e.g. ``resol``) the type upper-cased, as the reference writes it."""
    from ..instruments.jwst import DM_TO_FITS

    return DM_TO_FITS.get(f"META.REF_FILE.{filekind.upper()}.NAME") or filekind.upper()


def header_updates(result: DatasetResult, spec: BatchSpec) -> dict[str, str]:
    """The primary-header cards ``--update-bestrefs`` writes for one dataset (empty: don't touch it)."""
    answers = result.answers or {}
    if spec.old_context:
        wanted = {t: answers.get(t) for t in changes_of(result)}  # only what changed is an update
    else:
        wanted = dict(answers)
    cards: dict[str, str] = {}
    for filekind, answer in sorted(wanted.items()):
        if answer is None or is_error_answer(answer) or not isinstance(answer, str):
            continue
        is_na = answer in (NOT_FOUND_NA, NOT_FOUND_NO_MATCH)
        if spec.observatory == "hst":
            from ..instruments.hst import filekind_to_keyword, iraf_prefix

            keyword = filekind_to_keyword(filekind)
            value = "N/A" if is_na else (iraf_prefix(result.instrument or "") + answer).lower()
        elif spec.observatory == "jwst":
            keyword = _jwst_keyword(filekind)
            value = "N/A" if is_na else "crds://" + answer
        else:
            continue  # Roman datasets carry no best-reference keywords
        cards[keyword] = value
    if cards:
        cards = {"CRDS_CTX": spec.context, "CRDS_VER": CRDS_VER, **cards}
    return cards


def update_dataset(result: DatasetResult, spec: BatchSpec) -> bool:
    """Write the updates into the dataset (crash-safe); False when there was nothing to write
    or the dataset already held them (then it is not touched)."""
    cards = header_updates(result, spec)
    if not cards:
        return False
    from ..headers import update_primary_header

    return update_primary_header(result.path, cards)
