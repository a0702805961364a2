"""Dynamics of the Milky Way and the LMC (Brooks et al. 2025 §2; 2026 §3).

* :mod:`~jaxhalo.dynamics.potentials` -- NFW, discs, bulge, Hernquist, potentials of spherical densities;
* :mod:`~jaxhalo.dynamics.densities` -- tracer densities (Dehnen, double power law, steepened cusp);
* :mod:`~jaxhalo.dynamics.orbits` -- orbit integration in a static potential (diffrax);
* :mod:`~jaxhalo.dynamics.mwlmc` -- the MW-LMC two-body orbit with dynamical friction;
* :mod:`~jaxhalo.dynamics.df` -- the constant-beta distribution function and its sampling.
"""
