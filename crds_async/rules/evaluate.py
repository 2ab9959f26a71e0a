"""Evaluation: dataset header -> {reftype: best reference}, as the reference computes it.

:class:`Evaluator` holds one loaded :class:`~.model.Context` and answers
``evaluate(header, reftypes)`` with exactly what the reference's
``getrecommendations(header, reftypes, context, fast=True)`` returns: file
names, ``"NOT FOUND n/a"``, ``"NOT FOUND <reason>"`` (its texts), omitted types
absent (rules.md §2).  Pure: no I/O after construction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from ..config import Config
from ..errors import BadReferenceError, BadRulesError, ExpressionError
from ..instruments import INSTRUMENT_KEYWORDS, context_instrument, personality
from ..instruments.hst_hooks import find_hook, is_dnr_dataset
from .conditioning import SCALAR_TYPES, condition_value
from .model import NA_VALUES, OMIT_VALUES, Context, InstrumentMapping, ReferenceMapping

__all__ = ["Evaluator", "NOT_FOUND_NA"]

log = logging.getLogger(__name__)
NOT_FOUND_NA = "NOT FOUND n/a"


class _Irrelevant(Exception):
    """The type does not apply: the answer is ``NOT FOUND n/a``."""


class _Omitted(Exception):
    """The type is left out of the answer."""


def _with_aliases(header: Mapping[str, str]) -> dict[str, object]:
    """The header plus ``META_X_Y`` aliases of dotted keys, for expressions."""
    names: dict[str, object] = dict(header)
    for key, value in header.items():
        if "." in key:
            names[key.replace(".", "_")] = value
    return names


class Evaluator:
    """Best references for many headers under one context.

    Parameters
    ----------
    context : Context
        From :func:`crds_async.rules.load_context`.
    cfg : Config
        For ``allow_bad_rules`` / ``allow_bad_references``.
    """

    def __init__(self, context: Context, cfg: Config | None = None):
        self.context = context
        self.cfg = cfg or Config()
        self.observatory = context.observatory
        self._personality = personality(context.observatory) if context.observatory != "tobs" else None
        self._hooks: dict[str, tuple] = {}
        # Only these parameters can influence an answer: conditioning and renaming the
        # other (often hundreds of) header keywords of every dataset would be wasted work.
        self._wanted = {context.instrument_key.upper(), *INSTRUMENT_KEYWORDS}
        for imap in context.instruments.values():
            self._wanted.update(k.upper() for k in imap.required_parkeys)
        self._target_of: dict[str, str] = {}

    # ------------------------------------------------------------------ public
    def wants(self, keyword: str) -> bool:
        """True if a dataset keyword can influence an answer (reading may skip the others)."""
        target = self._target_of.get(keyword)
        if target is None:
            target = self._target(keyword)
            self._target_of[keyword] = target = target if target in self._wanted else ""
        return bool(target)

    def _target(self, key: str) -> str:
        """The parameter name a header key becomes (JWST FITS -> META, Roman META -> ROMAN.META)."""
        if self._personality is None:
            return key.upper()
        renamed = self._personality.input_parameters({key: None})
        conditioned = {k.upper(): v for k, v in renamed.items()}
        return next(iter(self._personality.to_parkeys(conditioned)))

    def parameters(self, header: Mapping[str, object], *, fast: bool = True) -> dict[str, str]:
        """Conditioned, renamed parameters the rules can use (before minimising).

        Equal, on every parameter the context reads, to the reference's renaming
        (Roman entry renaming, conditioning, JWST FITS -> META) of the whole header.
        """
        out: dict[str, str] = {}
        targets = self._target_of
        wanted = self._wanted
        for key, value in header.items():
            target = targets.get(key)
            if target is None:
                target = self._target(str(key))
                targets[key] = target = target if target in wanted else ""
            if target and (fast or isinstance(value, SCALAR_TYPES)):
                out[target] = condition_value(value)
        return out

    def instrument_of(self, header: Mapping[str, object]) -> str:
        """Lower-case instrument of ``header`` in this context (UnknownInstrumentError)."""
        return context_instrument(self.parameters(header), self.context.instrument_key, self.context.name,
                                  self.context.instrument_names)

    def minimized(self, header: Mapping[str, object], *, fast: bool = True) -> tuple[InstrumentMapping, dict]:
        """The instrument mapping and the parameters the rules see (missing -> UNDEFINED)."""
        params = self.parameters(header, fast=fast)
        instrument = context_instrument(params, self.context.instrument_key, self.context.name,
                                        self.context.instrument_names)
        imap = self.context.instrument(instrument)
        keys = list(imap.required_parkeys) + [self.context.instrument_key]
        return imap, {k: params.get(k.lower(), params.get(k.upper(), "UNDEFINED")) for k in keys}

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
        imap, minimized = self.minimized(header, fast=fast)
        include = [str(t).lower() for t in reftypes] if reftypes else list(imap.reftypes)
        names = _with_aliases(minimized)  # what relevance/omit expressions see: same for every type
        result: dict[str, object] = {}
        for reftype in include:
            answer = self._answer(imap, reftype, minimized, names)
            if answer is not None:
                result[reftype] = answer
        return imap.instrument, result

    def check_bad_files(self, instrument: str, result: Mapping[str, object]) -> None:
        """Raise BadRulesError / BadReferenceError as the reference's non-fast mode does."""
        bad = self.context.bad_files
        if not bad:
            return
        imap = self.context.instruments.get(instrument)
        names = set(imap.mapping_names()) if imap else {self.context.name}
        hits = sorted(names & bad)
        if hits and not self.cfg.allow_bad_rules:
            raise BadRulesError(f"Final context {self.context.name!r} is marked as scientifically invalid "
                                f"based on: {hits!r}")
        for reftype, answer in result.items():
            if isinstance(answer, str) and answer.rsplit("/", 1)[-1] in bad and not self.cfg.allow_bad_references:
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
            return self._best_ref(imap.rmaps[reftype], header, names)
        except _Irrelevant:
            return NOT_FOUND_NA
        except _Omitted:
            return None
        except Exception as exc:  # noqa: BLE001 - the reference turns every failure into text
            return "NOT FOUND " + str(exc)

    def _hooks_of(self, rmap: ReferenceMapping) -> tuple:
        hooks = self._hooks.get(rmap.name)
        if hooks is None:
            if self.observatory == "hst":
                rmap_hooks = rmap.header.get("hooks")
                hooks = (find_hook("precondition_header", rmap.instrument, rmap.filekind, rmap_hooks),
                         find_hook("fallback_header", rmap.instrument, rmap.filekind, rmap_hooks))
            else:
                hooks = (None, None)
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
        header = self._apply_parkey_relevance(rmap, header)
        try:
            best = rmap.selector.choose(header)
        except Exception as first_failure:
            if self.observatory == "hst" and is_dnr_dataset(header):
                raise _Irrelevant from first_failure
            retry = fallback(header_in) if fallback else None
            try:
                if not retry:
                    raise
                retry = self._rmap_minimized(rmap, retry)
                retry = self._apply_parkey_relevance(rmap, retry)
                best = rmap.selector.choose(retry)
            except Exception:
                if rmap.reffile_required in ("YES", "NONE"):
                    raise
                raise _Irrelevant from None
        if isinstance(best, str):
            if best in NA_VALUES:
                raise _Irrelevant
            if best in OMIT_VALUES:
                raise _Omitted
        return best

    def _rmap_minimized(self, rmap: ReferenceMapping, header: Mapping[str, str]) -> dict[str, str]:
        params = self._personality.to_parkeys(header) if self._personality else dict(header)
        return {k: params.get(k.lower(), params.get(k.upper(), "UNDEFINED")) for k in rmap.required_parkeys}

    @staticmethod
    def _apply_parkey_relevance(rmap: ReferenceMapping, header: Mapping[str, str]) -> Mapping[str, str]:
        if not rmap.parkey_relevance:
            return header
        names = dict(header)
        for key in rmap.required_parkeys:
            if key not in names or names[key] in ("UNDEFINED", None):
                names[key] = "UNDEFINED"
        names = _with_aliases(names)
        names["keep_comments"] = False
        out = dict(header)
        for parkey in rmap.required_parkeys:
            expression = rmap.parkey_relevance.get(parkey.lower())
            if expression is not None:
                try:
                    relevant = expression.evaluate(names)
                except ExpressionError as exc:
                    raise ExpressionError(str(exc)) from None
                if not relevant:
                    out[parkey] = "N/A"
        return out
