"""``python -m jaxhalo``: the same as the ``jaxhalo`` command."""

import sys

from .cli import main

sys.exit(main())
