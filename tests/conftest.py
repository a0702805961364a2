"""Shared test configuration: float64 everywhere, paths to the peer data."""

from __future__ import annotations

import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data/peers beside the checkout (read-only, never shipped).
PEERS = Path(os.environ.get("JAXHALO_PEERS", REPO.parent / "shared" / "data" / "peers"))


def peer_file(relpath: str) -> Path:
    """Path of a peer data file, or skip the test when it is absent."""
    p = PEERS / relpath
    if not p.exists():
        pytest.skip(f"peer data file not available: {p}")
    return p
