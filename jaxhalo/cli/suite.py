"""``jaxhalo suite run`` / ``jaxhalo suite info``: sharded, chunked, resumable simulation suites."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._console import add_verbosity
from ._console import info as say
from ._provenance import command_provenance, write_run_provenance
from ._setup import enable_x64, fail
from ._validate import SEED, InputError, float_range, int_range

__all__ = ["add_suite_parser", "cmd_suite_info", "cmd_suite_run", "precheck_suite_run"]


def precheck_suite_run(args: argparse.Namespace) -> None:
    """What ``suite run`` checks before JAX loads: ``--out`` is a directory (or new), ``--start``/``--stop``
    fall on chunk boundaries inside [0, --n], and an existing store has the same --n, --chunk and --seed."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give the store directory (created, or resumed if it exists)")
    n, c = args.n, args.chunk
    stop = n if args.stop is None else args.stop
    if not args.start < stop <= n:
        raise InputError(f"--start {args.start} / --stop {stop} must satisfy 0 <= start < stop <= --n {n}")
    if args.start % c or (stop % c and stop != n):
        raise InputError(f"--start/--stop must be multiples of the chunk size {c} (or --stop = --n = {n}); "
                         f"got [{args.start}, {stop})")
    if args.simulator != "brooks" and args.disc is not None:
        raise InputError(f"--disc sets the Milky Way disc of the brooks simulator; --simulator {args.simulator} has none")
    manifest = out / "suite.json"
    if manifest.is_file():
        try:
            have = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"corrupt suite manifest {manifest} ({exc}); write to a new --out") from exc
        diffs = [f"{opt} {have.get(key)!r} (this run {mine!r})"
                 for opt, key, mine in (("--n", "n_total", n), ("--chunk", "chunk_size", c), ("--seed", "seed", args.seed))
                 if have.get(key) != mine]
        if diffs:
            raise InputError(f"the suite store {out} was made with " + ", ".join(diffs)
                             + "; rerun with the store's settings or write to a new --out")


def cmd_suite_run(args: argparse.Namespace) -> int:
    """Run (or resume) a suite into ``--out``; the options and an existing store's settings are checked
    before JAX loads."""
    precheck_suite_run(args)
    enable_x64()
    import jax  # deferred: the JAX stack loads only when the command runs

    from ..sbi.priors import PriorError, get_prior
    from ..sbi.simulators import make_simulator
    from ..sbi.store import SuiteStoreError
    from ..sbi.suite import run_suite
    from ..simulation.errors import SimulatorError

    try:
        prior = get_prior(args.prior)
        if args.simulator == "linear-gaussian":
            sim = make_simulator("linear-gaussian", prior, n_particles=args.n_particles, n_summaries=args.n_summaries,
                                 noise=args.noise)
        else:
            sim = make_simulator("brooks", prior, n_particles=args.n_particles, dt=args.dt, disc=args.disc,
                                 reflex_fit=args.reflex_fit or None)
        devs = jax.devices()
        say(f"[jaxhalo suite] {args.n} simulations ({sim.name}, prior {prior.name}, seed {args.seed}) into {args.out}; "
              f"chunks of {args.chunk} over {len(devs)} {devs[0].platform} device(s)")
        if args.chunk % len(devs):
            say(f"[jaxhalo suite] note: chunk size {args.chunk} is not a multiple of the {len(devs)} devices; "
                  "each chunk is padded (wasted work)")
        rep = run_suite(args.out, sim, prior, args.n, chunk_size=args.chunk, seed=args.seed, start=args.start,
                        stop=args.stop, progress=not args.no_progress, max_chunks=args.max_chunks,
                        micro_batch=args.micro_batch)
    except (PriorError, SimulatorError, SuiteStoreError, ValueError) as exc:
        return fail(str(exc), "suite run")
    info = rep.store.info()
    write_run_provenance(args.out, command_provenance("suite run", args, [], simulator=sim.name, prior=prior.name,
                                                      chunks_written=list(rep.chunks_written)))
    say(f"[jaxhalo suite] wrote {len(rep.chunks_written)} chunk(s) ({rep.n_simulated} simulations) in {rep.wall_s:.1f} s"
          f" ({rep.sims_per_s:.2f} sims/s after the first chunk); skipped {len(rep.chunks_skipped)} finished chunk(s)"
          + (f"; left {len(rep.chunks_elsewhere)} chunk(s) claimed by another writer" if rep.chunks_elsewhere else ""))
    say(f"[jaxhalo suite] store: {info['simulations_done']}/{info['n_total']} simulations done"
          + (f"; missing ranges {info['missing_ranges'][:4]}" if info["missing_ranges"] else " (complete)"))
    return 0


