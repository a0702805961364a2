"""Posterior predictive checks (Brooks et al. 2025 §5.2, 2026 App. A): re-simulate from posterior draws.

:func:`posterior_predictive` completes each posterior draw of the inferred parameters with fixed
values for the others (e.g. the LMC observables and gamma that Brooks et al. 2026 §5.1 condition
on), runs the suite simulator on all of them in one sharded, vmapped batch, and returns the
predicted summaries. :func:`ppc_table` compares them with the observed vector: per summary the
predictive mean, standard deviation, the z-score of the observation and whether it lies more than
``z_flag`` predictive standard deviations away (the "poorly represented" points of Brooks et al.
2026 Figs 1-2, which use 3).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..simulation.errors import SimulatorError
from .simulators import SuiteSimulator

__all__ = ["complete_theta", "posterior_predictive", "ppc_table"]


def complete_theta(samples: np.ndarray, names: Sequence[str], all_names: Sequence[str],
                   fixed: Mapping[str, float]) -> np.ndarray:
    """Full parameter vectors (n, P_all) from draws (n, P) of ``names`` plus ``fixed`` values for the rest."""
    samples = np.atleast_2d(np.asarray(samples, dtype=float))
    missing = [n for n in all_names if n not in names and n not in fixed]
    if missing:
        raise SimulatorError(f"posterior predictive needs values for {missing} (give them in 'fixed')")
    out = np.empty((samples.shape[0], len(all_names)))
    for j, n in enumerate(all_names):
        out[:, j] = samples[:, list(names).index(n)] if n in names else float(fixed[n])
    return out


def posterior_predictive(simulator: SuiteSimulator, samples: np.ndarray, names: Sequence[str], key: jax.Array,
                         fixed: Mapping[str, float] | None = None, devices: list | None = None) -> np.ndarray:
    """Summaries (n, S) simulated at the n posterior draws (completed by ``fixed``), one key per draw.

    Sharded over ``devices`` (default all) like a suite chunk; n is padded to a multiple of the
    device count internally.
    """
    theta = complete_theta(samples, names, simulator.parameter_names, fixed or {})
    n = theta.shape[0]
    devices = list(devices or jax.devices())
    pad = (-n) % len(devices)
    theta_p = np.concatenate([theta, np.repeat(theta[-1:], pad, axis=0)]) if pad else theta
    keys = jax.random.split(key, theta_p.shape[0])
    mesh = Mesh(np.array(devices), ("sims",))
    sh = NamedSharding(mesh, PartitionSpec("sims"))
    fn = jax.jit(jax.vmap(lambda t, k: simulator.outputs(t, k)["summaries"]), in_shardings=(sh, sh), out_shardings=sh)
    out = fn(jax.device_put(theta_p, sh), jax.device_put(keys, sh))
    return np.asarray(out)[:n]


def ppc_table(predicted: np.ndarray, observed: np.ndarray, z_flag: float = 3.0,
              labels: Sequence[str] | None = None) -> dict[str, np.ndarray | list]:
    """Per-summary predictive mean/std (NaN-aware), the observation's z-score and the > z_flag flags."""
    predicted = np.asarray(predicted, dtype=float)
    observed = np.asarray(observed, dtype=float).reshape(-1)
    if predicted.ndim != 2 or predicted.shape[1] != observed.size:
        raise SimulatorError(f"predicted summaries {predicted.shape} do not match the observed vector ({observed.size},)")
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(predicted, axis=0)
        sd = np.nanstd(predicted, axis=0)
        z = (observed - mean) / sd
    return {"mean": mean, "std": sd, "z": z, "flagged": np.abs(z) > z_flag,
            "labels": list(labels) if labels is not None else [f"s{i}" for i in range(observed.size)]}
