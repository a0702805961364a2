"""Inference: numpyro models of the reflex and mixture likelihoods, ML + clipping, NUTS, arviz output.

The reflex fit of Chandra et al. (2025, §4) in one differentiable stack:

* :mod:`~jaxhalo.inference.priors` -- the priors (Chandra et al.; reflexcalc) and their unit-cube map;
* :mod:`~jaxhalo.inference.models` -- the numpyro models;
* :mod:`~jaxhalo.inference.ml` -- maximum likelihood (optax L-BFGS) and 3-sigma clipping;
* :mod:`~jaxhalo.inference.nuts` -- NUTS (on the compiled chain programs of
  :mod:`~jaxhalo.inference.nuts_programs`);
* :mod:`~jaxhalo.inference.results` -- derived quantities, InferenceData, summary tables;
* :mod:`~jaxhalo.inference.reflex_fit` -- :func:`fit_reflex`, the whole fit;

and beyond it: :mod:`~jaxhalo.inference.outliers` (the outlier / substructure component),
:mod:`~jaxhalo.inference.per_bin` (independent NUTS per bin, Li et al.),
:mod:`~jaxhalo.inference.profiles` (the binned mixture and dipole models),
:mod:`~jaxhalo.inference.hierarchical` (latent true distances),
:mod:`~jaxhalo.inference.comparison` (PSIS-LOO model comparison) and
:mod:`~jaxhalo.inference.optim` (the L-BFGS helpers).
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
