"""The NumPy data checks run before JAX loads: the radius matches frames, the rules refuse what they state."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from jaxhalo.catalog.checks import (
    SOLAR_GEOMETRY,
    DataWarning,
    InsufficientStarsError,
    PlausibilityError,
    check_enough_stars,
    check_plausible,
    galactocentric_radius,
    minimum_stars,
)
from jaxhalo.catalog.readers import read_catalog
from jaxhalo.example_data import EXAMPLE_CATALOG
from jaxhalo.frames import SolarParameters


@pytest.fixture(scope="module")
def cat():
    return read_catalog(EXAMPLE_CATALOG)


@pytest.mark.parametrize("frame", ["default", "reference"])
def test_numpy_radius_matches_frames(cat, frame):
    solar = SolarParameters() if frame == "default" else SolarParameters.reference()
    d, z, tilt = SOLAR_GEOMETRY[frame]
    assert (float(solar.galcen_distance), float(solar.z_sun), solar.tilt) == (d, z, tilt)
    np.testing.assert_allclose(galactocentric_radius(cat, d, z, tilt), cat.r_gal(solar), rtol=1e-12, atol=1e-12)


def test_minimum_rule():
    assert minimum_stars(9) == 18 and minimum_stars(18) == 36
    check_enough_stars(36, 18, "in x")
    with pytest.raises(InsufficientStarsError, match=r"35 star\(s\) after a cut; a model with 18 parameters needs at least 36"):
        check_enough_stars(35, 18, "after a cut")
    with pytest.warns(DataWarning, match="--force"):
        check_enough_stars(35, 18, "after a cut", force=True)
    with pytest.raises(InsufficientStarsError):  # nothing fits zero stars, not even with force
        check_enough_stars(0, 18, "after a cut", force=True)


def test_plausible_catalogue_passes(cat):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_plausible(cat)


@pytest.mark.parametrize("column,factor,match", [
    ("distance", 1000.0, "look like pc"),
    ("v_los", 1000.0, "m/s"),
    ("pm_l", 1000.0, "mas/yr"),
])
def test_wrong_units_are_refused(cat, column, factor, match):
    from dataclasses import replace

    bad = replace(cat, **{column: np.asarray(getattr(cat, column)) * factor})
    if column == "pm_l":
        bad = replace(bad, pm_b=np.asarray(cat.pm_b) * factor)
    with pytest.raises(PlausibilityError, match=match):
        check_plausible(bad)
    with pytest.warns(DataWarning, match=match):
        check_plausible(bad, force=True)


def test_duplicates_are_named(cat):
    idx = np.r_[np.arange(len(cat)), [10, 20]]
    with pytest.raises(PlausibilityError, match=r"2 row\(s\) \[850, 851\] repeat earlier stars \(row 850 = row 10\)"):
        check_plausible(cat.select(np.ones(len(cat), bool)).__class__(
            **{k: np.asarray(getattr(cat, k))[idx] for k in ("l", "b", "distance", "distance_err", "v_los", "v_los_err",
                                                             "pm_l", "pm_b", "pm_l_err", "pm_b_err", "pm_corr")}))


def test_reading_a_catalogue_loads_no_jax():
    import subprocess
    import sys

    code = ("import sys; from jaxhalo.catalog.readers import read_catalog; from jaxhalo.catalog.checks import "
            "check_plausible, galactocentric_radius; from jaxhalo.example_data import EXAMPLE_CATALOG; "
            "c = read_catalog(EXAMPLE_CATALOG); check_plausible(c); galactocentric_radius(c); "
            "assert 'jax' not in sys.modules, 'jax loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
