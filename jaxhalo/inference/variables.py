"""Units and descriptions of every variable a reflex fit outputs, and the sign conventions.

:func:`describe_variable` maps a variable name of :func:`jaxhalo.inference.results.samples_to_inference_data`
(sampled parameters, physical and derived quantities) to ``(unit, description)``; the
InferenceData, tables and plots carry them. Names ending in ``_40`` / ``_120`` (any number) are the
continuity model's anchors at that Galactocentric radius (kpc); names ending in ``_r50`` (any
number) are derived at that radius.
"""

from __future__ import annotations

import re

__all__ = ["LI2025_SIGN_CONVENTIONS", "SIGN_CONVENTIONS", "describe_profile_variable", "describe_variable"]

#: The sign conventions of every velocity a reflex fit reports (see :mod:`jaxhalo.frames`).
SIGN_CONVENTIONS: str = (
    "Galactocentric, right-handed, Sun at x < 0; spherical (r, theta, phi) with theta from +z: "
    "v_r > 0 outwards, v_theta > 0 southwards, v_phi > 0 retrograde (the disc rotates with v_phi < 0); "
    "the travel velocity is the MW disc's velocity relative to the outer halo, pointing to the apex "
    "(the halo's mean motion is minus it); apex angles Galactic (l, b) or Magellanic Stream (L, B)."
)

_WHAT = {
    "v_travel": ("km/s", "travel velocity (reflex amplitude)"),
    "apex_l": ("rad", "Galactic longitude of the apex"),
    "apex_sinb": ("", "sine of the Galactic latitude of the apex"),
    "apex_L": ("rad", "Magellanic Stream longitude of the apex"),
    "apex_sinB": ("", "sine of the Magellanic Stream latitude of the apex"),
    "apex_l_deg": ("deg", "Galactic longitude of the apex"),
    "apex_b_deg": ("deg", "Galactic latitude of the apex"),
    "apex_L_deg": ("deg", "Magellanic Stream longitude of the apex"),
    "apex_B_deg": ("deg", "Magellanic Stream latitude of the apex"),
    "v_x": ("km/s", "Galactocentric x component of the travel velocity"),
    "v_y": ("km/s", "Galactocentric y component of the travel velocity"),
    "v_z": ("km/s", "Galactocentric z component of the travel velocity"),
    "vr": ("km/s", "mean radial velocity v_r of the halo"),
    "vphi": ("km/s", "mean azimuthal velocity v_phi of the halo (> 0 retrograde)"),
    "vtheta": ("km/s", "mean polar velocity v_theta of the halo (> 0 southwards)"),
    "sigma_los": ("km/s", "intrinsic dispersion along the line of sight"),
    "sigma_l": ("km/s", "intrinsic dispersion along Galactic longitude"),
    "sigma_b": ("km/s", "intrinsic dispersion along Galactic latitude"),
    "tau_los": ("s2 / km2", "precision 1 / sigma_los^2 (sampled under the reference priors)"),
    "tau_l": ("s2 / km2", "precision 1 / sigma_l^2 (sampled under the reference priors)"),
    "tau_b": ("s2 / km2", "precision 1 / sigma_b^2 (sampled under the reference priors)"),
    "f_out": ("", "fraction of stars in the outlier / substructure component"),
    "sigma_out": ("km/s", "dispersion of the outlier component"),
    "out_vx": ("km/s", "Galactocentric x mean velocity of the outlier component"),
    "out_vy": ("km/s", "Galactocentric y mean velocity of the outlier component"),
    "out_vz": ("km/s", "Galactocentric z mean velocity of the outlier component"),
    "apex_l_r": ("deg", "Galactic longitude of the apex"),
    "apex_b_r": ("deg", "Galactic latitude of the apex"),
    "v_travel_r": ("km/s", "travel velocity (reflex amplitude)"),
    "apex_L_MS_r": ("deg", "Magellanic Stream longitude of the apex"),
    "apex_B_MS_r": ("deg", "Magellanic Stream latitude of the apex"),
}


