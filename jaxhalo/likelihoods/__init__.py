"""Likelihoods: reflex motion, Gaussian mixtures, dipole + compression field, binned profiles.

Every likelihood returns per-star log-likelihoods (shape (N,)) as well as their sum, so that
arviz can compute PSIS-LOO.
"""

from . import binned, dipole, mixture, reflex
from .reflex import ReflexData, ReflexModel, reflex_log_likelihood

__all__ = ["binned", "dipole", "mixture", "reflex", "ReflexData", "ReflexModel", "reflex_log_likelihood"]
