"""``jaxhalo simulate``: one Brooks et al. MW-LMC simulation from the command line.

Writes into ``--out``:

* ``catalog.ecsv``: the mock-observed present-day halo in the 30-160 kpc window (a
  :class:`~jaxhalo.catalog.structure.StarCatalog`, readable by ``jaxhalo fit``; the catalogue's frame is
  ``--solar``, and ``jaxhalo fit`` assumes the default frame, so keep ``--solar default`` to fit it);
* ``snapshot.ecsv``: every particle's MW-centred position (kpc) and velocity (km/s) at t = 0;
* ``orbit.ecsv``: the MW-LMC track, t (Myr) and x/v of the MW and LMC centres (kpc, km/s);
* ``summaries.ecsv``: the 52 Brooks et al. (2026) summaries (exact observables);
* ``params.json``: theta, the configuration (every model setting, the DF radial range ``r_min`` /
  ``r_max`` included), c200, a_LMC, ln Lambda, timings;
* plots ``lmc_orbit.png``, ``vgsr_sky_map.png``, ``brooks_summaries.png`` (unless ``--no-plots``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from ..simulation.parameters import FIDUCIAL_THETA, PARAMETER_NAMES
from ._console import add_deprecated_alias, add_verbosity, detail
from ._console import info as say
from ._output import StagedOutput, check_output, strict_json
from ._provenance import command_provenance
from ._setup import setup_jax
from ._validate import SEED, InputError, check_order, float_range, int_range

__all__ = ["add_simulate_parser", "cmd_simulate"]

#: (option, theta name, help) for the 12 Table 1 parameters; defaults from simulator.FIDUCIAL_THETA.
PARAM_OPTIONS = (
    ("--log10-m200", "log10_m200", "log10 M200 of the MW halo [Msun]"),
    ("--m-lmc", "m_lmc", "total LMC mass [Msun] (Hernquist, M(<8.7 kpc) = 1.7e10)"),
    ("--log10-lambda-df", "log10_lambda_df", "log10 of the dynamical-friction strength lambda_DF"),
    ("--ra-lmc", "ra_lmc", "LMC right ascension [deg]"),
    ("--dec-lmc", "dec_lmc", "LMC declination [deg]"),
    ("--d-lmc", "d_lmc", "LMC heliocentric distance [kpc]"),
    ("--vlos-lmc", "vlos_lmc", "LMC line-of-sight velocity [km/s]"),
    ("--pmra-lmc", "pmra_lmc", "LMC proper motion mu_alpha* [mas/yr]"),
    ("--pmdec-lmc", "pmdec_lmc", "LMC proper motion mu_delta [mas/yr]"),
    ("--beta0", "beta0", "constant velocity anisotropy of the halo tracers"),
    ("--r-dens", "r_dens", "tracer density scale radius [kpc] (Brooks et al. 2026 eq. 2)"),
    ("--gamma", "gamma", "outer slope of the tracer density"),
)


def add_simulate_parser(sub) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to an argparse subparsers object."""
    s = sub.add_parser("simulate", help="run one MW-LMC simulation (Brooks et al.) and write catalogue, orbit, plots",
                       description="Run one Brooks et al. MW-LMC simulation and write into --out: catalog.ecsv (the "
                                   "mock-observed halo between --r-min and --r-max, readable by `jaxhalo fit`), "
                                   "snapshot.ecsv, orbit.ecsv, summaries.ecsv, params.json and plots.")
    for opt, name, text in PARAM_OPTIONS:
        default = float(FIDUCIAL_THETA[PARAMETER_NAMES.index(name)])
        s.add_argument(opt, type=float, default=default, help=text)
    s.add_argument("--n-particles", type=int_range(1), default=20_000, help="halo tracer particles")
    s.add_argument("--dt", type=float_range(0.0, lo_open=True), default=1.0, help="leapfrog step [Myr]")
    s.add_argument("--t-back", type=float_range(0.0, lo_open=True), default=2200.0, help="integration time [Myr]")
    s.add_argument("--solver", default="leapfrog", choices=["leapfrog", "dopri8", "tsit5", "dopri5"],
                   help="integrator of the tracer orbits")
    s.add_argument("--inner", default="steepen", choices=["steepen", "exact"],
                   help="tracer cusp for beta0 > 1/2: steepened inside r_core (default) or eq. 2 as is")
    s.add_argument("--solar", default="default", choices=["default", "brooks"], help="solar frame")
    b = s.add_argument_group("Brooks et al. 2025/2026 model settings (defaults: the 2026 set-up)")
    b.add_argument("--c200", type=float, default=None,
                   help="NFW concentration (default: solved for v_c(R_sun) = 235 km/s; 2025 sec. 4.1: 14.5)")
    b.add_argument("--a-lmc", type=float, default=None,
                   help="LMC Hernquist scale radius [kpc] (default: from M(<8.7 kpc) = 1.7e10 Msun; 2025: 18.9)")
    b.add_argument("--lmc-galactocentric", type=float, nargs=6, default=None,
                   metavar=("X", "Y", "Z", "VX", "VY", "VZ"),
                   help="LMC present-day Galactocentric position [kpc] and velocity [km/s], replacing the "
                        "--ra-lmc ... --pmdec-lmc observables")
    b.add_argument("--coulomb-log", type=float, default=None,
                   help="ln Lambda of the dynamical friction (default ln(100 kpc / 1.6 a_LMC))")
    b.add_argument("--friction-sigma", type=float, default=120.0,
                   help="MW velocity dispersion in the friction term [km/s]")
    b.add_argument("--df-potential", default="mw", choices=["mw", "nfw"],
                   help="potential of the halo tracers' DF: the spherically averaged MW (default, 2026) or "
                        "the NFW halo alone (2025)")
    b.add_argument("--df-r-min", type=float, default=0.1, help="inner radius of the sampled tracers [kpc]")
    b.add_argument("--df-r-max", type=float, default=500.0,
                   help="outer radius of the sampled tracers [kpc] (the tracer profile is truncated there)")
    b.add_argument("--orbit-solver", default="dopri8", choices=["dopri8", "leapfrog"],
                   help="MW-LMC orbit: adaptive Dopri8 (default) or fixed-step leapfrog with a second-order "
                        "friction step")
    b.add_argument("--disc", default="exact", choices=["exact", "miyamoto-nagai"],
                   help="Milky Way disc: the exact sech^2 exponential disc (default, tabulated) or its faster "
                        "Miyamoto-Nagai-sum fit (force errors up to ~4 %% off the plane inside 10 kpc)")
    b.add_argument("--orbit-dt", type=float, default=None, help="leapfrog step of the MW-LMC orbit [Myr] (default --dt)")
    s.add_argument("--no-errors", action="store_true", help="catalogue without per-star observational errors")
    r_min = s.add_argument("--r-min", type=float_range(0.0), default=30.0,
                           help="catalogue window: keep stars with r_gal above this [kpc] (as `jaxhalo fit --r-min`)")
    r_max = s.add_argument("--r-max", type=float_range(0.0, lo_open=True), default=160.0,
                           help="catalogue window: keep stars with r_gal below this [kpc]")
    add_deprecated_alias(s, "--r-gal-min", r_min)  # the spellings before the one grammar (issue 17)
    add_deprecated_alias(s, "--r-gal-max", r_max)
    s.add_argument("--seed", type=SEED, default=0, help="random seed (tracer sampling, observational errors)")
    s.add_argument("--out", default="jaxhalo_sim", metavar="DIR", help="output directory (written at the end; see --overwrite)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    s.add_argument("--no-plots", action="store_true", help="skip the three PNG plots")
    add_verbosity(s)
    s.set_defaults(func=cmd_simulate)
    return s


def _log(msg: str) -> None:
    say(f"[jaxhalo simulate] {msg}")


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the simulation described by ``args`` and write its products into ``args.out``: the options and
    ``--out`` are checked before JAX loads, the products written into a temporary directory that replaces
    ``--out`` at the end."""
    check_order(args.r_min, args.r_max, "--r-min", "--r-max")
    if args.dt > args.t_back:
        raise InputError(f"--dt {args.dt:g} Myr is longer than --t-back {args.t_back:g} Myr; give a smaller --dt")
    check_output(args.out, args.overwrite)
    with StagedOutput(args.out) as out:
        return _simulate(args, out)


def _simulate(args: argparse.Namespace, out: Path) -> int:
    """The body of :func:`cmd_simulate`, writing into the staging directory ``out``."""
    import jax  # deferred: the JAX stack loads only when the command runs

    setup_jax()  # the CLI's shared setup: float64, persistent compilation cache
    import jax.numpy as jnp  # deferred: the JAX stack loads only when the command runs
    import numpy as np
    from astropy.table import Table

    from ..catalog.readers import write_catalog
    from ..simulation import brooks as S
    from ..simulation.observe import observe, to_catalog
    from ..simulation.summaries import BROOKS_SUMMARY_LABELS, brooks_summaries

    t_start = time.perf_counter()
    theta = S.theta_from_dict({name: getattr(args, opt[2:].replace("-", "_")) for opt, name, _ in PARAM_OPTIONS})
    cfg = S.SimConfig(n_particles=args.n_particles, dt=args.dt, t_back=args.t_back, solver=args.solver,
                      inner=args.inner, solar=args.solar, c200=args.c200, lmc_scale_radius=args.a_lmc,
                      lmc_phase_space=None if args.lmc_galactocentric is None else tuple(args.lmc_galactocentric),
                      coulomb_log=args.coulomb_log, friction_sigma=args.friction_sigma,
                      df_potential=args.df_potential, r_min=args.df_r_min, r_max=args.df_r_max,
                      orbit_solver=args.orbit_solver, orbit_dt=args.orbit_dt, disc=args.disc)
    for name, value, unit in zip(S.PARAMETER_NAMES, theta, S.PARAMETER_UNITS):
        _log(f"  {name:16s} = {value:.6g} {unit}")
    detail(f"[jaxhalo simulate] JAX {jax.__version__}, devices {jax.devices()}; configuration {cfg}")
    if not bool(S.parameter_valid(theta, cfg)):
        raise InputError("these parameters cannot be simulated (e.g. no c200 <= 100 gives v_c(R_sun) = 235 km/s "
                         "for log10 M200 below ~11.13); change --log10-m200")
    _log(f"{cfg.n_particles} particles, {cfg.solver} dt = {cfg.dt} Myr over {cfg.t_back} Myr "
         f"({cfg.n_steps} steps), seed {args.seed}; compiling (about half a minute) ...")
    key_sim, key_obs = jax.random.split(jax.random.key(args.seed))
    run = jax.jit(S.simulate, static_argnums=2)
    t0 = time.perf_counter()
    compiled = run.lower(jnp.asarray(theta), key_sim, cfg).compile()
    t_compile = time.perf_counter() - t0
    _log(f"compiled in {t_compile:.1f} s; building the MW, LMC orbit, DF and integrating the halo ...")
    t0 = time.perf_counter()
    sim = jax.block_until_ready(compiled(jnp.asarray(theta), key_sim))
    t_run = time.perf_counter() - t0
    rate = cfg.n_particles * cfg.n_steps / t_run
    _log(f"simulated in {t_run:.1f} s ({rate:.3g} particle-steps/s incl. setup); c200 = {float(sim.mw.c200):.3f}, "
         f"a_LMC = {float(sim.lmc.a):.2f} kpc")

    x, v = np.asarray(sim.snapshot.positions), np.asarray(sim.snapshot.velocities)
    solar = cfg.solar_parameters()
    obs = observe(key_obs, x, v, solar, add_errors=not args.no_errors, r_gal_range=(args.r_min, args.r_max))
    cat = to_catalog(obs, solar, extra={"xyz_true": x, "vxyz_true": v})
    write_catalog(cat, out / "catalog.ecsv", overwrite=True)
    _log(f"catalogue: {len(cat)} stars in {args.r_min:g}-{args.r_max:g} kpc -> {out / 'catalog.ecsv'}")
    snap = Table({"x": x[:, 0], "y": x[:, 1], "z": x[:, 2], "vx": v[:, 0], "vy": v[:, 1], "vz": v[:, 2]})
    for c in "xyz":
        snap[c].unit, snap["v" + c].unit = "kpc", "km/s"
    snap.meta["comment"] = ["MW-centred Galactocentric positions and velocities at t = 0"]
    snap.write(out / "snapshot.ecsv", overwrite=True)

    tr = sim.track
    times = np.asarray(tr.times)
    orbit = Table({"t": times})
    orbit["t"].unit = "Myr"
    for part, xs, vs in (("mw", tr.mw_x, tr.mw_v), ("lmc", tr.lmc_x, tr.lmc_v)):
        for i, c in enumerate("xyz"):
            orbit[f"{c}_{part}"] = np.asarray(xs)[:, i]
            orbit[f"{c}_{part}"].unit = "kpc"
        for i, c in enumerate("xyz"):
            orbit[f"v{c}_{part}"] = np.asarray(vs)[:, i]
            orbit[f"v{c}_{part}"].unit = "km/s"
    orbit.meta["comment"] = ["MW and LMC centres in the inertial frame (Galactocentric at t = 0)"]
    orbit.write(out / "orbit.ecsv", overwrite=True)
    sep = np.linalg.norm(np.asarray(tr.lmc_x) - np.asarray(tr.mw_x), axis=1)
    _log(f"orbit: LMC at {sep[0]:.0f} kpc from the MW {cfg.t_back:g} Myr ago, closest {sep.min():.1f} kpc at "
         f"t = {times[np.argmin(sep)]:.0f} Myr; MW displaced by {np.linalg.norm(np.asarray(tr.mw_x[0])):.1f} kpc -> "
         f"{out / 'orbit.ecsv'}")

    exact = observe(key_obs, x, v, solar, add_errors=False)
    summ = brooks_summaries(exact)
    vec = np.asarray(summ.vector())
    Table({"label": list(BROOKS_SUMMARY_LABELS), "value": vec}).write(out / "summaries.ecsv", overwrite=True)
    n_valid = int(np.isfinite(vec).sum())
    _log(f"summaries: {n_valid} of 52 finite -> {out / 'summaries.ecsv'}")

    info = {
        "theta": S.theta_to_dict(theta), "config": dataclasses.asdict(cfg), "seed": args.seed,
        "c200": float(sim.mw.c200), "a_lmc_kpc": float(sim.lmc.a),
        "tracer_r_core_kpc": float(getattr(sim.tracer, "r_core", 0.0)),
        "n_catalog": len(cat), "timings_s": {"compile": t_compile, "simulate": t_run},
    }
    if not args.no_plots:
        _plots(out, sim, exact, summ, times, np)
        _log(f"plots: {out}/lmc_orbit.png vgsr_sky_map.png brooks_summaries.png")
    info["timings_s"]["total"] = time.perf_counter() - t_start
    detail("[jaxhalo simulate] timings [s]: " + ", ".join(f"{k} {v:.2f}" for k, v in info["timings_s"].items()))
    info["provenance"] = command_provenance("simulate", args, solar_parameters=_solar_dict(solar))
    (out / "params.json").write_text(strict_json(info, indent=2, default=float))
    _log(f"done in {info['timings_s']['total']:.1f} s; fit the halo with: jaxhalo fit {Path(args.out) / 'catalog.ecsv'}")
    return 0


def _solar_dict(solar) -> dict:
    """The solar parameters of the observation as plain numbers (kpc, km/s)."""
    import numpy as np  # deferred: with the JAX stack

    return {"galcen_distance_kpc": float(solar.galcen_distance), "z_sun_kpc": float(solar.z_sun),
            "v_sun_kms": [float(v) for v in np.asarray(solar.v_sun)], "tilt": bool(solar.tilt)}


def _plots(out: Path, sim, obs, summ, times, np) -> None:
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

    from ..plots import OKABE_ITO, save_figure
    from ..simulation.summaries import plot_brooks_summaries, plot_sky_map, sky_grid, vgsr_sky_map

    tr = sim.track
    xm, xl = np.asarray(tr.mw_x), np.asarray(tr.lmc_x)
    c_lmc, c_mw = OKABE_ITO[2], OKABE_ITO[1]
    fig, ax = plt.subplots(1, 3, figsize=(13, 4))
    ax[0].plot(times / 1e3, np.linalg.norm(xl - xm, axis=1), "-", color=OKABE_ITO[0])
    ax[0].set_xlabel("t [Gyr] (0: today)"); ax[0].set_ylabel(r"$|x_{\rm LMC} - x_{\rm MW}|$ [kpc]")
    for a, (i, j) in zip(ax[1:], ((1, 2), (0, 2))):
        a.plot(xl[:, i], xl[:, j], "-", color=c_lmc, label="LMC")
        a.plot(xm[:, i], xm[:, j], "-", color=c_mw, label="MW centre")
        a.plot(xl[-1, i], xl[-1, j], "o", color=c_lmc, label="today")
        a.plot(xm[-1, i], xm[-1, j], "o", color=c_mw)
        a.set_xlabel("xyz"[i] + " [kpc]"); a.set_ylabel("xyz"[j] + " [kpc]"); a.set_aspect("equal", "datalim")
    ax[1].legend(frameon=False, fontsize=8)
    fig.suptitle("MW-LMC past orbit (inertial frame = Galactocentric today)")
    fig.tight_layout()
    save_figure(fig, out / "lmc_orbit.png", 90)

    gl, gb = sky_grid(72, 36)
    m, mean = vgsr_sky_map(obs, gl, gb)
    fig = plot_sky_map(gl, gb, m, title=r"$\langle v_{\rm GSR}\rangle$ (sky mean %+.1f km/s removed), 50-100 kpc" % float(mean))
    save_figure(fig, out / "vgsr_sky_map.png", 90)
    fig = plot_brooks_summaries(summ)
    save_figure(fig, out / "brooks_summaries.png", 90)
