"""Import slow modules in a background thread while the main thread computes.

A warm ``jaxhalo fit`` spends most of its wall time in XLA (ML, NUTS), during which the main thread
holds no GIL and at least part of a core is idle; arviz (~1 s: xarray, pandas, its plotting stack) and
matplotlib (~0.5 s), needed only after sampling, can load then instead of on the critical path.
"""

from __future__ import annotations

import importlib
import threading

__all__ = ["prefetch_modules"]


def prefetch_modules(*names: str) -> threading.Thread:
    """Start a daemon thread that imports ``names`` in order; returns the (started) thread.

    Call it after the main thread's own imports (so both threads never import the same package tree
    at once). A module that fails to import here is skipped silently: the main thread's own
    ``import`` of it later raises the error where it belongs. Importing twice is harmless: the
    main thread's import waits for, or reuses, the thread's.
    """

    def _run() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - re-raised by the main thread's own import
                pass

    thread = threading.Thread(target=_run, name="jaxhalo-prefetch", daemon=True)
    thread.start()
    return thread
