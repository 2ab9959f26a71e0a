"""Answer plans: one rmap's answer as a memoised function of a few header values.

For most rmaps (a ``Match`` over instrument modes whose choices are
``UseAfter`` tables of file names) the answer for a dataset depends only on
the Match parameters, the names the ``rmap_relevance``/``rmap_omit``
expressions read, and the dataset's UseAfter date.  A plan memoises, per tuple
of the non-date values, the whole outcome as a piecewise-constant function of
the date: sorted break dates and the answer on each interval.  Answering a
dataset is then one tuple lookup and one bisection, instead of walking the
selector tree (rules.md §3).

A precondition hook (HST: a header rewrite before the match) is part of the
plan when its inputs are declared: the header keys it reads, and *derived key
parts*, functions of the header that stand for the rest of what it reads (the
side of fixed dates an exposure starts on, say).  Both join the memo key; the
outcome is built by running the real hook on the dataset's header.

A failed match (``No match found.``, or a value the Match does not accept) is
part of the plan too, worded as the interpreted path words it: ``NOT FOUND``
and the failure's text for a required type, ``NOT FOUND n/a`` for an optional
one or a do-not-reprocess dataset.

A dataset date that does not parse fails the first date table the Match
reaches, and is worded the same way (:meth:`RmapPlan.bad_date`).

Exactness comes first: a plan is built by running the very selectors (and
hooks) the interpreted path runs, and anything it does not model (undeclared
hooks, parkey relevance of a date parameter, selectors other than
Match/UseAfter, expression errors, a hook that fails, a date that does not parse
for an rmap with hooks) is answered :data:`SLOW`, which sends that dataset and
type to the interpreted path.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Mapping, Sequence

from ..errors import LookupFailure
from .model import NA_VALUES, NOT_FOUND_NA, OMIT_VALUES, ReferenceMapping
from .relevance import PARKEY_RELEVANCE_CONSTANTS, apply_parkey_relevance
from .selectors import MatchSelector, Selector, UseAfterSelector
from .timestamps import lookup_date

__all__ = ["SLOW", "OMITTED", "leaf_answer", "NOT_FOUND_NA", "RmapPlan", "ConstantPlan", "InstrumentPlan", "ModeAnswers", "Outcome", "plan_for",
           "dataset_date", "memo_key_function"]

_MEMO_LIMIT = 8192


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: "ask the interpreted path": the plan does not model this case.
SLOW = _Marker("SLOW")
#: the type is left out of the answer (``rmap_omit`` true, or an ``OMIT`` leaf).
OMITTED = _Marker("OMITTED")
#: while building: the first match failed here, and the rmap's fallback retries it.
_RETRY = _Marker("RETRY")

#: ``(date_keys, break_dates, answers)``: with ``date_keys`` None the answer is
#: ``answers[0]``; otherwise ``answers[bisect_right(break_dates, date)]``.
Outcome = tuple


def leaf_answer(leaf: object) -> object:
    """The answer a selected leaf gives: ``NOT FOUND n/a`` for N/A, :data:`OMITTED` for OMIT."""
    if isinstance(leaf, str):
        if leaf in NA_VALUES:
            return NOT_FOUND_NA
        if leaf in OMIT_VALUES:
            return OMITTED
    return leaf


_ALWAYS_SLOW: Outcome = (None, (), (SLOW,))

#: A derived memo-key part: ``minimised header -> hashable value``; raising means :data:`SLOW`.
Derived = Callable[[Mapping[str, str]], object]


def memo_key_function(names: Sequence[str], derived: Sequence[Derived] = ()) -> Callable[[Mapping[str, str]], object]:
    """The memo key of a minimised header: its values of ``names``, then each derived part.

    Without derived parts this is a plain ``itemgetter`` (the common case, and the fast
    one); a derived part that raises contributes :data:`SLOW`.
    """
    names = tuple(names)
    getter = operator.itemgetter(*names) if names else (lambda params: ())
    if not derived:
        return getter
    parts = tuple(derived)

    def key_of(params: Mapping[str, str]) -> object:
        values = [getter(params)]
        for part in parts:
            try:
                values.append(part(params))
            except Exception:  # noqa: BLE001 - the interpreted path words the failure
                values.append(SLOW)
        return tuple(values)

    return key_of


class RmapPlan:
    """The memoised answers of one rmap for one instrument's minimised headers.

    Parameters
    ----------
    rmap : ReferenceMapping
    key_names : sequence of str
        Minimised-header keys whose values decide everything but the date: the
        Match parameters, then the keys behind the expressions' names
        (``rmap_omit``, ``rmap_relevance`` and ``parkey_relevance``) and the keys
        the precondition hook reads.
    expression_names : mapping
        Expression name -> minimised-header key (``META_X_Y`` -> ``META.X.Y``).
    no_match : callable, optional
        The answer when every Match group is passed over (given the header the
        match saw); None: :data:`SLOW`.
    precondition : callable, optional
        The rmap's precondition hook (``header -> header``), run on the
        minimised header before parkey relevance and the match.
    derived : sequence of callables
        Derived memo-key parts (``header -> hashable``; raising means the outcome
        is :data:`SLOW`): with ``key_names``, everything the hook's output depends on.
    date_keys : sequence of str
        The UseAfter parameters: the plan bisects on the dataset's values, so a
        hook that changes them gets :data:`SLOW`.
    retry : callable, optional
        The second lookup after a failed match (HST fallback hooks): ``header as
        it came -> header the second match sees``.  With it, ``no_match`` answers
        the internal retry marker where the retry applies, and ``retry_failed``
        words a failed retry by its text.  The hook's inputs must be among
        ``key_names`` and ``derived``.

    Attributes
    ----------
    key_of : callable
        Minimised header -> memo key (:func:`memo_key_function`).
    """

    __slots__ = ("rmap", "key_names", "derived", "key_of", "memo", "_match", "_expression_names", "_no_match",
                 "_precondition", "_date_keys", "_single_tables", "_retry", "_retry_failed")

    def __init__(self, rmap: ReferenceMapping, key_names: Sequence[str], expression_names: Mapping[str, str],
                 no_match: Callable[[Mapping[str, str]], object] | None = None, *,
                 precondition: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
                 derived: Sequence[Derived] = (), date_keys: Sequence[str] = (),
                 retry: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
                 retry_failed: Callable[[str], object] | None = None):
        self.rmap = rmap
        self.key_names = tuple(key_names)
        self.derived = tuple(derived)
        self.key_of: Callable[[Mapping[str, str]], object] = memo_key_function(self.key_names, self.derived)
        self.memo: dict[object, Outcome] = {}
        self._match = rmap.selector if isinstance(rmap.selector, MatchSelector) else None
        self._expression_names = dict(expression_names)
        self._no_match = no_match
        self._precondition = precondition
        self._date_keys = tuple(date_keys)
        self._single_tables: dict[tuple[int, object], tuple] = {}
        self._retry = retry
        self._retry_failed = retry_failed

    def outcome(self, params: Mapping[str, str]) -> Outcome:
        """The memoised outcome for ``params`` (a minimised header), built on a miss."""
        key = self.key_of(params)
        found = self.memo.get(key)
        if found is None:
            found = self._build(params, SLOW in key[1:] if self.derived else False)
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo.clear()  # bounded memory on archives with endless value variety
            self.memo[key] = found
        return found

    # ----------------------------------------------------------- building
    def _expression_value(self, expression, params: Mapping[str, str]) -> object:
        names = {name: params[key] for name, key in self._expression_names.items()}
        return expression.evaluate(names)

    def _build(self, params: Mapping[str, str], derived_failed: bool = False) -> Outcome:
        rmap = self.rmap
        params_in = params
        omit, relevance = rmap.omit, rmap.relevance
        try:
            if omit.constant if omit.is_constant else self._expression_value(omit, params):
                return (None, (), (OMITTED,))
            if not (relevance.constant if relevance.is_constant else self._expression_value(relevance, params)):
                return (None, (), (NOT_FOUND_NA,))
        except Exception:  # noqa: BLE001 - the interpreted path logs and handles it
            return _ALWAYS_SLOW
        if self._precondition is not None:
            # after omit/relevance, as in the interpreted path (they see the header as it came)
            if derived_failed:
                return _ALWAYS_SLOW
            try:
                hooked = self._precondition(params)
            except Exception:  # noqa: BLE001 - the interpreted path words the failure
                return _ALWAYS_SLOW
            if any(hooked.get(key) != params.get(key) for key in self._date_keys):
                return _ALWAYS_SLOW
            params = hooked
        if self._match is None:
            groups: list[object] = [rmap.selector]
        else:
            try:
                header = apply_parkey_relevance(rmap, params)
            except Exception:  # noqa: BLE001 - the interpreted path words the failure
                return _ALWAYS_SLOW
            outcome = self._matched(header, self._no_match)
            if self._retry is not None and any(answer is _RETRY for answer in outcome[2]):
                return _where_retried(outcome, self._retry_outcome(params_in))
            return outcome
        return _piecewise(groups, SLOW, self._single_tables)

    def _matched(self, header: Mapping[str, str], no_match: Callable[..., object] | None) -> Outcome:
        """The outcome of the Match on ``header`` (after hooks and parkey relevance)."""
        values = tuple(header[p] for p in self._match.parameters)
        try:
            groups = self._match.groups(values)
        except Exception as failure:  # noqa: BLE001 - a value the Match does not accept
            if no_match is None:
                return _ALWAYS_SLOW
            return (None, (), (no_match(header, str(failure)),))
        if no_match is None:
            return _piecewise(groups, SLOW, self._single_tables)
        return _piecewise(groups, no_match(header), self._single_tables,
                          lambda failure: no_match(header, str(failure)))

    def bad_date(self, params: Mapping[str, str], failure: LookupFailure) -> object:
        """The answer when the dataset's UseAfter date does not parse (``failure``), or :data:`SLOW`.

        The first date table the Match reaches fails the lookup with that text, worded as
        any failed match is.  Left to the interpreted path: hooks (a precondition may read
        the date itself, a fallback retries).
        """
        if self._no_match is None or self._precondition is not None or self._retry is not None:
            return SLOW
        try:
            header = apply_parkey_relevance(self.rmap, params)
        except Exception:  # noqa: BLE001 - the interpreted path words the failure
            return SLOW
        return self._no_match(header, str(failure))

    def _retry_outcome(self, params: Mapping[str, str]) -> Outcome:
        """The second lookup's outcome for the header as it came (``params``)."""
        try:
            header = self._retry(params)
        except Exception as failure:  # noqa: BLE001 - the hook's own failure, worded
            return (None, (), ("NOT FOUND " + str(failure),))
        if any(header.get(key) != params.get(key) for key in self._date_keys):
            return _ALWAYS_SLOW
        failed = self._retry_failed
        return self._matched(header, lambda _header, message="No match found.": failed(message))


