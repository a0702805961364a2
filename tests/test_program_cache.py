"""jaxhalo.program_cache: a stored export gives the same numbers as the function, per signature."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhalo import program_cache


@pytest.fixture
def cache_dir(tmp_path):
    program_cache.enable(tmp_path)
    program_cache._MEMORY.clear()
    yield tmp_path
    program_cache.enable(None)
    program_cache._MEMORY.clear()


def _fn(x, p):
    return {"s": jnp.sum(jnp.sin(x) * p["a"]) + p["b"], "v": x * p["a"]}


def _check(got, want):
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-15, atol=0)


def test_stored_program_equals_the_function_and_is_reused(cache_dir):
    x, p = jnp.linspace(0.0, 1.0, 5), {"a": jnp.asarray(2.0), "b": 0.5}
    want = jax.jit(_fn)(x, p)
    _check(program_cache.call(_fn, (x, p), "demo"), want)
    files = list(cache_dir.glob("*.jaxexport"))
    assert len(files) == 1
    # a new process has only the file: it deserialises it rather than tracing the function
    program_cache._MEMORY.clear()
    calls = []

    def traced_once_more(*args):
        calls.append(1)
        return _fn(*args)

    _check(program_cache.call(traced_once_more, (x, p), "demo"), want)
    assert calls == []
    # a weak-typed Python float and an array of the same dtype are one signature
    program_cache.call(_fn, (x, {"a": 2.0, "b": jnp.asarray(0.5)}), "demo")
    assert len(list(cache_dir.glob("*.jaxexport"))) == 1
    # another shape or another key is another program
    program_cache.call(_fn, (jnp.ones(7), p), "demo")
    program_cache.call(_fn, (x, p), "other")
    assert len(list(cache_dir.glob("*.jaxexport"))) == 3


def test_a_corrupt_file_is_replaced(cache_dir):
    x, p = jnp.arange(3.0), {"a": jnp.asarray(1.5), "b": jnp.asarray(0.0)}
    program_cache.call(_fn, (x, p), "demo")
    (path,) = cache_dir.glob("*.jaxexport")
    path.write_bytes(b"not a program")
    program_cache._MEMORY.clear()
    _check(program_cache.call(_fn, (x, p), "demo"), jax.jit(_fn)(x, p))
    assert path.read_bytes() != b"not a program"


def test_disabled_or_traced_is_a_plain_call(cache_dir):
    x, p = jnp.arange(3.0), {"a": jnp.asarray(1.5), "b": jnp.asarray(0.0)}
    # under an outer jit the arguments are tracers: the function runs inside the caller's program
    out = jax.jit(lambda x: program_cache.call(_fn, (x, p), "demo")["s"])(x)
    np.testing.assert_allclose(float(out), float(_fn(x, p)["s"]), rtol=1e-15)
    assert list(cache_dir.glob("*.jaxexport")) == []
    program_cache.enable(None)
    _check(program_cache.call(_fn, (x, p), "demo", compiler_options={"xla_backend_optimization_level": 1}),
           jax.jit(_fn)(x, p))
    assert list(cache_dir.glob("*.jaxexport")) == []
