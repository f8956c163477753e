"""The NLSE lab as a standalone Panel app: `panel serve apps/nlse.py` (or `explore serve`)."""
from explore.labs.nlse import NLSELab
from explore.ui import LabView

LabView(NLSELab()).servable(title=NLSELab.title)
