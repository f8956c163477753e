"""Explore: live, parameterized labs for numerical methods.

Layers (imports point down only): ``ui`` → ``labs`` → ``numerics`` → ``core``; :mod:`explore._host`
(copies to the host, NumPy only) is shared by all of them.
Importing :mod:`explore` registers the built-in labs; it does not import Panel.
"""
from explore.core import Frame, Lab, SolverDiverged, get_lab, lab_names, register_lab

__all__ = ["Frame", "Lab", "SolverDiverged", "get_lab", "lab_names", "register_lab"]
__version__ = "0.1.0"
