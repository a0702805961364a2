"""The reflex likelihood inside a hierarchical model with one latent true distance per star.

Draws a continuity-model mock with 10-25% distance errors, then fits it twice with NUTS:

1. the usual likelihood at the catalogue distances, with the first-order distance-error term
   of REFLEX_MODEL.md §5;
2. :func:`jaxhalo.inference.hierarchical.hierarchical_reflex_model`: every star's true distance is a
   parameter (prior rho ∝ r_gal^-2.5 times d^2 on 40-160 kpc, catalogue distance as a
   Gaussian measurement with the catalogue's *fractional* error, sigma = f d), the reflex
   likelihood evaluated at the latent distance with no distance-error term -- N + 18
   parameters, sampled jointly.

With the default seed, 400 stars (truth 15 km/s at 40 kpc): first-order 50.6 +- 6.8 km/s, latent
distances 22.0 +- 7.4 (33.8 +- 7.0 with ``distance_error="absolute"``, the model before issue 17,
whose latent distances came out 6 % short), the true distances 16.0 +- 6.7 (one chain). The latent
posterior's mean |d - d_true| is 9.6 kpc against the catalogue's 13.6 kpc. v_travel is that
sensitive to the distance scale because the solar reflex (|v_sun| = 250 km/s) fixes the proper
motions' scale: 1 % in distance is ~2.5 km/s of travel velocity along -v_sun, near where the
default apex lies. Coverage over many mocks: benchmarks/hierarchical_coverage.py.

It prints v_travel at 40 and 120 kpc from both against the truth, and how much closer the
latent distances are to the true ones than the catalogue's.

    python examples/hierarchical_distances.py [--n 400] [--warmup 300] [--samples 300]
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxhalo.inference.hierarchical import run_hierarchical_nuts  # noqa: E402
from jaxhalo.inference.ml import fit_map  # noqa: E402
from jaxhalo.inference.nuts import run_nuts  # noqa: E402
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel  # noqa: E402
from jaxhalo.mocks.reflex import ErrorModel, make_reflex_mock  # noqa: E402


def v_travel(spec, samples, R):
    return np.asarray(jnp.linalg.norm(spec.travel_at_radius(samples, jnp.asarray(R)), axis=-1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    spec = ReflexModel("continuity", "galactic")
    cat, info = make_reflex_mock(jax.random.PRNGKey(args.seed), args.n, spec, errors=ErrorModel(frac_distance=(0.10, 0.25)))
    truth = info["truth"]
    data = ReflexData.from_catalog(cat)
    p0 = fit_map(data, spec)
    first = run_nuts(data, spec, num_chains=2, num_warmup=args.warmup, num_samples=args.samples, init_params=p0,
                     progress_bar=False).get_samples()
    hier_mcmc = run_hierarchical_nuts(cat, spec, init_params=p0, num_warmup=args.warmup, num_samples=args.samples)
    hier = hier_mcmc.get_samples()
    print(f"{args.n} stars, {len(spec.param_names) + args.n} parameters in the hierarchical model")
    for R in (40.0, 120.0):
        t = float(np.linalg.norm(spec.travel_at_radius(truth, jnp.asarray(R))))
        for name, s in (("first-order", first), ("latent distances", hier)):
            v = v_travel(spec, s, R)
            print(f"v_travel({R:g} kpc): {name:17s} {np.median(v):6.1f} +- {np.std(v):4.1f}   (truth {t:.1f})")
    d_true = cat.extra["distance_true"]
    d_post = np.median(np.asarray(hier["distance"]), axis=0)
    print(f"mean |d - d_true|: catalogue {np.mean(np.abs(cat.distance - d_true)):.2f} kpc, "
          f"latent posterior median {np.mean(np.abs(d_post - d_true)):.2f} kpc")
