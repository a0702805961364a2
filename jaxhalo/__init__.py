"""jaxhalo: fast, differentiable, GPU-ready kinematics and dynamics of the Milky Way's outer halo."""

from . import constants, frames
from .frames import SolarParameters

__version__ = "0.1.0"

__all__ = ["constants", "frames", "SolarParameters", "__version__"]
