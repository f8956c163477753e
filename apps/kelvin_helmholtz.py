"""The Kelvin–Helmholtz lab as a standalone Panel app: `panel serve apps/kelvin_helmholtz.py` (or `explore serve`)."""
from explore.labs.kelvin_helmholtz import KelvinHelmholtzLab
from explore.ui import LabView

LabView(KelvinHelmholtzLab()).servable(title=KelvinHelmholtzLab.title)
