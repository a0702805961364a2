"""Simulations of the halo in the MW-LMC system, from parameters to summaries (Brooks et al. 2025, 2026).

* :mod:`~jaxhalo.simulation.parameters` -- the 12 parameters, units, Table 1 priors (no JAX);
* :mod:`~jaxhalo.simulation.tracer_orbits` -- tracer particles integrated in the moving MW + LMC;
* :mod:`~jaxhalo.simulation.brooks` -- the chained Brooks et al. simulator (jit / vmap-able);
* :mod:`~jaxhalo.simulation.observe` -- mock observation as a survey would see the halo;
* :mod:`~jaxhalo.simulation.summaries` -- the 52 Brooks et al. summaries, sky maps;
* :mod:`~jaxhalo.simulation.reflex_fit` -- the reflex fit of a simulated halo;
* :mod:`~jaxhalo.simulation.errors` -- :class:`SimulatorError`.
"""
