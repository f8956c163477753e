"""Notebook set-up that needs no internet: Panel and HoloViews with everything embedded.

``pn.extension(inline=True)`` embeds BokehJS and Panel's JavaScript, and Panel inlines the
stylesheets of what *it* displays. HoloViews displays its own objects by another path, whose
components link Panel's stylesheets on Panel's CDN: offline, every plot then logs failed requests
(and renders unstyled). :func:`offline_notebook` routes HoloViews objects through Panel's display.
"""
from __future__ import annotations

import holoviews as hv
import panel as pn


def _panel_bundle(obj, include=None, exclude=None):
    return pn.panel(obj)._repr_mimebundle_(include, exclude)


def offline_notebook() -> None:
    """Load Panel and HoloViews (Bokeh) for this notebook with every resource embedded."""
    pn.extension(inline=True)
    hv.extension("bokeh", inline=True)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.mimebundle_formatter.for_type(hv.core.Dimensioned, _panel_bundle)


__all__ = ["offline_notebook"]
