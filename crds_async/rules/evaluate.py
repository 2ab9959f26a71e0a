"""Evaluation: dataset header -> {reftype: best reference}, as the reference computes it.

:class:`Evaluator` holds one loaded :class:`~.model.Context` and answers
``evaluate(header, reftypes)`` with exactly what the reference's
``getrecommendations(header, reftypes, context, fast=True)`` returns: file
names, ``"NOT FOUND n/a"``, ``"NOT FOUND <reason>"`` (its texts), omitted types
absent (rules.md §2).  Pure: no I/O after construction.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping

from ..errors import BadReferenceError, BadRulesError, ExpressionError, LookupFailure, RulesError
from ..memo import BoundedMemo
from .conditioning import SCALAR_TYPES, ConditionedValues, condition_value
from .model import NA_VALUES, NOT_FOUND_NA, OMIT_VALUES, Context, InstrumentMapping, ReferenceMapping
from .personality import Personality
from .relevance import apply_parkey_relevance, with_aliases
from .plans import OMITTED, SLOW, ConstantPlan, InstrumentPlan, RmapPlan, dataset_date, leaf_answer, plan_for
from .timestamps import lookup_date

__all__ = ["Evaluator", "NOT_FOUND_NA"]

log = logging.getLogger(__name__)
#: entries of the small memos: header key orders (one per kind of dataset file, typically), and
#: lists of requested types
_MEMO_LIMIT = 1024


class _Irrelevant(Exception):
    """The type does not apply: the answer is ``NOT FOUND n/a``."""


class _Omitted(Exception):
    """The type is left out of the answer."""


def _date_classes(inputs, personality: Personality) -> tuple:
    """A hook's derived memo-key parts: the side of its date thresholds an exposure starts on."""
    return (personality.date_class(inputs.thresholds),) if inputs and inputs.thresholds else ()


class _Recipes(dict):
    """``recipes[instrument value]``: how a header of one key order becomes minimised parameters.

    A recipe is ``(imap, template, keys, sources)``: the minimised parameters are
    ``template`` (every parameter ``UNDEFINED``, in order) updated with ``keys``
    taken from the header's ``sources``, conditioned.  Missing (None) for a value
    that is not a known instrument: the caller then takes the general path, which
    raises the reference's error.
    """

    __slots__ = ("evaluator", "source_of")

    def __init__(self, evaluator: "Evaluator", source_of: dict[str, object]):
        super().__init__()
        self.evaluator = evaluator
        self.source_of = source_of

    def __missing__(self, value: object):
        evaluator = self.evaluator
        context = evaluator.context
        try:
            instrument = evaluator.personality.context_instrument(
                {context.instrument_key: value}, context.instrument_key, context.name, context.instrument_names)
            imap = context.instrument(instrument)
        except Exception:  # noqa: BLE001 - the general path raises it, with its text
            return None
        template: dict[str, str] = {}
        keys: list[str] = []
        sources: list[object] = []
        for key, lower, upper in evaluator._minimized_names(imap):
            template[key] = "UNDEFINED"
            source = self.source_of.get(lower, self.source_of.get(upper))
            if source is not None:
                keys.append(key)
                sources.append(source)
        recipe = self[value] = (imap, template, keys, sources)
        return recipe


def _minimized_by(recipe: tuple, header: dict, conditioned: ConditionedValues) -> dict[str, str]:
    """A header's minimised parameters by a :class:`_Recipes` recipe: the template (every
    parameter ``UNDEFINED``, in order) updated with the recipe's keys from their sources."""
    _imap, template, keys, sources = recipe
    minimized = template.copy()
    minimized.update(zip(keys, map(conditioned.__getitem__, map(header.__getitem__, sources))))
    return minimized


#: modes remembered per :class:`_ModeTable` (then forgotten all at once: bounded memory)
_MODE_TABLE_LIMIT = 1 << 13


