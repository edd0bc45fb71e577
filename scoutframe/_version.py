"""The package version: one home, read by ``scoutframe.__version__``, the User-Agent and hatch."""

__version__ = "0.1.0"
