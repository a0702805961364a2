"""Simulation suites at scale and simulation-based inference (Brooks et al. 2025, 2026).

- :mod:`jaxhalo.sbi.priors` -- the Table 1 priors as numpyro distributions, validated.
- :mod:`jaxhalo.sbi.simulators` -- the suite simulator interface, the MW-LMC simulator, a toy.
- :mod:`jaxhalo.sbi.store` -- the chunked on-disk store (per-chunk HDF5 files, atomic writes).
- :mod:`jaxhalo.sbi.suite` -- sharded, resumable, range-splittable suite runs.
- :mod:`jaxhalo.sbi.npe` -- neural posterior estimation with flowjax MAF ensembles.
- :mod:`jaxhalo.sbi.tarp` -- TARP coverage (ECP curve, ATC, KS p-values).
- :mod:`jaxhalo.sbi.derived` -- enclosed masses within 50 kpc and the mass ratio.
- :mod:`jaxhalo.sbi.ppc` -- posterior predictive checks by re-simulation.
- :mod:`jaxhalo.sbi.fisher`, :mod:`jaxhalo.sbi.forecast` -- Fisher forecasts through the differentiable simulator.
- :mod:`jaxhalo.sbi.synthetic`, :mod:`jaxhalo.sbi.nuts_sl` -- NUTS on a Gaussian synthetic likelihood.
- :mod:`jaxhalo.sbi.surrogate` -- its local-linear surrogate of the mean (Gauss-Newton).

Importing this package does not import flowjax (only :mod:`jaxhalo.sbi.npe` does).
"""