class ConstantPlan:
    """A type whose answer never depends on the header (``N/A`` or ``OMIT`` in the imap)."""

    __slots__ = ("answer",)

    def __init__(self, answer: object):
        self.answer = answer  # NOT FOUND n/a, or OMITTED


#: id(table) -> (table, its leaf answers or None if a choice is a selector); a table's
#: answers are worked out once, not once per parameter tuple that reaches it
_TABLE_ANSWERS: dict[int, tuple[UseAfterSelector, tuple | None]] = {}
_SPECIAL_LEAVES = NA_VALUES | OMIT_VALUES


def _table_answers(group: object) -> tuple | None:
    """The leaf answers of a UseAfter whose choices are all leaves (file names, N/A, ...), else None."""
    if type(group) is not UseAfterSelector:
        return None
    found = _TABLE_ANSWERS.get(id(group))
    if found is not None and found[0] is group:
        return found[1]
    choices = group.choices
    answers: tuple | None
    if any(isinstance(choice, Selector) for choice in choices):
        answers = None
    else:
        try:
            plain = _SPECIAL_LEAVES.isdisjoint(choices)  # file names: the answers are the choices
        except TypeError:  # an unhashable leaf
            plain = False
        answers = tuple(choices) if plain else tuple(map(leaf_answer, choices))
    if len(_TABLE_ANSWERS) >= _MEMO_LIMIT:
        _TABLE_ANSWERS.clear()
    _TABLE_ANSWERS[id(group)] = (group, answers)  # holding the table keeps its id unique
    return answers


