"""Every variable a reflex fit can output has a unit and a description."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo.inference.priors import PriorSet, sample_prior_sites
from jaxhalo.inference.results import derived_quantities, physical_parameters
from jaxhalo.inference.variables import describe_variable
from jaxhalo.likelihoods.reflex import ReflexModel


@pytest.mark.parametrize("form", ["constant", "continuity"])
@pytest.mark.parametrize("apex", ["galactic", "ms", "cartesian"])
@pytest.mark.parametrize("outlier", ["none", "gaussian"])
@pytest.mark.parametrize("kind", ["chandra", "reference"])
def test_every_output_name_has_a_unit(form, apex, outlier, kind):
    from numpyro import handlers

    spec = ReflexModel(form, apex, outlier=outlier)
    trace = handlers.trace(handlers.seed(lambda: sample_prior_sites(spec, PriorSet(kind=kind)), 0)).get_trace()
    names = set(trace)  # every sampled and deterministic site
    samples = {n: jnp.full((), 0.5) for n in spec.param_names}  # inside every prior (dispersions must be > 0)
    names |= set(physical_parameters(spec, samples)) | set(derived_quantities(spec, samples, (40.0, 50.0, 100.0)))
    for n in sorted(names):
        unit, what = describe_variable(n)
        assert what, n
        if n.endswith("_deg") or "_deg_" in n or n.startswith(("apex_l_r", "apex_b_r", "apex_L_MS", "apex_B_MS")):
            assert unit == "deg", n
        if n.startswith(("v_", "vr", "vphi", "vtheta", "sigma_")):
            assert unit == "km/s", n


def test_unknown_name_is_refused():
    with pytest.raises(KeyError, match="no unit known"):
        describe_variable("not_a_variable")
    assert np.isscalar(describe_variable("apex_b_r100")[0])
