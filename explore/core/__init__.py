"""The contract every lab fulfils: :class:`Lab`, :class:`Frame`, backends, results, registry."""
from explore.core.backend import BackendUnavailable, get_namespace, to_host
from explore.core.frame import Curve, Field, Frame, Points
from explore.core.lab import Alias, Lab, SolverDiverged
from explore.core.memory import RunTooLarge
from explore.core.registry import get_lab, lab_classes, lab_names, register_lab

__all__ = [
    "Alias", "BackendUnavailable", "Curve", "Field", "Frame", "Lab", "Points", "SolverDiverged",
    "RunTooLarge", "get_lab", "get_namespace", "lab_classes", "lab_names", "register_lab", "to_host",
]
