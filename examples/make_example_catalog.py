"""Draw the example catalogue (the one bundled as ``jaxhalo/data/example_reflex.ecsv``) into a directory.

850 stars drawn from the 18-parameter continuity reflex model (Magellanic Stream apex),
40–160 kpc, |b| > 20 deg, with realistic per-star errors (see jaxhalo.mocks.reflex.ErrorModel).
The true parameters are written next to it as ``example_reflex_truth.json``. It writes into
``--out`` (default ``./example_catalog``) and never over the bundled files unless asked to:

    python examples/make_example_catalog.py --out example_catalog
    python examples/make_example_catalog.py --out jaxhalo/data      # regenerate the bundled copy
"""

import argparse
import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from jaxhalo.catalog.readers import write_catalog  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import make_reflex_mock  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="example_catalog", help="directory to write into (created)")
    DATA = Path(ap.parse_args().out)
    spec = ReflexModel("continuity", "ms")
    cat, info = make_reflex_mock(jax.random.PRNGKey(2025), 850, spec, r_range=(40.0, 160.0))
    DATA.mkdir(exist_ok=True)
    write_catalog(cat, DATA / "example_reflex.ecsv", overwrite=True)
    info["seed"] = 2025
    info["generator"] = "examples/make_example_catalog.py (jaxhalo.mocks.reflex.make_reflex_mock)"
    (DATA / "example_reflex_truth.json").write_text(json.dumps(info, indent=2))
    print(f"wrote {len(cat)} stars to {DATA / 'example_reflex.ecsv'}")