def _piecewise(groups: Sequence[object], no_match: object = SLOW,
               single_tables: dict[tuple[int, object], tuple] | None = None,
               failed: Callable[[LookupFailure], object] | None = None) -> Outcome:
    """The answer of Match groups (best first) as a function of the UseAfter date.

    ``no_match`` is the answer when every group is passed over (``No match found.``),
    ``failed`` the answer for a group that is a failure (e.g. ``More than one match
    clause matched.``); None: :data:`SLOW`.  ``single_tables`` caches the common
    case, one date table and nothing after it, by table (tables are shared by many
    parameter tuples, and can be long).
    """
    if single_tables is not None and len(groups) == 1 and type(groups[0]) is UseAfterSelector:
        table = groups[0]
        cached = single_tables.get((id(table), no_match))
        if cached is not None and cached[0] is table:
            return cached[1]
        outcome = _piecewise(groups, no_match)
        single_tables[(id(table), no_match)] = (table, outcome)  # holding the table keeps its id unique
        return outcome
    tables: list[UseAfterSelector] = []
    tables_answers: list[tuple] = []
    terminal: object = no_match
    for group in groups:
        answers = _table_answers(group)
        if answers is not None:
            tables.append(group)
            tables_answers.append(answers)
            continue
        if isinstance(group, LookupFailure):
            terminal = SLOW if failed is None else failed(group)
        elif isinstance(group, Selector):
            terminal = SLOW
        else:
            terminal = leaf_answer(group)
        break
    if not tables:
        return (None, (), (terminal,))
    date_keys = tables[0].parameters
    if any(table.parameters != date_keys for table in tables):
        return _ALWAYS_SLOW
    if len(tables) == 1:
        return (date_keys, tables[0].dates, (terminal, *tables_answers[0]))
    breaks = sorted({date for table in tables for date in table.dates})

    def at(date: str | None) -> object:
        for table, answers in zip(tables, tables_answers):
            index = 0 if date is None else bisect.bisect_right(table.dates, date)
            if index:
                return answers[index - 1]
        return terminal

    answers = [at(None)] + [at(date) for date in breaks]
    return (date_keys, tuple(breaks), tuple(answers))


