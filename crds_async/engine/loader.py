"""Load a context from a CRDS cache: the files read here, the rules built by the pure core.

:func:`load_context` resolves the name (symbolic names from the cache's
server_config), reads each mapping of the closure once, and hands the parsed
mappings to :func:`crds_async.rules.model.build_context` with the observatory's
extra parameters and the server's bad-files list.  :func:`new_evaluator` pairs a
loaded context with its observatory's personality and the configuration's
bad-file policy.
"""

from __future__ import annotations

from ..config import Config
from ..errors import ConfigError
from ..instruments import rules_personality
from ..rules.contexts import observatory_of_spec
from ..rules.evaluate import Evaluator
from ..rules.model import Context, build_context
from ..fetch.mapping_files import FileMappingStore
from ..fetch.server_config import cached_server_config, resolve_cached_context

__all__ = ["load_context", "new_evaluator", "load_reference_mapping"]


def load_context(context: str, cfg: Config, observatory: str | None = None) -> Context:
    """Load a context (literal ``.pmap`` or symbolic name) from the cache.

    Parameters
    ----------
    context : str
        ``hst_0729.pmap``, ``jwst-operational``, ``hst-edit``, ...
    cfg : Config
        Where the cache is; ``ignore_mapping_checksum``.
    observatory : str, optional
        Needed only when ``context`` does not name it (``latest``).

    Raises
    ------
    ConfigError
        Unresolvable context name, unknown observatory, or a .pmap not in the cache.
    RulesError
        The .pmap itself cannot be loaded.  Errors in an instrument's .imap or
        .rmaps are kept in ``Context.load_errors`` and raised when that
        instrument is evaluated.
    """
    observatory = (observatory or observatory_of_spec(context) or cfg.observatory or "").lower()
    if not observatory:
        raise ConfigError(f"cannot tell the observatory of context {context!r}: set CRDS_OBSERVATORY")
    config_dir = cfg.config_dir(observatory)
    name = resolve_cached_context(context, config_dir)
    mapping_dir = cfg.mapping_dir(observatory)
    if not (mapping_dir / name).is_file():
        raise ConfigError(f"{name} is not in {mapping_dir}: set CRDS_PATH to a CRDS cache that has it, "
                          "or fetch it with `crds-batch sync --contexts " + name + "`")
    store = FileMappingStore(mapping_dir, verify_checksum=not cfg.ignore_mapping_checksum)
    bad_files = frozenset(str(f) for f in cached_server_config(config_dir).get("bad_files_list", ()))
    return build_context(store.load(name), observatory, store.load,
                         extra_keys=rules_personality(observatory).extra_keys, bad_files=bad_files)


def new_evaluator(ctx: Context, cfg: Config, *, use_plans: bool = True) -> Evaluator:
    """An :class:`Evaluator` of ``ctx`` with its observatory's personality and ``cfg``'s bad-file policy."""
    return Evaluator(ctx, rules_personality(ctx.observatory), allow_bad_rules=cfg.allow_bad_rules,
                     allow_bad_references=cfg.allow_bad_references, use_plans=use_plans)


def load_reference_mapping(path, observatory: str, *, verify_checksum: bool = True):
    """One .rmap file, compiled (:func:`crds_async.rules.model.build_reference_mapping`), with the
    observatory's extra parameters; raises :class:`RulesError` naming the file."""
    from ..fetch.mapping_files import load_mapping_file
    from ..rules.model import build_reference_mapping

    return build_reference_mapping(load_mapping_file(path, verify_checksum=verify_checksum), observatory,
                                   rules_personality(observatory).extra_keys)
