"""The MW-LMC two-body orbit (Brooks et al. eqs 3-7): adaptive Dopri8 vs the fixed-step FrictionLeapfrog.

For the fiducial system (M200 = 1e12, a 1.5e11 Msun LMC, lambda_DF = 1, Table 1 LMC centres) and
without friction: the wall time of one compiled 2.2 Gyr integration and the LMC's position error
2.2 Gyr ago against Dopri8 at rtol = atol = 1e-12.
"""

from __future__ import annotations

import os

import equinox as eqx
import jax
import numpy as np

from benchmarks.common import device_name, timeit, write_results
from jaxhalo.dynamics.mwlmc import integrate_mw_lmc, lmc_present_day
from jaxhalo.dynamics.potentials import lmc_hernquist, milky_way

T_BACK = 2200.0


def run(quick: bool = False) -> list[dict]:
    mw = eqx.filter_jit(milky_way)(1.0e12)
    lmc = lmc_hernquist(1.5e11)
    x, v = lmc_present_day()
    records: list[dict] = []
    for lam in (1.0, 0.0):
        def make(dt, tol, lam=lam):
            return eqx.filter_jit(lambda: integrate_mw_lmc(mw, lmc, x, v, lam, rtol=tol, atol=tol, dt=dt,
                                                           max_steps=100_000).state(-T_BACK))

        ref = np.asarray(make(None, 1e-12)())[6:9]
        cases = [("dopri8", None, 1e-10), ("leapfrog", 2.0, None), ("leapfrog", 1.0, None)]
        if not quick:
            cases.append(("leapfrog", 0.5, None))
        for solver, dt, tol in cases:
            f = make(dt, tol or 1e-10)
            t = timeit(f, repeats=3)
            err = float(np.linalg.norm(np.asarray(f())[6:9] - ref))
            records.append({"case": solver, "lambda_df": lam, "dt_myr": dt, "rtol": tol, "lmc_err_kpc": err, **t})
            print(records[-1], flush=True)
    return records


if __name__ == "__main__":
    import sys

    jax.config.update("jax_enable_x64", True)
    quick = "--quick" in sys.argv
    load = os.getloadavg()
    recs = run(quick=quick)
    meta = {
        "description": "MW-LMC orbit over 2.2 Gyr, fiducial system: wall time (compiled) and LMC position "
                       "error 2.2 Gyr ago vs Dopri8 at 1e-12",
        "device": device_name(),
        "load_average_1_5_15_min": load,
    }
    if not quick:
        print(write_results("mwlmc_orbit", recs, meta))