def _where_retried(first: Outcome, retry: Outcome) -> Outcome:
    """``first`` with the retry's answer wherever ``first`` answers the retry marker."""
    first_keys, first_breaks, first_answers = first
    retry_keys, retry_breaks, retry_answers = retry
    if first_keys is not None and retry_keys is not None and first_keys != retry_keys:
        return _ALWAYS_SLOW
    breaks = sorted({*first_breaks, *retry_breaks})
    answers = []
    for date in (None, *breaks):
        answer = first_answers[0 if date is None else bisect.bisect_right(first_breaks, date)]
        if answer is _RETRY:
            answer = retry_answers[0 if date is None else bisect.bisect_right(retry_breaks, date)]
        answers.append(answer)
    if first_keys is None and retry_keys is None:
        return (None, (), (answers[0],))
    return (first_keys or retry_keys, tuple(breaks), tuple(answers))


def plan_for(rmap: ReferenceMapping, minimized_keys: Sequence[str], *,
             precondition: bool | Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
             precondition_keys: Sequence[str] | None = None, precondition_derived: Sequence[Derived] = (),
             fallback: bool = False, do_not_reprocess: Callable[[Mapping[str, str]], bool] | None = None,
             do_not_reprocess_keys: Sequence[str] = (),
             retry: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
             retry_keys: Sequence[str] | None = None, retry_derived: Sequence[Derived] = ()) -> RmapPlan | None:
    """A plan for ``rmap``, or None when the interpreted path must answer every dataset.

    Parameters
    ----------
    rmap : ReferenceMapping
    minimized_keys : sequence of str
        The keys of the instrument's minimised headers (every one is present).
    precondition : callable or bool, optional
        The rmap's HST precondition hook (it rewrites the header first); True for
        one that is not given (no plan then).
    precondition_keys : sequence of str, optional
        The header keys the hook reads; None: unknown (no plan).  Those absent
        from the minimised headers are absent from every one, so they are left out.
    precondition_derived : sequence of callables
        Derived memo-key parts for the rest of what the hook reads (``header ->
        hashable``, raising where the hook's reading fails).
    fallback : bool
        The rmap has a fallback hook (a second lookup after a failed one): without
        ``retry`` and ``retry_keys``, a failed match is then answered :data:`SLOW`.
    retry : callable, optional
        The fallback's second lookup: ``header as it came -> header the second
        match sees`` (the hook, then the rmap's minimising and parkey relevance).
    retry_keys, retry_derived : optional
        What the fallback hook reads, as ``precondition_keys`` and
        ``precondition_derived`` (None: unknown, a failed match is :data:`SLOW`).
    do_not_reprocess : callable, optional
        The observatory's rule that turns a failed match into ``N/A`` (HST), and
        the keys it reads.
    """
    if precondition and (not callable(precondition) or precondition_keys is None):
        return None
    present = set(minimized_keys)
    selector = rmap.selector
    if isinstance(selector, MatchSelector):
        key_names = list(selector.parameters)
        date_levels = [choice.parameters for choice in selector.choices if isinstance(choice, UseAfterSelector)]
    elif type(selector) is UseAfterSelector and not rmap.parkey_relevance:
        key_names, date_levels = [], [selector.parameters]
    else:
        return None
    if not present.issuperset(key_names) or not all(present.issuperset(level) for level in date_levels):
        return None
    # parkey_relevance may rewrite a parameter to N/A: only Match parameters, whose
    # values are part of the memo key, may be rewritten (never a date the plan bisects on)
    rewritten = {parkey for parkey in rmap.required_parkeys if parkey.lower() in rmap.parkey_relevance}
    if any(rewritten & set(level) for level in date_levels) or not present.issuperset(rmap.required_parkeys):
        return None
    # what the expressions see: the minimised header plus META_X_Y aliases (aliases win)
    visible = {key: key for key in minimized_keys}
    visible.update({key.replace(".", "_"): key for key in minimized_keys if "." in key})
    expression_names: dict[str, str] = {}
    for expression in (rmap.omit, rmap.relevance):
        if expression.is_constant:
            continue
        for name in expression.names:
            if name not in visible:
                return None  # an unknown name: the interpreted path logs the failure
            expression_names[name] = visible[name]
    relevance_keys: list[str] = []
    for expression in rmap.parkey_relevance.values():
        for name in expression.names:
            if name in PARKEY_RELEVANCE_CONSTANTS:
                continue
            if name not in visible:
                return None
            relevance_keys.append(visible[name])
    no_match = None
    retried = bool(fallback) and retry is not None and retry_keys is not None and isinstance(selector, MatchSelector)
    if not retried:
        retry, retry_keys, retry_derived = None, (), ()
    required = rmap.reffile_required in ("YES", "NONE")

    def worded(message: str) -> object:
        """A failed match's answer, by the failure's text."""
        return "NOT FOUND " + message if required else NOT_FOUND_NA

    if (not fallback or retried) and isinstance(selector, MatchSelector):
        # A failed match ("No match found.", or a value the Match does not accept): the
        # interpreted path's handling of it, as a function of the header the match saw and
        # the failure's text (with a fallback, the retry marker: RmapPlan._build retries).
        if do_not_reprocess is not None:
            relevance_keys += [key for key in do_not_reprocess_keys if key in present]

        def failed_match(header, message="No match found.", rule=do_not_reprocess):
            if rule is not None and rule(header):
                return NOT_FOUND_NA
            if retried:
                return _RETRY  # the fallback's second lookup answers (see RmapPlan._build)
            return worded(message)

        no_match = failed_match
    hook_keys = [key for key in precondition_keys or () if key in present] if precondition else []
    hook_keys += [key for key in retry_keys or () if key in present]
    for key in [*expression_names.values(), *relevance_keys, *hook_keys]:
        if key not in key_names:
            key_names.append(key)
    derived = tuple(dict.fromkeys([*(precondition_derived if precondition else ()), *retry_derived]))
    return RmapPlan(rmap, key_names, expression_names, no_match, precondition=precondition or None,
                    derived=derived, date_keys=list(dict.fromkeys(key for level in date_levels for key in level)),
                    retry=retry, retry_failed=worded if retry is not None else None)