def describe_variable(name: str) -> tuple[str, str]:
    """``(unit, description)`` of a reflex-fit output variable; raises ``KeyError`` for an unknown name.

    >>> describe_variable("apex_b_r100")
    ('deg', 'Galactic latitude of the apex, derived at r = 100 kpc')
    """
    m = re.fullmatch(r"(.+?)_r(\d+(?:\.\d+)?)", name)
    if m and f"{m.group(1)}_r" in _WHAT:
        unit, what = _WHAT[f"{m.group(1)}_r"]
        return unit, f"{what}, derived at r = {m.group(2)} kpc"
    if m and m.group(1) in ("v_x", "v_y", "v_z"):
        unit, what = _WHAT[m.group(1)]
        return unit, f"{what}, derived at r = {m.group(2)} kpc"
    if name in _WHAT:
        return _WHAT[name]
    m = re.fullmatch(r"(.+)_(\d+(?:\.\d+)?)", name)
    if m and m.group(1) in _WHAT:
        unit, what = _WHAT[m.group(1)]
        return unit, f"{what} at the r = {m.group(2)} kpc anchor"
    raise KeyError(f"no unit known for output variable {name!r}")


#: The sign conventions of the binned profile fits (:mod:`jaxhalo.inference.profiles`, Li et al. 2025).
LI2025_SIGN_CONVENTIONS: str = (
    "Galactocentric spherical velocities in Li et al.'s signs: V_r > 0 outwards, V_phi < 0 prograde "
    "(with the disc), V_theta > 0 northwards; beta = 1 - (sigma_theta^2 + sigma_phi^2) / (2 sigma_r^2)."
)

_PROFILE_WHAT = {
    "mean": ("km/s", "mean of each velocity column per mixture component ([Fe/H] column in dex)"),
    "sigma": ("km/s", "intrinsic dispersion of each velocity column per mixture component ([Fe/H] column in dex)"),
    "mean_other": ("km/s", "component means of the columns other than the ordered one (sampled site)"),
    "beta": ("", "velocity anisotropy beta = 1 - (sigma_theta^2 + sigma_phi^2) / (2 sigma_r^2) per component"),
    "weights": ("", "fraction of the bin's stars in each mixture component"),
    "p_first": ("", "weight of component 0 (the metal-rich one when ordered by [Fe/H])"),
    "weights_free": ("", "Dirichlet component weights (sampled site, K > 2)"),
    "order_frac": ("", "reparametrisation of the ordered column's component means (sampled site, Beta)"),
    "mu_compr": ("km/s", "compression term of V_r (Li et al. eq. 5)"),
    "mu_dipole": ("km/s", "dipole amplitude of V_r (Li et al. eq. 5)"),
    "sigma_r": ("km/s", "intrinsic dispersion of V_r"),
    "l_apex": ("rad", "Galactic longitude of the dipole apex"),
    "sin_b_apex": ("", "sine of the Galactic latitude of the dipole apex"),
    "b_apex": ("rad", "Galactic latitude of the dipole apex"),
    "l_apex_deg": ("deg", "Galactic longitude of the dipole apex"),
    "b_apex_deg": ("deg", "Galactic latitude of the dipole apex"),
    "v_theta_eq7": ("km/s", "polar velocity V_theta implied by the dipole (Li et al. eq. 7)"),
}


def describe_profile_variable(name: str) -> tuple[str, str]:
    """``(unit, description)`` of a per-bin profile variable (:mod:`jaxhalo.inference.profiles` sites);
    raises ``KeyError`` for an unknown name.

    >>> describe_profile_variable("order_frac_0")
    ('', "reparametrisation of the ordered column's component means (sampled site, Beta), component 0")
    """
    if name in _PROFILE_WHAT:
        return _PROFILE_WHAT[name]
    m = re.fullmatch(r"(.+)_(\d+)", name)
    if m and m.group(1) in _PROFILE_WHAT:
        unit, what = _PROFILE_WHAT[m.group(1)]
        return unit, f"{what}, component {m.group(2)}"
    raise KeyError(f"no unit known for profile variable {name!r}")
