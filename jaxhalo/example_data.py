"""The bundled example: 850 mock halo stars (40-160 kpc) drawn from the continuity reflex model.

``jaxhalo fit`` with no catalogue fits this file; :func:`example_catalog` reads it and
:func:`example_truth` returns the parameters it was drawn with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .catalog.structure import StarCatalog

__all__ = ["EXAMPLE_CATALOG", "EXAMPLE_TRUTH", "example_catalog", "example_truth"]

#: Path of the bundled example catalogue (ECSV, 850 stars).
EXAMPLE_CATALOG: Path = Path(__file__).resolve().parent / "data" / "example_reflex.ecsv"
#: Path of the JSON file with the model specification and true parameters of the example.
EXAMPLE_TRUTH: Path = Path(__file__).resolve().parent / "data" / "example_reflex_truth.json"


def example_catalog() -> StarCatalog:
    """The bundled example catalogue as a validated :class:`~jaxhalo.catalog.structure.StarCatalog`."""
    from .catalog.readers import read_catalog  # deferred: astropy + JAX load only when read

    return read_catalog(EXAMPLE_CATALOG)


def example_truth() -> dict:
    """``{"spec": {"form", "apex", ...}, "truth": {parameter: value}}`` of the bundled example."""
    return json.loads(EXAMPLE_TRUTH.read_text())
