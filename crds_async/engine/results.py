"""A dataset's outcome: answers or one error, and the problems the reference's bestrefs reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..memo import BoundedMemo
from ..rules.model import NOT_FOUND_NA

__all__ = ["DatasetResult", "is_error_answer", "plain_answer", "answers_json", "AnswerProblems",
           "NOT_FOUND_NO_MATCH"]

#: The failed match that the reference's bestrefs does not report as an error
NOT_FOUND_NO_MATCH = "NOT FOUND No match found."

#: NOT FOUND answers that the reference's bestrefs does not report as errors
_UNREPORTED = frozenset({NOT_FOUND_NA, NOT_FOUND_NO_MATCH})


def plain_answer(answer: object) -> object:
    """An answer as JSON shows it: tied leaves (tuples) become lists of their texts."""
    return [a if isinstance(a, str) else repr(a) for a in answer] if isinstance(answer, tuple) else answer


#: json.dumps(..., sort_keys=True) builds an encoder per call; this one is built once
_SORTED_JSON = json.JSONEncoder(sort_keys=True)


def answers_json(answers: dict[str, object]) -> str:
    """``{reftype: answer}`` as JSON text, keys sorted (the shape of expected_*.json)."""
    if tuple in map(type, answers.values()):
        answers = {t: plain_answer(a) for t, a in answers.items()}
    return _SORTED_JSON.encode(answers)


def is_error_answer(answer: object) -> bool:
    """True for a NOT FOUND that the reference's bestrefs reports as an error."""
    return (isinstance(answer, str) and answer.startswith("NOT FOUND")
            and answer not in _UNREPORTED)


@dataclass(slots=True)
class DatasetResult:
    """One dataset's outcome: answers, or one error line.

    Slotted: the batch's process makes one per dataset, a million in a campaign; without a
    ``__dict__`` each is one object the garbage collector tracks instead of two, and it is
    built several times faster (measured: 0.6 against 5 us beside a loaded context).
    """

    path: str
    instrument: str | None = None
    answers: dict[str, object] | None = None
    old_answers: dict[str, object] | None = None
    compared: tuple[str, ...] = ()                       # types compared with the old context
    error: str | None = None
    problems: list[str] = field(default_factory=list)   # per-type errors and bad references
    answers_json: str | None = None                      # with BatchSpec.render_json
    observed: str | None = None                          # the observation date, as the dataset gives it

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.problems)

    def __reduce__(self):
        # Results cross to the batch's process by the hundred thousand: as constructor
        # arguments they unpickle about as fast as plain tuples, up to twice as fast as a
        # dataclass's default (a bare object, then its state).
        return DatasetResult, (self.path, self.instrument, self.answers, self.old_answers, self.compared,
                               self.error, self.problems, self.answers_json, self.observed)


class AnswerProblems:
    """What the reference's bestrefs reports of a dataset's answers, under one bad-files list.

    Its memo of answer -> problem text is its own: the answers of a batch repeat, so
    each distinct answer is judged once per batch chunk.
    """

    __slots__ = ("bad", "_known")

    def __init__(self, bad_files: frozenset[str]) -> None:
        self.bad = bad_files
        self._known = BoundedMemo(1 << 16)

    def _problem_of(self, answer: object) -> str:
        """What is wrong with one answer ('' if nothing): a reported NOT FOUND, or a bad reference."""
        if is_error_answer(answer):
            return answer
        if type(answer) is str and not answer.startswith("NOT FOUND") and answer in self.bad:  # noqa: E721
            return f"recommended reference {answer!r} is designated scientifically invalid"
        return ""  # tied leaves (tuples) are neither errors nor names

    def __call__(self, path: str, answers: dict[str, object]) -> list[str]:
        """One line per distinct problem of a dataset's answers, naming every type it hit."""
        known = self._known
        try:
            found = list(map(known.get, answers.values()))  # one C-level pass for the usual dataset
        except TypeError:  # an unhashable leaf: no memo
            found = [self._problem_of(answer) for answer in answers.values()]
        if None in found:
            found = [known.put(answer, self._problem_of(answer)) if problem is None else problem
                     for answer, problem in zip(answers.values(), found)]
        if not any(found):
            return []
        by_message: dict[str, list[str]] = {}
        for reftype, problem in zip(answers, found):
            if problem:
                by_message.setdefault(problem, []).append(reftype)
        return [f"{path}: {', '.join(types)}: {message}" for message, types in by_message.items()]
