"""``python -m jaxhalo.cli``: the same as the ``jaxhalo`` command."""

import sys

from . import main

sys.exit(main())
