"""``python -m jaxhalo.cli``: the same as the ``jaxhalo`` command."""

from . import entry

entry()
