"""jaxhalo: fast, differentiable, GPU-ready kinematics and dynamics of the Milky Way's outer halo.

Two pipelines, one subpackage per stage:

- the data side: :mod:`jaxhalo.frames` (coordinate frames) -> :mod:`jaxhalo.catalog` (reading,
  validating, cutting) -> :mod:`jaxhalo.likelihoods` (reflex, outlier, mixture, dipole, binned) ->
  :mod:`jaxhalo.inference` (numpyro models, ML + clipping, NUTS, per-bin NUTS, profiles,
  hierarchical distances, model comparison); :mod:`jaxhalo.mocks.reflex` draws mock catalogues;
- the dynamics side: :mod:`jaxhalo.dynamics` (potentials, orbits, the MW-LMC orbit, DF, tracer
  densities) -> :mod:`jaxhalo.simulation` (tracer integration, the chained Brooks et al.
  simulator, mock observation, summaries) -> :mod:`jaxhalo.sbi` (suites, NPE, TARP);
- :mod:`jaxhalo.plots` and the command line :mod:`jaxhalo.cli`.

The public names below are loaded lazily (``__init__.pyi`` lists them in one sorted block), so
``import jaxhalo`` is quick and loads JAX only when a name is used.

jaxhalo never switches on ``jax_enable_x64`` itself (that would change its users' other JAX
code); enable it in your script for float64, as the CLI and tests do.
"""

from importlib.metadata import PackageNotFoundError, version

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)

try:
    __version__: str = version("jaxhalo")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"
