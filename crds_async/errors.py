"""One root: ``except CrdsError`` catches every error crds_async raises.

CrdsError
  ConfigError          bad flag or CRDS_* value: stops the run
  RulesError           a mapping could not be loaded or evaluated
    MappingSyntaxError   text is not a legal mapping (names file and line)
    ChecksumError        a mapping's sha1sum header is missing or wrong
    BadFileError         a rules file or reference is on the bad-files list
      BadRulesError
      BadReferenceError
    LookupFailure        evaluation error whose text becomes "NOT FOUND <text>"
    ExpressionError      a relevance/omit expression failed to evaluate
      ExpressionNameError  ... because it names an unknown parameter
    UnknownInstrumentError
  HeaderError          unreadable dataset: travels as a value in a batch
  FetchError           server, transfer or cache
    DownloadChecksumError  size or sha1 differs from the server's
    FetchTimeout           also a builtin TimeoutError
    UnsafeNameError        a name from a server or file is not a plain file name
    ServiceError           the server answered with a JSON-RPC error

The reference client's names, raised at the API's boundary (``crds_async.api``):
``CrdsLookupError`` (a LookupFailure and a LookupError), ``CrdsUnknownInstrumentError``,
``CrdsConfigError``, ``CrdsNetworkError`` and ``CrdsDownloadError`` (FetchErrors),
``CrdsBadRulesError``, ``CrdsBadReferenceError``.

Exit statuses of ``crds-batch`` go by class (:func:`exit_code`): 0 done, 1 the run
finished but some datasets or files had problems, 2 fatal (usage, configuration,
unusable input, or a bug), 3 the server or the network failed (worth retrying later).
"""

from __future__ import annotations

__all__ = [
    "CrdsError",
    "ConfigError",
    "RulesError",
    "MappingSyntaxError",
    "ChecksumError",
    "BadFileError",
    "BadRulesError",
    "BadReferenceError",
    "LookupFailure",
    "UnknownInstrumentError",
    "ExpressionError",
    "ExpressionNameError",
    "HeaderError",
    "FetchError",
    "DownloadChecksumError",
    "FetchTimeout",
    "UnsafeNameError",
    "ServiceError",
    "CrdsLookupError",
    "CrdsUnknownInstrumentError",
    "CrdsConfigError",
    "CrdsNetworkError",
    "CrdsDownloadError",
    "CrdsBadRulesError",
    "CrdsBadReferenceError",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_FATAL",
    "EXIT_NETWORK",
    "exit_code",
]

EXIT_OK, EXIT_PROBLEMS, EXIT_FATAL, EXIT_NETWORK = 0, 1, 2, 3


class CrdsError(Exception):
    """Root of every crds_async error."""


class ConfigError(CrdsError, ValueError):
    """A CRDS_* variable, a flag or a context name is malformed or unusable."""


class RulesError(CrdsError):
    """A rules file (mapping) could not be loaded or evaluated."""


class MappingSyntaxError(RulesError):
    """The text of a mapping is not a legal CRDS mapping; names file and line."""


class ChecksumError(RulesError):
    """A mapping's ``sha1sum`` header is missing or does not match its text."""


class BadFileError(RulesError):
    """A rules file or reference is on the observatory's bad-files list."""


class BadRulesError(BadFileError):
    """The context uses rules marked scientifically invalid."""


class BadReferenceError(BadFileError):
    """A recommended reference is marked scientifically invalid."""


class LookupFailure(RulesError):
    """Evaluation of one reftype failed; ``str(exc)`` follows ``NOT FOUND``."""


class ExpressionError(RulesError):
    """A relevance or omit expression failed while being evaluated."""


class ExpressionNameError(ExpressionError, NameError):
    """An expression names a parameter the header does not have."""


class UnknownInstrumentError(RulesError):
    """The header names no instrument, or one the context does not know."""


class HeaderError(CrdsError):
    """A dataset file could not be read (not FITS/ASDF, truncated, unreadable)."""


class FetchError(CrdsError):
    """A server request, a transfer or a cache write failed."""


class DownloadChecksumError(FetchError):
    """A downloaded file's size or sha1 differs from what the server announced."""


class FetchTimeout(FetchError, TimeoutError):
    """A server request or transfer took longer than allowed."""


class UnsafeNameError(FetchError, ValueError):
    """A file name from a server or a file is not a plain, expected file name."""


class ServiceError(FetchError):
    """The server answered a JSON-RPC call with an error."""


# --- The reference client's names (``crds.core.exceptions``), for callers of the
# ``crds`` API who catch them.  Each subclasses this tree, so ``except CrdsError``
# and the finer classes above keep working; the facade (``crds_async.api``,
# ``crds_async.references_api``) raises these at its boundary.

class CrdsLookupError(LookupFailure, LookupError):
    """A best-reference lookup failed (the reference's ``CrdsLookupError``)."""


class CrdsUnknownInstrumentError(UnknownInstrumentError):
    """The context does not know the header's instrument (reference name)."""


class CrdsConfigError(ConfigError):
    """Configuration problem (the reference's ``CrdsConfigError``)."""


class CrdsNetworkError(FetchError):
    """The server could not be reached or answered badly (reference name)."""


class CrdsDownloadError(FetchError):
    """A file could not be made present in the cache (the reference's ``CrdsDownloadError``)."""


class CrdsBadRulesError(BadRulesError):
    """The context uses rules marked bad (reference name)."""


class CrdsBadReferenceError(BadReferenceError):
    """A recommended reference is marked bad (reference name)."""


def exit_code(exc: BaseException) -> int:
    """The exit status a run that stopped on ``exc`` ends with.

    A failed server or network (:class:`FetchError`, except a refused name, which is bad
    input) is :data:`EXIT_NETWORK`: the same command may succeed later.  Everything else,
    a usage or configuration error, unusable input or an unexpected exception, is
    :data:`EXIT_FATAL`.
    """
    if isinstance(exc, FetchError) and not isinstance(exc, UnsafeNameError):
        return EXIT_NETWORK
    return EXIT_FATAL
