"""Likelihoods: reflex motion, Gaussian mixtures, dipole field, binned profiles."""

from . import reflex
from .reflex import ReflexData, ReflexModel, reflex_log_likelihood

__all__ = ["reflex", "ReflexData", "ReflexModel", "reflex_log_likelihood"]
