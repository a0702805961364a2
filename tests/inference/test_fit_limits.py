"""fit_reflex: n_clip=0 fits without clipping; too few stars (before or after clipping) are refused or, forced, warned."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxhalo.catalog.checks import DataWarning, InsufficientStarsError
from jaxhalo.inference.reflex_fit import fit_reflex
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel
from jaxhalo.mocks.reflex import make_reflex_mock

SPEC = ReflexModel("constant", "galactic")


def _data(n, seed=1):
    cat, _ = make_reflex_mock(jax.random.PRNGKey(seed), n, SPEC)
    return ReflexData.from_catalog(cat)


def test_too_few_stars_are_refused_before_any_work():
    with pytest.raises(InsufficientStarsError, match=r"10 star\(s\) in the data; a model with 9 parameters needs at least 18"):
        fit_reflex(_data(10), SPEC, key=jax.random.PRNGKey(0), progress_bar=False, verbose=False)
    with pytest.raises(ValueError, match="n_clip must be >= 0"):
        fit_reflex(_data(40), SPEC, n_clip=-1, progress_bar=False, verbose=False)
    with pytest.raises(ValueError, match="num_chains >= 1"):
        fit_reflex(_data(40), SPEC, num_chains=0, progress_bar=False, verbose=False)


@pytest.mark.slow  # > 20 s on 2 cores; keeps the default run under 12 min
def test_n_clip_0_means_no_clipping_and_force_warns():
    with pytest.warns(DataWarning, match=r"12 star\(s\) in the data"):
        res = fit_reflex(_data(12), SPEC, key=jax.random.PRNGKey(0), n_clip=0, num_chains=1, num_warmup=30,
                         num_samples=30, progress_bar=False, verbose=False, force=True)
    assert res.n_clipped == [] and np.all(res.weight == 1)
    assert res.idata.posterior["v_travel"].shape == (1, 30)


def test_clipping_that_leaves_too_few_stars_is_refused():
    from dataclasses import replace

    cat, _ = make_reflex_mock(jax.random.PRNGKey(2), 21, SPEC)
    v = np.asarray(cat.v_los).copy()
    v[:4] += 20000.0  # four wild outliers: clipped in the first round, leaving 17 < 18
    data = ReflexData.from_catalog(replace(cat, v_los=v))
    with pytest.raises(InsufficientStarsError, match=r"17 star\(s\) remain after 1 round\(s\) of 3-sigma clipping \(4 of 21"):
        fit_reflex(data, SPEC, key=jax.random.PRNGKey(0), n_clip=1, num_chains=1, num_warmup=10, num_samples=10,
                   progress_bar=False, verbose=False)
