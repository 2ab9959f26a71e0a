"""The dataset archive side of CRDS: a catalogue of dataset parameters, served and fetched.

- :mod:`.catalogue`: an embedded SQLite catalogue ``dataset id -> parameters``, built
  incrementally from dataset files and parameter dumps (``crds-batch catalogue build``)
  and served read-only by ``crds-batch serve --datasets DB``.
- :mod:`.remote`: async client functions for the server's dataset RPCs
  (``get_dataset_ids``, ``get_dataset_headers_by_id``), paged and bounded.
"""
