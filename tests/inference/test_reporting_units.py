"""Issue 13: one angle unit (degrees) in every output of a reflex fit, and results as astropy QTables."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest

from jaxhalo.example_data import example_catalog
from jaxhalo.inference.priors import PriorSet
from jaxhalo.inference.reflex_fit import FitResult
from jaxhalo.inference.results import (
    physical_parameters,
    radial_summary_qtable,
    reported_prior_table,
    sampled_parameters,
    samples_to_inference_data,
    summary_qtable,
    summary_table,
)
from jaxhalo.likelihoods.reflex import ReflexData, ReflexModel

RADII = (40.0, 100.0)


def _internal_draws(spec: ReflexModel, shape=(2, 60), seed=0) -> dict[str, np.ndarray]:
    """Random draws of ``spec.param_names`` in internal units (longitudes rad, sines of latitudes)."""
    rng = np.random.default_rng(seed)
    out = {}
    for n in spec.param_names:
        if n.startswith(("apex_l", "apex_L")):
            out[n] = rng.uniform(-np.pi, np.pi, shape)
        elif n.startswith(("apex_sin",)):
            out[n] = rng.uniform(-0.95, 0.95, shape)
        elif n.startswith("sigma"):
            out[n] = rng.uniform(50, 120, shape)
        else:
            out[n] = rng.normal(20.0, 10.0, shape)
    return out


@pytest.mark.parametrize("form,apex", [("continuity", "ms"), ("constant", "galactic")])
def test_physical_parameters_are_degrees_and_sampled_parameters_invert_them(form, apex):
    spec = ReflexModel(form, apex)
    s = _internal_draws(spec)
    phys = {k: np.asarray(v) for k, v in physical_parameters(spec, s).items()}
    assert not any("sin" in k for k in phys)
    for k, v in phys.items():
        if k.startswith("apex_"):
            assert k.split("_")[2] == "deg", k
            lat = k.startswith(("apex_b", "apex_B"))
            assert np.all(np.abs(v) <= (90.0 if lat else 180.0)) and np.max(np.abs(v)) > (50.0 if lat else 150.0), k
    back = sampled_parameters(spec, phys)
    assert set(back) == set(spec.param_names)
    for n in spec.param_names:
        np.testing.assert_allclose(np.asarray(back[n]), s[n], rtol=1e-13, atol=1e-15, err_msg=n)


@pytest.fixture(scope="module")
def synthetic_idata():
    spec = ReflexModel("continuity", "ms")
    cat = example_catalog()
    data = ReflexData.from_catalog(cat.select(np.arange(len(cat)) < 40))
    s = _internal_draws(spec, seed=1)
    s["u"] = np.zeros((2, 60, len(spec.param_names)))  # the unit-cube site NUTS samples: never written out
    return spec, s, samples_to_inference_data(None, spec, data, s, RADII, pointwise=False)


def test_posterior_group_holds_every_angle_in_degrees(synthetic_idata, tmp_path):
    import arviz as az

    spec, s, idata = synthetic_idata
    idata.to_netcdf(tmp_path / "posterior.nc")
    post = az.from_netcdf(tmp_path / "posterior.nc").posterior
    units = {str(n): v.attrs["units"] for n, v in post.data_vars.items()}
    assert "rad" not in units.values()
    assert not any("sin" in n for n in units) and "u" not in units
    angles = [n for n in units if n.startswith("apex_")]
    assert len(angles) == 4 + 4 * len(RADII) and all(units[n] == "deg" for n in angles)
    assert "degrees" in post.attrs["angles"]
    np.testing.assert_allclose(np.asarray(post["apex_L_deg_40"]), np.degrees(s["apex_L_40"]), rtol=1e-15)
    np.testing.assert_allclose(np.asarray(post["apex_B_deg_120"]), np.degrees(np.arcsin(s["apex_sinB_120"])), rtol=1e-14)
    back = sampled_parameters(spec, post)  # the sampler's parameters from the file
    np.testing.assert_allclose(np.asarray(back["apex_sinB_120"]), s["apex_sinB_120"], rtol=1e-13)
    table = summary_table(idata, ["v_travel_40", "apex_L_deg_40", "apex_B_deg_40", "apex_l_r100"])
    assert list(table["unit"]) == ["km/s", "deg", "deg", "deg"]


def test_summary_qtable_has_quantity_columns(synthetic_idata):
    from astropy.table import QTable

    spec, s, idata = synthetic_idata
    t = summary_qtable(idata, ["v_travel_40", "apex_L_deg_40", "apex_B_deg_40", "apex_l_r100"])
    assert isinstance(t, QTable) and list(t["quantile"]) == [0.16, 0.5, 0.84]
    assert t["v_travel_40"].unit == u.km / u.s and t["apex_L_deg_40"].unit == u.deg
    np.testing.assert_allclose(t["v_travel_40"].to_value(u.m / u.s),
                               1e3 * np.percentile(s["v_travel_40"], [16, 50, 84]), rtol=1e-14)
    np.testing.assert_allclose(t["apex_L_deg_40"][1].to_value(u.rad), np.median(s["apex_L_40"]), rtol=1e-13)
    assert t.meta["variables"]["apex_l_r100"]["unit"] == "deg" and t.meta["variables"]["v_travel_40"]["r_hat"] > 0
    # FitResult.to_qtable: the rows of its summary table, as columns with units
    res = FitResult(idata, spec, {}, [], np.ones(40), summary_table(idata, ["v_travel_40", "vr_120"]), 0)
    q = res.to_qtable()
    assert q.colnames == ["quantile", "v_travel_40", "vr_120"] and q["vr_120"].unit == u.km / u.s


def test_radial_summary_qtable_rows_are_radii(synthetic_idata):
    _, _, idata = synthetic_idata
    t = radial_summary_qtable(idata)
    assert t["r"].unit == u.kpc and list(t["r"].to_value(u.kpc)) == list(RADII)
    assert t["v_travel_p50"].unit == u.km / u.s and t["apex_b_p16"].unit == u.deg and t["apex_L_MS_p84"].unit == u.deg
    for i, R in enumerate(RADII):
        x = np.asarray(idata.posterior[f"v_travel_r{R:g}"])
        assert t["v_travel_p50"][i].to_value(u.km / u.s) == pytest.approx(np.median(x), rel=1e-14)
        assert t["v_x_p16"][i].to_value(u.km / u.s) == pytest.approx(np.percentile(np.asarray(idata.posterior[f"v_x_r{R:g}"]), 16), rel=1e-14)


def test_reported_priors_are_in_degrees():
    rows = {r["name"]: r for r in reported_prior_table(ReflexModel("constant", "galactic"), PriorSet(kind="reference"))}
    assert rows["apex_l_deg"]["site"] == "apex_l" and rows["apex_l_deg"]["unit"] == "deg"
    assert (rows["apex_l_deg"]["low"], rows["apex_l_deg"]["high"]) == pytest.approx((-180.0, 180.0))
    assert rows["apex_b_deg"]["kind"] == "linear in sin" and (rows["apex_b_deg"]["low"], rows["apex_b_deg"]["high"]) == pytest.approx((-90.0, 90.0))
    assert rows["tau_los"]["unit"] == "s2 / km2" and rows["v_travel"]["unit"] == "km/s"
    assert "rad" not in {r["unit"] for r in rows.values()}


def test_one_chain_summary_has_undefined_r_hat_without_warnings(recwarn):
    """R-hat compares chains: with one chain the summary reports NaN (arviz is not asked, so it logs no
    shape warning) and FitResult.max_r_hat is NaN without a RuntimeWarning; ESS is still computed."""
    import arviz as az

    from jaxhalo.inference.reflex_fit import FitResult
    from jaxhalo.inference.results import summary_table

    rng = np.random.default_rng(0)
    idata = az.from_dict(posterior={"v_travel_40": rng.normal(30.0, 5.0, (1, 400))})
    table = summary_table(idata)
    assert np.isnan(table["r_hat"][0]) and 200 < table["ess_bulk"][0] <= 600
    res = FitResult(idata, None, {}, [], np.ones(1), table, 0)
    assert np.isnan(res.max_r_hat)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
