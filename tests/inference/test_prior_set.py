"""PriorSet refuses meaningless bounds at construction, naming the field."""

from __future__ import annotations

import math

import pytest

from jaxhalo.inference.priors import PriorSet


def test_defaults_are_valid():
    PriorSet()
    PriorSet(kind="reference")


@pytest.mark.parametrize("kwargs,match", [
    ({"sigma_min": 600.0}, "0 < sigma_min < sigma_max"),
    ({"sigma_min": 0.0}, "0 < sigma_min < sigma_max"),
    ({"v_travel_max": -1.0}, "v_travel_max must be > 0"),
    ({"v_mean_max": math.nan}, "v_mean_max must be a finite number"),
    ({"sigma_max": math.inf}, "sigma_max must be a finite number"),
    ({"tau_min": 1.0}, "0 < tau_min < tau_max"),
    ({"f_out_max": 0.7}, "f_out_max must be in"),
    ({"sigma_out_min_gaussian": 60.0}, "sigma_out_min_gaussian < sigma_out_max_gaussian"),
    ({"kind": "flat"}, "prior kind"),
])
def test_bad_bounds_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PriorSet(**kwargs)
