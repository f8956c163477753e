"""The diffusion samplers lab as a standalone Panel app: `panel serve apps/diffusion.py` (or `explore serve`)."""
from explore.labs.diffusion import DiffusionLab
from explore.ui import LabView

LabView(DiffusionLab()).servable(title=DiffusionLab.title)
