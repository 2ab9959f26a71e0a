"""One dataset -> its answers: the single path from a file or a parameter set to best references.

Every caller goes through here: the batch engine (:mod:`.batch`), ``serve``'s
best-reference methods, ``sync --dataset-files``, ``list --dataset-headers`` and
the Python API (``getrecommendations``).  So the file format, the completion
of a header as the reference's reader does it (synonyms, ``INSTRUME``), and
the evaluation are decided once.

A *source* is a dataset file path, or a mapping of dataset keywords (an archive
dump's or the server's parameters for one dataset).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..config import Config
from ..errors import CrdsError
from ..headers import read_header
from ..instruments import bestrefs_parameters, dataset_header
from ..instruments.jwst_types import SCREENING_KEYWORDS, applicable_reftypes
from ..rules.conditioning import condition_header
from ..rules.evaluate import Evaluator
from ..sources.deferred import Deferred
from .registry import get_evaluator

__all__ = ["DatasetAnswers", "SCREENINGS", "screened_types", "screening_keep", "dataset_file_format", "dataset_parameters", "answer_dataset", "answer_names",
           "references_of_datasets", "RulesService"]

Source = "str | os.PathLike | Mapping[str, object]"


@dataclass(slots=True)
class DatasetAnswers:
    """``instrument`` (lower case), ``answers`` ``{reftype: answer}``, the ``parameters`` looked up,
    and the ``reftypes`` asked for (None: every type of the instrument)."""

    instrument: str
    answers: dict[str, object]
    parameters: dict[str, object]
    reftypes: tuple[str, ...] | None = None


#: How the types of a dataset given none are chosen: every type of its instrument's rules
#: (``None``), as ``crds bestrefs`` does (``"cli"``: JWST types screened by the CRDSCFG table
#: of the dataset's calibration version), or as ``getrecommendations`` does (``"api"``: the
#: same screening cut to the types the instrument's rules have; none left means all of them).
SCREENINGS = (None, "cli", "api")


def screened_types(parameters: Mapping[str, object], evaluator: Evaluator, *,
                   conditioned: bool = False) -> tuple[str, ...] | None:
    """The types the reference evaluates for a dataset given none (None: every type).

    Only JWST screens them: the CRDSCFG table of the dataset's ``CAL_VER`` says which types
    its ``EXP_TYPE`` needs (:mod:`crds_async.instruments.jwst_types`).  ``conditioned``:
    the table reads the conditioned values (``False`` -> ``F``), as the reference's
    ``getrecommendations`` hands them to it; its ``bestrefs`` hands the values as read.
    """
    if evaluator.observatory != "jwst":
        return None
    types = applicable_reftypes(condition_header(parameters) if conditioned else parameters)
    return None if types is None else tuple(sorted(types))


def screening_keep(evaluator: Evaluator) -> Callable[[str], bool]:
    """``keep`` for a header reader: what the rules read, and what the JWST screening reads."""
    wants = evaluator.wants
    if evaluator.observatory != "jwst":
        return wants
    return lambda keyword: wants(keyword) or keyword.upper() in SCREENING_KEYWORDS


def dataset_file_format(path: str | os.PathLike) -> str:
    """``FILE_FORMAT`` of a dataset file as the reference's reader records it: by its name."""
    return "ASDF" if os.fspath(path).lower().endswith(".asdf") else "FITS"


_TEXT = frozenset((str,))


def dataset_parameters(source, keep: Callable[[str], bool] | None = None) -> dict[str, object]:
    """The parameters ``crds bestrefs`` looks a dataset up with.

    Parameters
    ----------
    source : path, mapping, Deferred or exception
        A dataset file (its header read, ``keep`` limiting the keywords read), or its
        keywords (values as text: an archive's parameters are strings, numbers or None),
        or where to get them (:class:`~crds_async.sources.deferred.Deferred`: a dump's
        line, a server's page); an exception (the source's error for this dataset) is raised.

    Raises
    ------
    HeaderError
        The file cannot be read as a dataset.
    UnknownInstrumentError
        No keyword names an instrument.
    """
    if isinstance(source, Deferred):
        source = source.parameters()  # fetched here, in the process that evaluates it
    elif isinstance(source, BaseException):
        raise source  # the dump could not give this dataset's parameters: its error
    if isinstance(source, Mapping):
        if type(source) is dict and set(map(type, source)) <= _TEXT and set(map(type, source.values())) <= _TEXT:
            raw = source  # all text already (an archive's usual parameters): read, never changed, below
        else:
            raw = {str(k): v if isinstance(v, str) else str(v) for k, v in source.items()}
        file_format = "FITS"
    else:
        raw = read_header(source, keep)
        file_format = dataset_file_format(source)
    return bestrefs_parameters(dataset_header(raw, file_format))


