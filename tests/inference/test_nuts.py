"""NUTS driver: the plain-JAX potential and post-processing equal numpyro's for the unit-cube model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import constrain_fn, potential_energy

from jaxhalo.inference.models import reflex_numpyro_model_unit
from jaxhalo.inference.nuts import unit_model_postprocess, unit_model_potential
from jaxhalo.inference.priors import PriorSet, unit_prior_table
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel
from jaxhalo.mocks.reflex import make_reflex_mock


@pytest.mark.parametrize("form,apex,kind,outlier", [
    ("continuity", "ms", "chandra", None),
    ("constant", "galactic", "reference", None),
    ("constant", "galactic", "chandra", "gaussian"),
])
def test_potential_and_postprocess_equal_numpyros(form, apex, kind, outlier):
    """At random unconstrained points (incl. far in the tails, |z| up to 8), the potential and its
    gradient equal numpyro's ``potential_energy`` of reflex_numpyro_model_unit to round-off, and the
    post-processed sites equal numpyro's ``constrain_fn(return_deterministic=True)``."""
    spec = ReflexModel(form, apex) if outlier is None else ReflexModel(form, apex, outlier=outlier)
    priors = PriorSet(kind=kind)
    cat, _ = make_reflex_mock(jax.random.PRNGKey(3), 150, ReflexModel(form, apex))
    data = ReflexData.from_catalog(cat)
    kw = dict(data=data, spec=spec, priors=priors)
    n = len(unit_prior_table(spec, priors))
    pot = unit_model_potential(data, spec, priors)
    post = unit_model_postprocess(spec, priors)
    ref = lambda z: potential_energy(reflex_numpyro_model_unit, (), kw, {"u": z})  # noqa: E731
    rng = np.random.default_rng(7)
    for scale in (0.5, 2.0, 8.0):
        z = jnp.asarray(rng.normal(0.0, scale, n))
        np.testing.assert_allclose(float(pot(z)), float(ref(z)), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(jax.grad(pot)(z)), np.asarray(jax.grad(ref)(z)), rtol=1e-9, atol=1e-9)
        want = constrain_fn(reflex_numpyro_model_unit, (), kw, {"u": z}, return_deterministic=True)
        got = post(z)
        assert set(got) == set(want)
        for k in want:
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-12, err_msg=k)


def test_postprocess_keeps_leading_axes():
    """Draws (chains, draws, P) map to (chains, draws) per site, as numpyro's samples."""
    spec, priors = ReflexModel("constant", "galactic"), PriorSet(kind="reference")
    n = len(unit_prior_table(spec, priors))
    z = jnp.zeros((2, 3, n))
    out = unit_model_postprocess(spec, priors)(z)
    assert out["u"].shape == (2, 3, n)
    assert all(v.shape == (2, 3) for k, v in out.items() if k != "u")
    assert any(k.startswith("sigma_") for k in out) and any(k.startswith("tau_") for k in out)


@pytest.mark.parametrize("chain_method,num_chains", [("vectorized", 2), ("sequential", 1)])
def test_chain_methods_sample_the_posterior(chain_method, num_chains):
    """Every way of running the chains gives draws of the right shapes around the ML point, the numpyro
    extra fields, and no divergences on a well-posed 300-star fit."""
    from jaxhalo.inference.ml import fit_map
    from jaxhalo.inference.nuts import run_nuts
    from jaxhalo.inference.nuts_programs import NUTS_EXTRA_FIELDS

    spec = ReflexModel("constant", "galactic")
    cat, _ = make_reflex_mock(jax.random.PRNGKey(4), 300, spec)
    data = ReflexData.from_catalog(cat)
    mp = fit_map(data, spec, key=jax.random.PRNGKey(0), n_starts=4)
    run = run_nuts(data, spec, key=jax.random.PRNGKey(2), num_chains=num_chains, num_warmup=150, num_samples=200,
                   init_params=mp, chain_method=chain_method, progress_bar=False)
    assert run.chain_method == chain_method
    grouped = run.get_samples(group_by_chain=True)
    assert grouped["v_travel"].shape == (num_chains, 200) and grouped["u"].shape[:2] == (num_chains, 200)
    assert run.get_samples()["v_travel"].shape == (num_chains * 200,)
    extra = run.get_extra_fields(group_by_chain=True)
    assert set(extra) == set(NUTS_EXTRA_FIELDS) and all(np.shape(v) == (num_chains, 200) for v in extra.values())
    assert int(np.sum(extra["diverging"])) == 0
    v = np.asarray(grouped["v_travel"]).ravel()
    # the ML point lies inside the bulk of the posterior draws
    assert np.quantile(v, 0.01) < float(mp["v_travel"]) < np.quantile(v, 0.99)