class _ModeTable:
    """For one header key order, instrument and requested types: which header keys tell a
    dataset's mode apart (``key_sources``, in the order of :attr:`InstrumentPlan.key_names`;
    a parameter no key feeds is ``UNDEFINED`` for every dataset, so not part of the key),
    the modes met by their conditioned values (``modes``), and where each UseAfter date
    parameter comes from (:meth:`date_sources`).

    The key is of conditioned values, never raw ones: ``True``, ``1`` and ``1.0`` are equal
    as dict keys but condition differently.
    """

    __slots__ = ("imap", "plan", "recipe", "source_of", "key_sources", "modes", "_dates")

    def __init__(self, imap: InstrumentMapping, plan: InstrumentPlan, recipe: tuple):
        self.imap, self.plan, self.recipe = imap, plan, recipe
        _imap, _template, keys, sources = recipe
        self.source_of = dict(zip(keys, sources))
        self.key_sources = tuple(self.source_of[name] for name in plan.key_names if name in self.source_of)
        self.modes: dict[tuple, object] = {}
        self._dates: dict[tuple, tuple] = {}

    def minimized(self, header: dict, conditioned: ConditionedValues) -> dict[str, str]:
        """The dataset's minimised parameters (as :meth:`Evaluator.minimized` makes them)."""
        return _minimized_by(self.recipe, header, conditioned)

    def date_sources(self, date_keys: tuple) -> tuple:
        """The header key of each UseAfter parameter (None: not in the header, ``UNDEFINED``)."""
        found = self._dates.get(date_keys)
        if found is None:
            found = self._dates[date_keys] = tuple(self.source_of.get(key) for key in date_keys)
        return found


