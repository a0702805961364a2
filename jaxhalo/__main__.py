"""``python -m jaxhalo``: the same as the ``jaxhalo`` command."""

from .cli import entry

entry()