def cmd_suite_info(args: argparse.Namespace) -> int:
    from ..sbi.store import SuiteStore, SuiteStoreError  # deferred: the JAX stack loads only when the command runs

    try:
        store = SuiteStore.open(args.store)
        info = store.info()
        if args.check:
            store.load()  # reads every chunk: raises on a corrupt one
    except SuiteStoreError as exc:
        return fail(str(exc), "suite info")
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"suite store   {info['path']}")
    print(f"simulator     {info['simulator']['name']}  {json.dumps(info['simulator']['config'])}")
    print(f"prior         {info['prior']['name']}  ({info['prior'].get('description', '')})")
    print(f"seed          {info['seed']}")
    print(f"parameters    {', '.join(info['parameter_names'])}")
    print("outputs       " + ", ".join(f"{k} {tuple(v['shape'])} {v['dtype']}" for k, v in info["outputs"].items()))
    print(f"progress      {info['simulations_done']}/{info['n_total']} simulations, "
          f"{info['chunks_done']}/{info['n_chunks']} chunks of {info['chunk_size']}")
    if info["missing_ranges"]:
        shown = ", ".join(f"[{a}, {b})" for a, b in info["missing_ranges"][:8])
        print(f"missing       {shown}{' ...' if len(info['missing_ranges']) > 8 else ''}")
    print(f"code          {info['code_version']} (chunks: {info['chunk_code_versions']})")
    if info["corrupt_chunks"]:
        print(f"corrupt       {len(info['corrupt_chunks'])} chunk(s) {sorted(info['corrupt_chunks'])[:8]} fail their checks "
              "(counted as missing; `jaxhalo suite run` recomputes them)")
        for k, why in sorted(info["corrupt_chunks"].items())[:3]:
            print(f"              chunk {k}: {why}")
    counts = info["row_status"]
    print("rows          " + ", ".join(f"{n} {label}" for label, n in counts.items()))
    if info["locked_chunks"]:
        print(f"in progress   {len(info['locked_chunks'])} chunk(s) claimed by a writer: {info['locked_chunks'][:8]}")
    if info["stray_temporary_files"]:
        print(f"stray files   {len(info['stray_temporary_files'])} temporary file(s) from interrupted writers "
              "(harmless; delete when no run is active)")
    return 0


def add_suite_parser(sub) -> None:
    s = sub.add_parser("suite", help="run and inspect simulation suites (sharded, chunked, resumable)")
    ss = s.add_subparsers(dest="suite_command", required=True)
    r = ss.add_parser("run", help="simulate a suite into a store; rerun the same command to resume")
    r.add_argument("--n", type=int_range(1), required=True, help="total number of simulations in the suite")
    r.add_argument("--out", required=True, metavar="DIR",
                   help="store directory (created, or resumed if it exists: unlike the other commands' --out, a suite "
                        "store is extended in place, chunk by chunk, and never replaced)")
    r.add_argument("--chunk", type=int_range(1), default=64, help="simulations per chunk (a multiple of the device count)")
    r.add_argument("--seed", type=SEED, default=0, help="random seed of the suite (parameters and simulations)")
    r.add_argument("--start", type=int_range(0), default=0, help="first global index to run (a chunk boundary)")
    r.add_argument("--stop", type=int_range(1), default=None, help="one past the last index to run (a chunk boundary or N)")
    r.add_argument("--max-chunks", type=int_range(1), default=None, help="stop after writing this many chunks")
    r.add_argument("--micro-batch", type=int_range(1), default=None,
                   help="simulations vmapped at once per device (default 4; a loop over groups bounds memory); results "
                        "depend on it, not on the chunk size or device count: keep it fixed within a store")
    r.add_argument("--reflex-fit", action="store_true",
                   help="also store each simulated halo's ML reflex fit (continuity model, Cartesian apex) and "
                        "v_travel at 40/100/120 kpc (Brooks et al. 2026 3.2.1)")
    r.add_argument("--prior", default="brooks2026", choices=["brooks2026", "brooks2025"],
                   help="parameter prior: Brooks et al. 2026 Table 1, or the 2025 paper's")
    r.add_argument("--simulator", default="brooks", choices=["brooks", "linear-gaussian"],
                   help="'brooks': the MW-LMC simulator; 'linear-gaussian': a cheap toy with a known likelihood")
    r.add_argument("--n-particles", type=int_range(1), default=None, help="tracer particles per simulation (simulator default)")
    r.add_argument("--dt", type=float_range(0.0, lo_open=True), default=None, help="integration step in Myr (brooks simulator; its default)")
    r.add_argument("--disc", default=None, choices=["exact", "miyamoto-nagai"],
                   help="brooks simulator: the Milky Way's disc, the exact sech^2 exponential disc (the simulator's "
                        "default) or the Miyamoto-Nagai sum (~3x faster on a CPU; c200 +0.2 %%)")
    r.add_argument("--n-summaries", type=int_range(1), default=None, help="linear-gaussian only: summary length (52)")
    r.add_argument("--noise", type=float_range(0.0), default=None, help="linear-gaussian only: summary noise (0.3)")
    r.add_argument("--no-progress", action="store_true", help="no progress line per chunk")
    add_verbosity(r)
    r.set_defaults(func=cmd_suite_run, command_label="suite run")
    i = ss.add_parser("info", help="describe a suite store")
    i.add_argument("store", help="suite store directory (the --out of `jaxhalo suite run`)")
    i.add_argument("--json", action="store_true", help="the description as JSON")
    i.add_argument("--check", action="store_true", help="read every chunk to verify it (with -q: only the exit code)")
    add_verbosity(i)
    i.set_defaults(func=cmd_suite_info, command_label="suite info")