def dataset_date(params: Mapping[str, str], date_keys: tuple[str, ...]) -> str | LookupFailure:
    """The UseAfter lookup date of a minimised header, or the failure (its text) if it does not parse."""
    try:
        return lookup_date([params[key] for key in date_keys], date_keys)
    except LookupFailure as failure:
        return failure


class InstrumentPlan:
    """Every requested type of one instrument, memoised as a whole.

    Datasets of one instrument mode (same detector, filters, subarray, ...) but
    different dates are the bulk of an archive.  Keyed by the values that any of
    the types' plans reads (never the dates), the memo gives each type's outcome
    at once, so a dataset costs one lookup plus one bisection per dated type.
    Types whose plans also key on derived parts (a hook's date class) are looked
    up per dataset in their own plans instead (``live``): a mode's datasets on
    the other side of a hook date then reuse the mode's other answers.

    Parameters
    ----------
    reftypes : sequence of str
        The requested types, in answer order (lower case).
    plans : mapping
        reftype -> :class:`RmapPlan` / :class:`ConstantPlan`, or None (or absent)
        for a type that the interpreted path answers.

    Attributes
    ----------
    answers : dict
        The answers that never change (constant types), in answer order, with a
        None placeholder for every other type so that the order is kept.
    dynamic : tuple
        ``(reftype, plan)`` of the types memoised per mode, ``plan`` None for
        interpreted ones.
    live : tuple
        ``(reftype, plan)`` of the types with derived key parts.
    """

    __slots__ = ("answers", "dynamic", "live", "key_names", "key_of", "memo")

    def __init__(self, reftypes: Sequence[str], plans: Mapping[str, object]):
        self.answers: dict[str, object] = {}
        dynamic: list[tuple[str, object]] = []
        live: list[tuple[str, RmapPlan]] = []
        for reftype in reftypes:
            plan = plans.get(reftype)
            if isinstance(plan, ConstantPlan):
                if plan.answer is not OMITTED:
                    self.answers[reftype] = plan.answer
                continue
            self.answers[reftype] = None
            if isinstance(plan, RmapPlan) and plan.derived:
                live.append((reftype, plan))
            else:
                dynamic.append((reftype, plan))
        self.dynamic = tuple(dynamic)
        self.live = tuple(live)
        names = sorted({name for _reftype, plan in dynamic if plan is not None for name in plan.key_names})
        #: the minimised parameters a mode is told apart by (:meth:`mode`'s memo key, in order)
        self.key_names: tuple[str, ...] = tuple(names)
        self.key_of: Callable[[Mapping[str, str]], object] = memo_key_function(names)
        self.memo: dict[object, tuple] = {}

    def mode(self, params: Mapping[str, str]) -> "ModeAnswers":
        """The answers of the mode's types for the instrument mode of ``params`` (memoised)."""
        key = self.key_of(params)
        found = self.memo.get(key)
        if found is None:
            found = ModeAnswers(self.answers, tuple((reftype, plan, plan.outcome(params) if plan is not None else None)
                                                    for reftype, plan in self.dynamic), self.live)
            if len(self.memo) >= _MEMO_LIMIT:
                self.memo.clear()
            self.memo[key] = found
        return found


