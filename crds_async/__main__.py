"""``python -m crds_async`` is ``crds-batch``."""

import sys

from .cli import main

sys.exit(main())
