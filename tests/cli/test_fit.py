"""End-to-end: `jaxhalo fit` on a small catalogue writes every product."""

from __future__ import annotations

import json

import jax
import numpy as np

from jaxhalo.catalog.readers import write_catalog
from jaxhalo.example_data import EXAMPLE_CATALOG, EXAMPLE_TRUTH
from jaxhalo.cli import main
from jaxhalo.likelihoods.reflex import ReflexModel
from jaxhalo.mocks.reflex import make_reflex_mock


def test_fit_end_to_end(tmp_path, capsys):
    spec = ReflexModel("constant", "galactic")
    cat, info = make_reflex_mock(jax.random.PRNGKey(3), 300, spec)
    path = tmp_path / "small.ecsv"
    write_catalog(cat, path)
    out = tmp_path / "fit"
    rc = main(["fit", str(path), "--model", "constant", "--apex", "galactic", "--chains", "2", "--warmup", "150",
               "--samples", "150", "--n-clip", "2", "--no-progress", "--no-cache", "--out", str(out)])
    assert rc == 0
    for f in ("posterior.nc", "summary.csv", "summary.md", "corner.png", "vtravel_profile.png", "apex_sky.png", "diagnostics.json"):
        assert (out / f).stat().st_size > 0, f
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["n_stars"] == 300 and diag["n_used"] <= 300
    text = capsys.readouterr().out
    assert "v_travel" in text and "r_hat" in text
    import arviz as az

    idata = az.from_netcdf(out / "posterior.nc")
    assert idata.log_likelihood["star"].shape[-1] == diag["n_used"]
    # the posterior of the true speed is sensible for 300 stars (generous: 4 sigma ~ 25 km/s)
    assert abs(float(np.median(idata.posterior["v_travel"])) - info["truth"]["v_travel"]) < 25


def test_bundled_example_is_consistent():
    from jaxhalo.catalog.readers import read_catalog

    cat = read_catalog(EXAMPLE_CATALOG)
    info = json.loads(EXAMPLE_TRUTH.read_text())
    assert len(cat) == info["n"] == 850
    r = cat.r_gal()
    assert r.min() > 30 and r.max() < 190  # 40-160 kpc true radii, scattered by distance errors
    assert set(ReflexModel(info["spec"]["form"], info["spec"]["apex"]).param_names) == set(info["truth"])


def test_setup_jax_host_devices_and_cache(tmp_path):
    """The CLI splits the CPU into one XLA host device per chain and turns on the compile cache.

    Run in a fresh interpreter: the host device count can only be set before JAX starts.
    """
    import os
    import subprocess
    import sys

    code = (
        "import jaxhalo; from jaxhalo.cli import setup_jax; import jax, jax.numpy as jnp;"
        "d = setup_jax(host_devices=3, cache=True); print(d);"
        "assert jax.device_count() == 3, jax.devices();"
        "assert jnp.ones(2).dtype == jnp.float64;"
        "f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T); f(jnp.ones((300, 300))).block_until_ready()"
    )
    env = {**os.environ, "JAXHALO_CACHE_DIR": str(tmp_path / "xla"), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "host_devices" in r.stdout and "compilation_cache" in r.stdout
    assert (tmp_path / "xla").is_dir()
