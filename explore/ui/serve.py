"""Serve the gallery at ``/`` and one dashboard per registered lab at ``/<lab_name>``.

Every route is a factory: each browser session builds its own lab and :class:`LabView`
(nothing per-session lives at module level), and closing the session stops its worker.
"""
from __future__ import annotations

import panel as pn

from explore.core.registry import lab_classes
from explore.ui.gallery import gallery
from explore.ui.view import LabView


def lab_page(cls: type, template: bool = True):
    """A new lab of class ``cls`` and its view, wrapped in a page template (one per session)."""
    view = LabView(cls())
    if not template:
        return view
    return pn.template.FastListTemplate(
        title=cls.title or cls.lab_name, sidebar=[view.sidebar], main=[view.main], sidebar_width=400,
    )


def gallery_page(labs: list[str] | None = None):
    """The gallery in a page template (one per session)."""
    return pn.template.FastListTemplate(title="Explore", main=[gallery(labs)])


def routes(labs: list[str] | None = None) -> dict:
    """URL slug → factory, for ``pn.serve``: ``/`` is the gallery, ``/<lab_name>`` each lab."""
    classes = lab_classes()
    names = list(classes) if labs is None else list(labs)
    # plain functions, not functools.partial: pn.serve renders a partial's repr instead of calling it
    def factory(make, *args):
        def page():
            return make(*args)
        return page

    out = {"/": factory(gallery_page, names)}
    for name in names:
        out[f"/{name}"] = factory(lab_page, classes[name])
    return out


def serve(address: str = "127.0.0.1", port: int = 5006, show: bool = False, labs: list[str] | None = None,
          threaded: bool = False, **kwargs):
    """Serve the gallery and the labs with ``pn.serve``.

    Blocks unless ``threaded=True``, which returns the server thread (call its ``stop()``).
    Other keyword arguments go to ``pn.serve`` (e.g. ``websocket_origin``, ``verbose``).
    """
    kwargs.setdefault("websocket_origin", [f"{address}:{port}", f"localhost:{port}"])
    apps = routes(labs)
    classes = lab_classes()
    kwargs.setdefault("title", {slug: "Explore" if slug == "/" else (classes[slug[1:]].title or slug[1:])
                                for slug in apps})
    return pn.serve(apps, address=address, port=port, show=show, threaded=threaded, **kwargs)


__all__ = ["lab_page", "gallery_page", "routes", "serve"]
