"""``--update-bestrefs``: which keywords the reference writes into a dataset's primary header.

HST: ``FILEKIND = 'jref$name.fits'`` (IRAF prefix of the instrument, lower case)
or ``'N/A'``; JWST: the schema keyword of ``META.REF_FILE.<KIND>.NAME`` (e.g.
``R_FLAT``) valued ``'crds://name'``; plus ``CRDS_CTX`` and ``CRDS_VER``.
Omitted types and error answers are not written; a dataset with nothing to
write is not touched (observatories-and-protocol.md §1.5).
"""

from __future__ import annotations

from ..pipeline import BatchSpec, DatasetResult, is_error_answer
from .bestrefs_output import changes_of

__all__ = ["header_updates", "update_dataset", "CRDS_VER"]


def _version() -> str:
    from .. import __version__

    return f"{__version__}, crds_async, release"


#: What CRDS_VER records: this tool's version, in the reference's "<ver>, <branch>, <rev>" shape.
CRDS_VER = _version()


def _jwst_keyword(filekind: str) -> str | None:
    from ..instruments.jwst import DM_TO_FITS

    return DM_TO_FITS.get(f"META.REF_FILE.{filekind.upper()}.NAME")


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
        is_na = answer in ("NOT FOUND n/a", "NOT FOUND No match found.")
        if spec.observatory == "hst":
            from ..instruments.hst import filekind_to_keyword, iraf_prefix

            keyword = filekind_to_keyword(filekind)
            value = "N/A" if is_na else (iraf_prefix(result.instrument or "") + answer).lower()
        elif spec.observatory == "jwst":
            keyword = _jwst_keyword(filekind)
            if keyword is None:
                continue
            value = "N/A" if is_na else "crds://" + answer
        else:
            continue  # Roman datasets carry no best-reference keywords
        cards[keyword] = value
    if cards:
        cards = {"CRDS_CTX": spec.context, "CRDS_VER": CRDS_VER, **cards}
    return cards


def update_dataset(result: DatasetResult, spec: BatchSpec) -> bool:
    """Write the updates into the dataset atomically; False when there was nothing to write."""
    cards = header_updates(result, spec)
    if not cards:
        return False
    from ..headers import update_primary_header

    update_primary_header(result.path, cards)
    return True
