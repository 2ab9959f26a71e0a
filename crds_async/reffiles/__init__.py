"""Reference files (FITS, ASDF, JSON, YAML): opening them by kind and certifying them.

:mod:`.kinds` names a file's kind, :mod:`.open` opens and verifies one with the
standard libraries (astropy, asdf, json, yaml), :mod:`.certify` checks one
against the rmap of a context that would select it.
"""
