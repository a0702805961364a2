"""Outlier / substructure component of the reflex fit: NumPy reference, gradients, stream recovery."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import peer_file
from reflex_reference import YPP24_50, catalog_from_layout_t, load_layout_t, numpy_reference_loglike

from jaxhalo.inference.ml import clip_outliers
from jaxhalo.inference.outliers import fit_map_outliers, star_galactocentric_velocities
from jaxhalo.likelihoods.outlier import mix_with_outliers, outlier_probability
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel
from jaxhalo.mocks.reflex import make_reflex_mock
from jaxhalo.mocks.substructure import StreamSpec, add_stream


@pytest.fixture(scope="module")
def ypp24():
    a = load_layout_t(peer_file(YPP24_50))
    data = ReflexData.from_catalog(catalog_from_layout_t(a), reference=True)
    return a, data


PARAMS = {"v_travel": 40.0, "apex_l": 0.7, "apex_sinb": -0.6, "vr": -5.0, "vphi": -30.0, "vtheta": 19.0,
          "sigma_los": 88.0, "sigma_l": 61.0, "sigma_b": 70.0}


def _numpy_outlier(a, u, sigma_out):
    """The outlier Gaussian via the NumPy reflex reference: mean u <=> reflex -V n = u, no bulk terms."""
    V = np.linalg.norm(u)
    n = -u / V
    theta = (np.arctan2(n[1], n[0]), n[2], V, 0.0, 0.0, 0.0, sigma_out**-2, sigma_out**-2, sigma_out**-2)
    return numpy_reference_loglike(a, np.array(theta))


@pytest.mark.parametrize("kind", ["broad", "gaussian"])
def test_matches_numpy_reference(ypp24, kind):
    a, data = ypp24
    spec = ReflexModel("constant", "galactic", outlier=kind)
    u = np.array([120.0, -250.0, 60.0]) if kind == "gaussian" else np.array([0.0, 0.0, 1e-9])
    p = {**PARAMS, "f_out": 0.07, "sigma_out": 23.0 if kind == "gaussian" else 310.0}
    if kind == "gaussian":
        p.update(out_vx=u[0], out_vy=u[1], out_vz=u[2])
    got = np.asarray(spec.log_likelihood_per_star(p, data))
    th = (PARAMS["apex_l"], PARAMS["apex_sinb"], PARAMS["v_travel"], PARAMS["vr"], PARAMS["vphi"], PARAMS["vtheta"],
          PARAMS["sigma_los"] ** -2, PARAMS["sigma_l"] ** -2, PARAMS["sigma_b"] ** -2)
    ll_r = numpy_reference_loglike(a, np.array(th))
    ll_o = _numpy_outlier(a, u, p["sigma_out"])
    ref = np.logaddexp(np.log(1 - p["f_out"]) + ll_r, np.log(p["f_out"]) + ll_o)
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    prob = np.asarray(spec.outlier_probability(p, data))
    np.testing.assert_allclose(prob, np.exp(np.log(p["f_out"]) + ll_o - ref), rtol=1e-9, atol=1e-300)


def test_limits_and_weights(ypp24):
    _, data = ypp24
    spec0 = ReflexModel("constant", "galactic")
    spec = ReflexModel("constant", "galactic", outlier=True)
    assert spec.outlier == "gaussian" and ReflexModel(outlier=False).outlier == "none"
    p = {**PARAMS, "f_out": 0.0, "sigma_out": 20.0, "out_vx": 0.0, "out_vy": 0.0, "out_vz": 0.0}
    # f_out = 0 is exactly the reflex model (log(0) = -inf drops the outlier term)
    np.testing.assert_allclose(spec.log_likelihood_per_star(p, data), spec0.log_likelihood_per_star(PARAMS, data), rtol=1e-14)
    w = np.ones(data.n_stars)
    w[::3] = 0.0
    dw = data.with_weight(w)
    p["f_out"] = 0.2
    ll = np.asarray(spec.log_likelihood_per_star(p, dw))
    assert np.all(ll[w == 0] == 0) and np.allclose(ll[w > 0], np.asarray(spec.log_likelihood_per_star(p, data))[w > 0])
    prob = np.asarray(spec.outlier_probability(p, dw))
    assert np.all(prob[w == 0] == 0) and np.all((prob >= 0) & (prob <= 1))
    with pytest.raises(ValueError, match="outlier"):
        ReflexModel(outlier="stream")
    # log-sum-exp is stable far in the tails
    big = jnp.array([-1e4, -2e4])
    assert np.all(np.isfinite(mix_with_outliers(big, big - 5, 0.1)))
    assert np.all(np.isfinite(outlier_probability(big, big + 1e3, 0.1)))


def test_gradient_matches_finite_differences(ypp24):
    _, data = ypp24
    spec = ReflexModel("continuity", "galactic", outlier="gaussian")
    p = {n + s: v * (1.1 if s == "_120" else 1.0) for s in spec.suffixes for n, v in PARAMS.items()}
    p.update(f_out=0.1, sigma_out=30.0, out_vx=100.0, out_vy=-200.0, out_vz=50.0)
    f = jax.jit(lambda q: spec.log_likelihood(q, data))
    g = jax.grad(f)(p)
    for name in ("f_out", "sigma_out", "out_vy", "v_travel_40", "sigma_b_120"):
        h = 1e-5 * max(1.0, abs(p[name]))
        fd = (f({**p, name: p[name] + h}) - f({**p, name: p[name] - h})) / (2 * h)
        np.testing.assert_allclose(float(g[name]), float(fd), rtol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def stream_mock():
    """380 halo stars (constant reflex model) + a default StreamSpec() stream of 20 stars."""
    spec = ReflexModel("constant", "galactic")
    cat, info = make_reflex_mock(jax.random.PRNGKey(2), 380, spec)
    cat2, info2 = add_stream(jax.random.PRNGKey(1002), cat, info, StreamSpec())
    return cat, cat2, info2


def test_star_velocities_invert_the_projection(stream_mock):
    data = ReflexData.from_catalog(stream_mock[1])
    v = star_galactocentric_velocities(data)
    np.testing.assert_allclose(jnp.einsum("nij,nj->ni", data.proj, v) - data.sun_obs, data.obs, rtol=1e-10, atol=1e-10)


def test_stream_mock(stream_mock):
    cat, cat2, info2 = stream_mock
    st = StreamSpec()
    is_s = cat2.extra["is_stream"] > 0
    assert is_s.sum() == info2["stream"]["n_stream"] == 20 and len(cat2) == 400
    np.testing.assert_array_equal(cat2.v_los[:380], cat.v_los)
    # cold: the stream stars' Galactocentric velocities (from noisy observables) scatter about the
    # common vector by sigma_v plus errors (up to ~60 km/s tangentially at 60 kpc)
    data = ReflexData.from_catalog(cat2)
    vel = np.asarray(star_galactocentric_velocities(data))[is_s]
    assert np.all(np.abs(np.median(vel, axis=0) - np.array(st.velocity)) < 40)
    # narrow on the sky: all within length/2 + 4 width of the centre
    from jaxhalo.simulation.summaries import angular_distance

    sep = np.degrees(np.asarray(angular_distance(cat2.l[is_s], cat2.b[is_s], np.radians(st.l), np.radians(st.b))))
    assert sep.max() < st.length / 2 + 4 * st.width


@pytest.fixture(scope="module")
def stream_fits(stream_mock):
    """Clipping vs the cold outlier component, ML fits on the 400-star mock with a 5% stream."""
    spec = ReflexModel("constant", "galactic")
    _, cat, info = stream_mock
    data = ReflexData.from_catalog(cat)
    spec_out = ReflexModel("constant", "galactic", outlier="gaussian")
    _, p_clip, _ = clip_outliers(data, spec, key=jax.random.PRNGKey(0))
    p_out = fit_map_outliers(data, spec_out, key=jax.random.PRNGKey(0))
    return spec, spec_out, data, cat, info, p_clip, p_out


def test_outlier_component_finds_the_stream(stream_fits):
    spec, spec_out, data, cat, info, p_clip, p_out = stream_fits
    is_s = cat.extra["is_stream"] > 0
    prob = np.asarray(spec_out.outlier_probability(p_out, data))
    # most stream stars are claimed by the outlier component, almost no halo star is
    # (measured on seeds 0-7: 95-100% of stream stars above 0.5, halo mean 0.002-0.006)
    assert (prob[is_s] > 0.5).mean() > 0.8
    assert prob[~is_s].mean() < 0.02
    # f_out: 20 of 400 stars; binomial scatter of the membership alone is ~0.011
    assert abs(float(p_out["f_out"]) - is_s.mean()) < 0.02


def test_outlier_fit_at_least_as_close_to_truth_as_clipping(stream_fits):
    """The sum over the 9 reflex parameters of |ML - truth| / sigma_Laplace, sigma from the Hessian
    of the clipped fit's log-likelihood (the same yardstick for both fits).

    The stream (5%, 20 stars) survives clipping and pulls the clipped fit off, mostly in v_phi,
    sigma_l and the apex. On mocks of this size (380 halo + 20 stream stars, seeds 0-7) the
    clipped total exceeded the outlier fit's by 2.9 to 6.4 (clip 8.6-14.4, outlier 4.4-9.4),
    and the NUTS comparison of benchmarks/bench_outliers.py agrees, so no tolerance is granted:
    the outlier fit must be at least as close in total, on a seed (2) with a typical margin."""
    spec, spec_out, data, cat, info, p_clip, p_out = stream_fits
    truth = info["truth"]
    names = spec.param_names
    w = np.asarray(data.weight)
    vec = jnp.array([float(p_clip[n]) for n in names])
    ll = lambda v: spec.log_likelihood(dict(zip(names, v)), data)  # noqa: E731
    cov = np.linalg.inv(-np.asarray(jax.hessian(ll)(vec)))
    sig = np.sqrt(np.diag(cov))
    assert np.all(np.isfinite(sig)) and w.sum() == len(cat)
    off_clip = np.array([abs(float(p_clip[n]) - truth[n]) for n in names]) / sig
    off_out = np.array([abs(float(p_out[n]) - truth[n]) for n in names]) / sig
    print("offsets clip", np.round(off_clip, 2), off_clip.sum(), "outlier", np.round(off_out, 2), off_out.sum())
    assert off_out.sum() <= off_clip.sum()
