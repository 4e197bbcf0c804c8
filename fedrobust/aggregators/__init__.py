"""Robust aggregation: pure, vectorised torch functions over an (n, d) tensor of client vectors.

Every function takes rows = clients, columns = coordinates, runs unchanged on CPU or CUDA, checks its
arguments and returns results on the input's device.
"""

from .mean import mean

__all__ = ["mean"]
