"""The reaction–diffusion lab as a standalone Panel app: `panel serve apps/reaction_diffusion.py` (or `explore serve`)."""
from explore.labs.reaction_diffusion import ReactionDiffusionLab
from explore.ui import LabView

LabView(ReactionDiffusionLab()).servable(title=ReactionDiffusionLab.title)
