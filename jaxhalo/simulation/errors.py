"""The one error type of the simulation layer."""

__all__ = ["SimulatorError"]


class SimulatorError(ValueError):
    """Invalid simulator input or output: a parameter vector of the wrong shape, out-of-range or
    infeasible parameters, an unknown solver or setting, or a simulator that returns outputs of
    the wrong shape."""
