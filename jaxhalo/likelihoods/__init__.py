"""Likelihoods: reflex motion, Gaussian mixtures, dipole + compression field, binned profiles.

Every likelihood returns per-star log-likelihoods (shape (N,)) as well as their sum, so that
arviz can compute PSIS-LOO. Modules: :mod:`~jaxhalo.likelihoods.reflex`,
:mod:`~jaxhalo.likelihoods.outlier` (a leaf: the mixing arithmetic), :mod:`~jaxhalo.likelihoods.mixture`,
:mod:`~jaxhalo.likelihoods.dipole`, :mod:`~jaxhalo.likelihoods.binned`.
"""
