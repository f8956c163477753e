"""The generic dashboard: :class:`LabView` for any lab, the :func:`gallery` index, :func:`serve`.

This package is the only place that imports Panel, HoloViews and Bokeh.
"""
from explore.ui.gallery import gallery
from explore.ui.serve import serve
from explore.ui.view import LabView

__all__ = ["LabView", "gallery", "serve"]