def answer_dataset(source, evaluator: Evaluator, reftypes: Iterable[str] | None = None, *,
                   keep: Callable[[str], bool] | None = None, complete: bool = True,
                   fast: bool = True, screen: str | None = None) -> DatasetAnswers:
    """Best references of one dataset under ``evaluator``'s context.

    Parameters
    ----------
    source : path or mapping
        See :func:`dataset_parameters`.
    evaluator : Evaluator
        The context (``crds_async.engine.get_evaluator``).
    reftypes : iterable of str, optional
        Only these types; default every type of the instrument.
    keep : callable, optional
        Read only the keywords it accepts (``evaluator.wants``): faster for files.
    complete : bool
        False: ``source`` is already the lookup parameters, used as given (the
        reference's ``getrecommendations(parameters)``).
    fast : bool
        As the reference's ``fast``: False conditions only the scalar values (its checked
        mode); the bad-file checks are the caller's (``evaluator.check_bad_files``).
    screen : {None, "cli", "api"}
        With no ``reftypes``: which types to answer (:data:`SCREENINGS`).

    Raises
    ------
    CrdsError
        The dataset cannot be read, names no instrument, or its instrument's rules fail
        to load.  Failed lookups are answers (``NOT FOUND ...``), not errors.
    """
    parameters = dataset_parameters(source, keep) if complete else source
    if reftypes is None and screen is not None:
        reftypes = screened_types(parameters, evaluator, conditioned=screen == "api")
        if reftypes is not None and screen == "api":
            # only the instrument's own types; none of them left means every one of them
            known = evaluator.context.instrument(evaluator.instrument_of(parameters)).reftypes
            reftypes = tuple(t for t in reftypes if t in known) or None
    elif reftypes is not None and type(reftypes) is not tuple:
        reftypes = tuple(reftypes)
    instrument, answers = evaluator.evaluate_dataset(parameters, reftypes, fast=fast)
    return DatasetAnswers(instrument, answers, parameters, reftypes)


def answer_names(answers: Mapping[str, object]) -> set[str]:
    """The file names a dataset's answers recommend (tied and dict leaves included)."""
    names: set[str] = set()
    for value in answers.values():
        members = value if isinstance(value, tuple) else value.values() if isinstance(value, dict) else (value,)
        names.update(str(m) for m in members if not str(m).startswith("NOT FOUND")
                     and str(m).upper() not in ("N/A", "UNDEFINED"))
    return names


def references_of_datasets(cfg: Config, observatory: str, contexts: Iterable[str], datasets: Iterable,
                           report: Callable[[str], None]) -> set[str]:
    """Every reference the datasets' answers name under each context (``sync --dataset-files``).

    A dataset that cannot be answered is reported (one line) and passed over.
    """
    names: set[str] = set()
    datasets = list(datasets)
    for context in contexts:
        evaluator = get_evaluator(context, cfg, observatory)
        for dataset in datasets:
            try:
                names |= answer_names(answer_dataset(dataset, evaluator).answers)
            except CrdsError as exc:  # one bad dataset must not stop the sync
                report(f"{dataset}: cannot compute best references under {context}: {exc}")
    return names


class RulesService:
    """What ``serve`` asks the engine about a served cache's rules (contexts loaded once, then kept).

    Parameters
    ----------
    cfg : Config
        The served cache's configuration.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def answers(self, observatory: str, context: str, header: Mapping[str, object],
                reftypes: list[str] | None) -> dict[str, object]:
        """``{reftype: answer}`` for one header, completed as a dataset file's would be."""
        return answer_dataset(header, get_evaluator(context, self.cfg, observatory), reftypes).answers

    def required_parkeys(self, observatory: str, context: str) -> dict[str, list[str]]:
        """``{instrument: [parameters its rules read]}`` (the instrument keyword first)."""
        ctx = get_evaluator(context, self.cfg, observatory).context
        return {name: [ctx.instrument_key.upper(), *imap.required_parkeys]
                for name, imap in sorted(ctx.instruments.items())}