#: id(answers) -> (answers, True if no marker is among them); the answers tuples of outcomes
#: are shared by many modes (one per date table), so each is scanned once
_PLAIN_ANSWERS: dict[int, tuple[tuple, bool]] = {}


def _plain(answers: tuple) -> bool:
    """No :data:`SLOW` and no :data:`OMITTED` among ``answers`` (remembered per tuple)."""
    found = _PLAIN_ANSWERS.get(id(answers))
    if found is not None and found[0] is answers:
        return found[1]
    plain = not any(map(operator.is_, answers, itertools.repeat(SLOW))) and \
        not any(map(operator.is_, answers, itertools.repeat(OMITTED)))
    if len(_PLAIN_ANSWERS) >= _MEMO_LIMIT:
        _PLAIN_ANSWERS.clear()
    _PLAIN_ANSWERS[id(answers)] = (answers, plain)  # holding the tuple keeps its id unique
    return plain


class ModeAnswers:
    """One instrument mode's answers, arranged for the per-dataset loop.

    Built once per mode from the types' outcomes, so that a dataset of the mode
    costs one dict copy, one date per distinct set of UseAfter parameters and one
    bisection per dated type, with no per-type checks.

    Attributes
    ----------
    answers : dict
        Every answer that does not depend on the date (constant types, undated
        outcomes), in answer order, with a placeholder for each other type;
        types omitted whatever the date are absent.
    dated : tuple
        ``(date_keys, ((reftype, breaks, answers, plan), ...))`` per distinct
        UseAfter parameters, for outcomes whose every answer is a plain one (no
        :data:`SLOW`, no :data:`OMITTED`); the plan answers a date that does not
        parse (:meth:`RmapPlan.bad_date`).
    checked : tuple
        ``(reftype, outcome or None)`` of the rest: outcomes with markers among
        their answers, and (None) types the interpreted path answers.
    live : tuple
        ``(reftype, plan)`` of the types whose outcome is looked up per dataset
        (:attr:`InstrumentPlan.live`).
    """

    __slots__ = ("answers", "dated", "checked", "live")

    def __init__(self, constant_answers: Mapping[str, object],
                 outcomes: Sequence[tuple[str, RmapPlan | None, Outcome | None]],
                 live: Sequence[tuple[str, RmapPlan]] = ()):
        self.live = tuple(live)
        answers = dict(constant_answers)
        dated: dict[tuple, list] = {}
        checked: list[tuple[str, Outcome | None]] = []
        for reftype, plan, outcome in outcomes:
            if outcome is None:
                checked.append((reftype, None))
                continue
            date_keys, breaks, choices = outcome
            if date_keys is None and choices[0] is OMITTED:
                del answers[reftype]
            elif date_keys is None and choices[0] is not SLOW:
                answers[reftype] = choices[0]
            elif date_keys is not None and _plain(choices):
                dated.setdefault(date_keys, []).append((reftype, breaks, choices, plan))
            else:
                checked.append((reftype, outcome))
        self.answers = answers
        self.dated = tuple((date_keys, tuple(entries)) for date_keys, entries in dated.items())
        self.checked = tuple(checked)
