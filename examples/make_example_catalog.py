"""Regenerate the bundled example catalogue ``jaxhalo/data/example_reflex.ecsv``.

850 stars drawn from the 18-parameter continuity reflex model (Magellanic Stream apex),
40–160 kpc, |b| > 20 deg, with realistic per-star errors (see jaxhalo.mocks.reflex.ErrorModel).
The true parameters are written next to it as ``example_reflex_truth.json``.

    python examples/make_example_catalog.py
"""

import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from jaxhalo.catalog.readers import write_catalog  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import make_reflex_mock  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "jaxhalo" / "data"

if __name__ == "__main__":
    spec = ReflexModel("continuity", "ms")
    cat, info = make_reflex_mock(jax.random.PRNGKey(2025), 850, spec, r_range=(40.0, 160.0))
    DATA.mkdir(exist_ok=True)
    write_catalog(cat, DATA / "example_reflex.ecsv", overwrite=True)
    info["seed"] = 2025
    info["generator"] = "examples/make_example_catalog.py (jaxhalo.mocks.reflex.make_reflex_mock)"
    (DATA / "example_reflex_truth.json").write_text(json.dumps(info, indent=2))
    print(f"wrote {len(cat)} stars to {DATA / 'example_reflex.ecsv'}")