class Evaluator:
    """Best references for many headers under one context.

    Parameters
    ----------
    context : Context
        A built context (:func:`crds_async.rules.model.build_context`).
    personality : Personality
        What differs by the context's observatory (``crds_async.instruments.rules_personality``;
        ``crds_async.engine.loader.new_evaluator`` pairs them): required, because a context
        evaluated with another observatory's personality gives other answers.
    allow_bad_rules, allow_bad_references : bool
        :meth:`check_bad_files` lets such rules / references pass.
    use_plans : bool
        Answer from memoised plans (:mod:`.plans`) wherever they apply; False
        walks the selector trees for every type (the reference's way, and what
        the tests compare the plans with).
    """

    def __init__(self, context: Context, personality: Personality, *,
                 allow_bad_rules: bool = False, allow_bad_references: bool = False, use_plans: bool = True):
        self.context = context
        self.use_plans = use_plans
        self.allow_bad_rules = allow_bad_rules
        self.allow_bad_references = allow_bad_references
        self.observatory = context.observatory
        self.personality = personality
        self._hooks: dict[str, tuple] = {}
        # Only these parameters can influence an answer: conditioning and renaming the
        # other (often hundreds of) header keywords of every dataset would be wasted work.
        self._wanted = {context.instrument_key.upper(), *self.personality.instrument_keywords}
        for imap in context.instruments.values():
            self._wanted.update(k.upper() for k in imap.required_parkeys)
        self._target_of: dict[str, str] = {}
        # Speed-ups, all memos of pure functions (results equal the plain loops'):
        self._layouts = BoundedMemo(_MEMO_LIMIT)                 # header key order -> (source, parameter)
        self._conditioned = ConditionedValues()                  # header value -> conditioned value
        self._minimized_keys: dict[str, list[tuple[str, str, str]]] = {}  # imap -> (key, lower, upper)
        self._programs = BoundedMemo(_MEMO_LIMIT)                # header key order -> minimising recipes
        self._plans: dict[str, dict[str, RmapPlan | ConstantPlan | None]] = {}  # imap -> reftype -> plan
        self._instrument_plans = BoundedMemo(_MEMO_LIMIT)        # (imap, requested types) -> plan

    # ------------------------------------------------------------------ public
    def wants(self, keyword: str) -> bool:
        """True if a dataset keyword can influence an answer (reading may skip the others)."""
        target = self._target_of.get(keyword)
        if target is None:
            target = self._classify(keyword)
        return bool(target)

    def _target(self, key: str) -> str:
        """The parameter name a header key becomes (JWST FITS -> META, Roman META -> ROMAN.META)."""
        renamed = self.personality.input_parameters({key: None})
        conditioned = {k.upper(): v for k, v in renamed.items()}
        return next(iter(self.personality.to_parkeys(conditioned)))

    def parameters(self, header: Mapping[str, object], *, fast: bool = True) -> dict[str, str]:
        """Conditioned, renamed parameters the rules can use (before minimising).

        Equal, on every parameter the context reads, to the reference's renaming
        (Roman entry renaming, conditioning, JWST FITS -> META) of the whole header.
        """
        if fast and type(header) is dict:
            # Datasets of one kind share their keyword order: which keys become which
            # parameters is worked out once per order, not once per keyword per dataset.
            layout = tuple(header)
            pairs = self._layouts.get(layout)
            if pairs is None:
                pairs = self._layout_pairs(layout)
            conditioned = self._conditioned
            return {target: conditioned[header[source]] for source, target in pairs}
        out: dict[str, str] = {}
        for key, value in header.items():
            target = self._target_of.get(key)
            if target is None:
                target = self._classify(key)
            if target and (fast or isinstance(value, SCALAR_TYPES)):
                out[target] = condition_value(value)
        return out

    def _classify(self, key: object) -> str:
        """The parameter ``key`` becomes, or '' if no rule can use it (remembered)."""
        target = self._target(str(key))
        target = target if target in self._wanted else ""
        self._target_of[key] = target
        return target

    def _layout_pairs(self, layout: tuple) -> list[tuple[str, str]]:
        """(source key, parameter) for one header key order; a later source of a parameter wins."""
        source_of: dict[str, object] = {}
        for key in layout:
            target = self._target_of.get(key)
            if target is None:
                target = self._classify(key)
            if target:
                source_of[target] = key
        pairs = [(source, target) for target, source in source_of.items()]
        return self._layouts.put(layout, pairs)

    def instrument_of(self, header: Mapping[str, object]) -> str:
        """Lower-case instrument of ``header`` in this context (UnknownInstrumentError)."""
        return self.personality.context_instrument(self.parameters(header), self.context.instrument_key,
                                                   self.context.name, self.context.instrument_names)

    def minimized(self, header: Mapping[str, object], *, fast: bool = True) -> tuple[InstrumentMapping, dict]:
        """The instrument mapping and the parameters the rules see (missing -> UNDEFINED)."""
        if fast and type(header) is dict:
            # Per header key order and instrument, which header key feeds which minimised
            # parameter is worked out once: a dataset then costs two C-level passes.
            (_sources, recipes, _tables), instrument = self._program_of(header)
            found = recipes[instrument]  # learnt on first sight (_Recipes.__missing__)
            if found is not None:
                return found[0], _minimized_by(found, header, self._conditioned)
        params = self.parameters(header, fast=fast)
        instrument = self.personality.context_instrument(params, self.context.instrument_key, self.context.name,
                                                         self.context.instrument_names)
        imap = self.context.instrument(instrument)
        get = params.get
        return imap, {k: get(lower, get(upper, "UNDEFINED")) for k, lower, upper in self._minimized_names(imap)}

    def _minimized_names(self, imap: InstrumentMapping) -> list[tuple[str, str, str]]:
        """(key, lower, upper) of each minimised parameter: a parameter is found lower case first."""
        keys = self._minimized_keys.get(imap.name)
        if keys is None:
            names = list(imap.required_parkeys) + [self.context.instrument_key]
            keys = self._minimized_keys[imap.name] = [(k, k.lower(), k.upper()) for k in names]
        return keys

    def _program_of(self, header: dict) -> tuple[tuple[list, dict, dict], object]:
        """(the :meth:`_layout_program` of the header's key order, its instrument value
        conditioned: the first of the instrument keys that is not ``UNDEFINED``)."""
        layout = tuple(header)
        program = self._programs.get(layout)
        if program is None:
            program = self._layout_program(layout)
        conditioned = self._conditioned
        instrument = None
        for source in program[0]:
            instrument = conditioned[header[source]]
            if instrument.upper() != "UNDEFINED":
                break
        return program, instrument

    def _layout_program(self, layout: tuple) -> tuple[list, dict, dict]:
        """(instrument's candidate source keys, {instrument value: minimising recipe},
        {(instrument value, requested types): _ModeTable or None}) of a key order.

        The recipes and tables are filled in as instruments are met (:class:`_Recipes`,
        :meth:`_mode_table`).
        """
        pairs = self._layouts.get(layout) or self._layout_pairs(layout)
        source_of = {target: source for source, target in pairs}
        candidates = (self.context.instrument_key.upper(), self.context.instrument_key.lower(),
                      *self.personality.instrument_keywords)
        instrument_sources = [source_of[target] for target in candidates if target in source_of]
        return self._programs.put(layout, (instrument_sources, _Recipes(self, source_of), {}))

    def evaluate(self, header: Mapping[str, object], reftypes: Iterable[str] | None = None,
                 *, fast: bool = True) -> dict[str, object]:
        """``{reftype: answer}`` for ``header``; omitted types are absent.

        Raises
        ------
        UnknownInstrumentError
            No instrument keyword, or an instrument the context lacks.
        RulesError
            The instrument's rules could not be loaded.
        """
        return self.evaluate_dataset(header, reftypes, fast=fast)[1]

    def evaluate_dataset(self, header: Mapping[str, object], reftypes: Iterable[str] | None = None,
                         *, fast: bool = True) -> tuple[str, dict[str, object]]:
        """``(instrument, answers)``: :meth:`evaluate` plus the instrument it used, in one pass."""
        if fast and self.use_plans and type(header) is dict and (reftypes is None or type(reftypes) is tuple):
            found = self._by_mode_table(header, reftypes)
            if found is not None:
                return found
        imap, minimized = self.minimized(header, fast=fast)
        mode = self._instrument_plan(imap, reftypes).mode(minimized)
        return imap.instrument, self._mode_answers(imap, mode, minimized)

    def _by_mode_table(self, header: dict, reftypes: tuple | None) -> tuple[str, dict[str, object]] | None:
        """:meth:`evaluate_dataset` of a header whose key order and instrument were seen, or
        None (the general path answers).

        A dataset's mode is found by its conditioned values of the parameters that tell modes
        apart, read straight from the header (:class:`_ModeTable`): its minimised parameters
        are only built for a mode never seen, or one whose answers need them (types with
        derived key parts, checked outcomes, a date that does not parse).  Measured on a
        campaign's two contexts (hst_0600 -> hst_0729): about a quarter of a dataset's
        evaluation.
        """
        (_sources, recipes, tables), instrument = self._program_of(header)
        conditioned = self._conditioned
        try:
            table = tables[instrument, reftypes]
        except KeyError:
            table = tables[instrument, reftypes] = self._mode_table(recipes[instrument], reftypes)
        except TypeError:  # an unhashable requested type: the general path words it
            return None
        if table is None:
            return None
        key = tuple(map(conditioned.__getitem__, map(header.__getitem__, table.key_sources)))
        mode = table.modes.get(key)
        minimized = None
        if mode is None:
            minimized = table.minimized(header, conditioned)
            mode = table.plan.mode(minimized)
            if len(table.modes) >= _MODE_TABLE_LIMIT:
                table.modes.clear()
            table.modes[key] = mode
        if minimized is None and not mode.live and not mode.checked:
            result = mode.answers.copy()
            for date_keys, entries in mode.dated:
                values = [conditioned[header[source]] if source is not None else "UNDEFINED"
                          for source in table.date_sources(date_keys)]
                try:
                    date = lookup_date(values, date_keys)
                except LookupFailure:
                    break  # the general loop words the failure per type
                for reftype, breaks, answers, _plan in entries:
                    result[reftype] = answers[bisect_right(breaks, date)]
            else:
                return table.imap.instrument, result
        if minimized is None:
            minimized = table.minimized(header, conditioned)
        return table.imap.instrument, self._mode_answers(table.imap, mode, minimized)

    def _mode_table(self, recipe: tuple | None, reftypes: tuple | None) -> "_ModeTable | None":
        """The :class:`_ModeTable` of a minimising recipe and requested types, or None (the
        instrument is unknown, or a parameter that tells modes apart is not minimised)."""
        if recipe is None:
            return None
        imap, template, _keys, _sources = recipe
        plan = self._instrument_plan(imap, reftypes)
        if any(name not in template for name in plan.key_names):
            return None
        return _ModeTable(imap, plan, recipe)

    def _mode_answers(self, imap: InstrumentMapping, mode, minimized: dict) -> dict[str, object]:
        """The answers of a dataset of ``mode`` (:meth:`InstrumentPlan.mode`), given its
        minimised parameters."""
        result = mode.answers.copy()  # the date-free answers, in order, with a slot for each other type
        dates: dict[tuple, object] = {}
        slow: list[str] = []
        for date_keys, entries in mode.dated:
            date = dates[date_keys] = dataset_date(minimized, date_keys)
            if type(date) is not str:  # the date does not parse: the lookup fails with its text
                for reftype, _breaks, _answers, plan in entries:
                    answer = plan.bad_date(minimized, date)
                    if answer is SLOW:
                        slow.append(reftype)
                    else:
                        result[reftype] = answer
                continue
            for reftype, breaks, answers, _plan in entries:
                result[reftype] = answers[bisect_right(breaks, date)]
        checked = mode.checked
        if mode.live:
            checked = checked + tuple((reftype, plan.outcome(minimized)) for reftype, plan in mode.live)
        for reftype, outcome in checked:
            if outcome is not None:
                date_keys, breaks, answers = outcome
                if date_keys is None:
                    answer = answers[0]
                else:
                    date = dates.get(date_keys)
                    if date is None:
                        date = dates[date_keys] = dataset_date(minimized, date_keys)
                    answer = SLOW if type(date) is not str else answers[bisect_right(breaks, date)]
                if answer is not SLOW:
                    if answer is OMITTED:
                        result.pop(reftype, None)
                    else:
                        result[reftype] = answer
                    continue
            slow.append(reftype)
        if slow:
            names = with_aliases(minimized)  # what the interpreted path's expressions see
            for reftype in slow:
                answer = self._answer(imap, reftype, minimized, names)
                if answer is None:
                    result.pop(reftype, None)
                else:
                    result[reftype] = answer
        return result

    def _instrument_plan(self, imap: InstrumentMapping, reftypes: Iterable[str] | None) -> InstrumentPlan:
        """The memoised plan of ``imap`` for these requested types (all of the imap's by default)."""
        if not reftypes:
            key: object = (imap.name, None)
            found = self._instrument_plans.get(key)
            if found is None:
                found = self._new_instrument_plan(key, imap, list(imap.reftypes))
            return found
        try:
            key = (imap.name, reftypes if type(reftypes) is tuple else tuple(reftypes))
            found = self._instrument_plans.get(key)
        except TypeError:  # unhashable items: no memo
            return InstrumentPlan([str(t).lower() for t in reftypes], self._plans_for(imap))
        if found is None:
            found = self._new_instrument_plan(key, imap, [str(t).lower() for t in key[1]])
        return found

    def _new_instrument_plan(self, key: object, imap: InstrumentMapping, include: list[str]) -> InstrumentPlan:
        plans = self._plans_for(imap)
        return self._instrument_plans.put(key, InstrumentPlan(include, plans))

    def _plans_for(self, imap: InstrumentMapping) -> dict[str, RmapPlan | ConstantPlan | None]:
        """Answer plans of the instrument's rmaps (None: the interpreted path answers that type), built once."""
        plans = self._plans.get(imap.name)
        if plans is not None:
            return plans
        keys = list(imap.required_parkeys) + [self.context.instrument_key]
        plans: dict[str, RmapPlan | ConstantPlan | None] = {}
        for reftype, value in imap.reftypes.items() if self.use_plans else ():
            if value in NA_VALUES:
                plans[reftype] = ConstantPlan(NOT_FOUND_NA)
            elif value in OMIT_VALUES:
                plans[reftype] = ConstantPlan(OMITTED)
            elif reftype in imap.rmaps:
                rmap = imap.rmaps[reftype]
                try:
                    precondition, fallback = self._hooks_of(rmap)
                except RulesError:
                    plans[reftype] = None  # the interpreted path answers this type with the error
                    continue
                personal = self.personality
                # a precondition hook joins the plan if what it reads is declared
                inputs = personal.hook_inputs(precondition) if precondition is not None else None
                retry_inputs = personal.hook_inputs(fallback) if fallback is not None else None
                plans[reftype] = plan_for(rmap, keys, precondition=precondition,
                                          precondition_keys=inputs.keys if inputs else None,
                                          precondition_derived=_date_classes(inputs, personal),
                                          fallback=fallback is not None,
                                          do_not_reprocess=personal.is_do_not_reprocess,
                                          do_not_reprocess_keys=personal.do_not_reprocess_keys,
                                          retry=self._second_lookup(rmap, fallback) if retry_inputs else None,
                                          retry_keys=retry_inputs.keys if retry_inputs else None,
                                          retry_derived=_date_classes(retry_inputs, personal))
        self._plans[imap.name] = plans
        return plans

    def _second_lookup(self, rmap: ReferenceMapping, fallback) -> Callable[[Mapping[str, str]], dict[str, str]]:
        """``header -> header`` of a fallback's second match, as :meth:`_best_ref` builds it."""
        def second_lookup(header: Mapping[str, str]) -> dict[str, str]:
            return apply_parkey_relevance(rmap, self._rmap_minimized(rmap, fallback(header)))
        return second_lookup

    def check_bad_files(self, instrument: str, result: Mapping[str, object]) -> None:
        """Raise BadRulesError / BadReferenceError as the reference's non-fast mode does."""
        bad = self.context.bad_files
        if not bad:
            return
        imap = self.context.instruments.get(instrument)
        names = set(imap.mapping_names()) if imap else {self.context.name}
        hits = sorted(names & bad)
        if hits and not self.allow_bad_rules:
            raise BadRulesError(f"Final context {self.context.name!r} is marked as scientifically invalid "
                                f"based on: {hits!r}")
        for reftype, answer in result.items():
            if isinstance(answer, str) and answer.rsplit("/", 1)[-1] in bad and not self.allow_bad_references:
                raise BadReferenceError(f"Recommended reference {answer.rsplit('/', 1)[-1]!r} of type "
                                        f"{reftype!r} is designated scientifically invalid.")

    # ------------------------------------------------------------------ per type
    def _answer(self, imap: InstrumentMapping, reftype: str, header: dict, names: dict) -> object:
        if reftype not in imap.reftypes:
            return f"NOT FOUND Unknown reference type {reftype!r}"
        value = imap.reftypes[reftype]
        if value in NA_VALUES:
            return NOT_FOUND_NA
        if value in OMIT_VALUES:
            return None
        try:
            answer = self._best_ref(imap.rmaps[reftype], header, names)
            return None if answer is OMITTED else answer
        except _Irrelevant:
            return NOT_FOUND_NA
        except _Omitted:
            return None
        except Exception as exc:  # noqa: BLE001 - the reference turns every failure into text
            return "NOT FOUND " + str(exc)

    def _hooks_of(self, rmap: ReferenceMapping) -> tuple:
        hooks = self._hooks.get(rmap.name)
        if hooks is None:
            try:
                hooks = self.personality.hooks_of(rmap.instrument, rmap.filekind, rmap.header.get("hooks"))
            except RulesError as exc:  # an unknown hook: this rmap's error, for its type only
                raise RulesError(f"{rmap.name}: {exc}") from None
            self._hooks[rmap.name] = hooks
        return hooks

    def _best_ref(self, rmap: ReferenceMapping, header_in: dict, names: dict) -> object:
        omit, relevance = rmap.omit, rmap.relevance
        if omit.is_constant:
            if omit.constant:
                raise _Omitted
        else:
            try:
                if omit.evaluate(names):
                    raise _Omitted
            except ExpressionError as exc:
                log.warning("Failed checking OMIT for %r %r with expr %r : %s",
                            rmap.instrument, rmap.filekind, omit.source, exc)
        if relevance.is_constant:
            if not relevance.constant:
                raise _Irrelevant
        else:
            try:
                if not relevance.evaluate(names):
                    raise _Irrelevant
            except ExpressionError as exc:
                log.warning("Failed checking relevance for %r %r with expr %r : %s",
                            rmap.instrument, rmap.filekind, relevance.source, exc)
        precondition, fallback = self._hooks_of(rmap)
        header = precondition(header_in) if precondition else header_in
        header = apply_parkey_relevance(rmap, header)
        try:
            best = rmap.selector.choose(header)
        except Exception as first_failure:
            do_not_reprocess = self.personality.is_do_not_reprocess
            if do_not_reprocess is not None and do_not_reprocess(header):
                raise _Irrelevant from first_failure
            retry = fallback(header_in) if fallback else None
            try:
                if not retry:
                    raise
                retry = self._rmap_minimized(rmap, retry)
                retry = apply_parkey_relevance(rmap, retry)
                best = rmap.selector.choose(retry)
            except Exception:
                if rmap.reffile_required in ("YES", "NONE"):
                    raise
                raise _Irrelevant from None
        return leaf_answer(best)  # N/A and OMIT leaves, as the plans read them

    def _rmap_minimized(self, rmap: ReferenceMapping, header: Mapping[str, str]) -> dict[str, str]:
        params = self.personality.to_parkeys(header)
        return {k: params.get(k.lower(), params.get(k.upper(), "UNDEFINED")) for k in rmap.required_parkeys}
