"""The ML stage: the plain-JAX objective equals numpyro's, warm starts reach the same optimum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import constrain_fn, log_density, unconstrain_fn

from jaxhalo.inference.ml import (
    constrained_params,
    fit_map,
    negative_log_posterior,
    unconstrained_params,
)
from jaxhalo.inference.models import reflex_numpyro_model
from jaxhalo.inference.priors import PriorSet, unit_prior_table
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel
from jaxhalo.mocks.reflex import make_reflex_mock


@pytest.mark.parametrize("form,apex,kind,outlier", [("continuity", "ms", "chandra", "none"),
                                                    ("constant", "galactic", "reference", "none"),
                                                    ("constant", "galactic", "chandra", "broad")])
def test_objective_equals_numpyro(form, apex, kind, outlier):
    """negative_log_posterior and constrained_params are hand-written stand-ins for numpyro's
    constrain_fn + log_density (faster to trace): same numbers at random unconstrained points, and
    unconstrained_params inverts constrained_params as numpyro's unconstrain_fn does."""
    spec, priors = ReflexModel(form, apex, outlier=outlier), PriorSet(kind=kind)
    data = ReflexData.from_catalog(make_reflex_mock(jax.random.PRNGKey(2), 150, ReflexModel(form, apex))[0])
    kw = {"data": data, "spec": spec, "priors": priors}
    f = negative_log_posterior(spec, priors)
    sites = [s for s, *_ in unit_prior_table(spec, priors)]

    @jax.jit
    def both(u):
        z = constrain_fn(reflex_numpyro_model, (), kw, u, return_deterministic=True)
        lp, _ = log_density(reflex_numpyro_model, (), kw, {n: z[n] for n in sites})
        back_ref = unconstrain_fn(reflex_numpyro_model, (), kw, {n: z[n] for n in sites})
        mine = constrained_params(spec, priors, u)
        return z, -lp, back_ref, mine, f(u, data), unconstrained_params(spec, priors, mine)

    rng = np.random.default_rng(0)
    u = {s: jnp.asarray(rng.uniform(-2.5, 2.5, 3)) for s in sites}
    z, nlp_ref, back_ref, mine, nlp, back = jax.vmap(both)(u)
    assert set(mine) == set(z)
    for n in z:
        np.testing.assert_allclose(np.asarray(mine[n]), np.asarray(z[n]), rtol=1e-13, err_msg=n)
    np.testing.assert_allclose(np.asarray(nlp), np.asarray(nlp_ref), rtol=1e-12)
    for n in sites:
        np.testing.assert_allclose(np.asarray(back[n]), np.asarray(back_ref[n]), rtol=1e-8, atol=1e-9, err_msg=n)


def test_unconstrained_params_names_a_missing_parameter():
    spec = ReflexModel("constant", "galactic")
    with pytest.raises(KeyError, match="v_travel"):
        unconstrained_params(spec, PriorSet(), {"apex_l": 0.1})


def test_warm_start_reaches_the_cold_optimum():
    """fit_map from a warm start (the clipping rounds after the first) converges to the optimum that
    random starts find, to the ML convergence tolerance (clip_outliers starts its later rounds so)."""
    spec = ReflexModel("constant", "galactic")
    cat, _ = make_reflex_mock(jax.random.PRNGKey(7), 400, spec)
    data = ReflexData.from_catalog(cat)
    cold = fit_map(data, spec, key=jax.random.PRNGKey(0), n_starts=4)
    shifted = {n: v * 1.05 if n.startswith("sigma") else v for n, v in cold.items()}
    warm = fit_map(data, spec, key=jax.random.PRNGKey(1), n_starts=4, init=shifted)
    f = lambda p: float(spec.log_likelihood({n: p[n] for n in spec.param_names}, data))  # noqa: E731
    assert f(warm) == pytest.approx(f(cold), abs=1e-5)
    for n in spec.param_names:
        assert float(warm[n]) == pytest.approx(float(cold[n]), rel=1e-3, abs=1e-3), n
