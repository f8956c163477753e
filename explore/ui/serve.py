"""Serve the gallery at ``/`` and one dashboard per registered lab at ``/<lab_name>``.

Every route is a factory: each browser session builds its own lab and :class:`LabView`
(nothing per-session lives at module level), and closing the session stops its worker.
A lab page reads its configuration from the URL (``?preset=two_soliton&N=1024``) and writes it back
as the widgets change. Pages need nothing from the internet: Panel serves its JS/CSS itself, and the
template's web font (Open Sans from Google Fonts) is replaced by the system font.
"""
from __future__ import annotations

import base64
import logging
import sys

import panel as pn
from panel.io.resources import CDN_DIST
from panel.theme import Fast
from panel.theme.base import THEMES

from explore.core.registry import lab_classes
from explore.ui.gallery import gallery
from explore.ui.urlstate import apply_query
from explore.ui.view import LabView, report_refused_edits

#: how often the server looks for sessions without a connection, and how long one may stay so before
#: it is discarded (milliseconds). The lifetime must cover a slow page load: a session is created by
#: the page's HTTP request and gets its connection only once the page's scripts run. A closed page's
#: run stops sooner than this, from its view (``LabView``: ``ORPHAN_S``).
CHECK_UNUSED_SESSIONS_MS = 2000
UNUSED_SESSION_LIFETIME_MS = 30000

#: the page's font: the system UI font (the template's default loads Open Sans from Google Fonts)
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

#: before the page renders, a dark browser without ?theme= in the URL reloads once with ?theme=dark
_THEME_JS = """(function () { try {
  var q = new URLSearchParams(window.location.search);
  if (!q.has("theme") && window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches) {
    q.set("theme", "dark");
    window.location.replace(window.location.pathname + "?" + q.toString() + window.location.hash);
  }
} catch (e) {} })();"""
THEME_JS_URL = "data:text/javascript;base64," + base64.b64encode(_THEME_JS.encode()).decode()


class OfflineFast(Fast):
    """Panel's Fast design without its web font: Fast lists Open Sans from fonts.googleapis.com as a
    resource of every page (a failed request and a console error offline)."""

    _resources = {
        **Fast._resources,
        "font": {},
        # named by its bundled URL: a relative path would be looked up under this subclass's name
        "js_modules": {**Fast._resources["js_modules"], "fast-design": f"{CDN_DIST}bundled/fast/js/fast_design.js"},
    }


def _drop_unknown_theme() -> None:
    """Forget a ``?theme=`` that names no theme: Panel's template looks it up unchecked (an unknown name
    made a dead page with a traceback quoting it, a script in it ran)."""
    args = pn.state.session_args
    value = args.get("theme") if isinstance(args, dict) else None
    if not value:
        return
    name = value[0].decode("utf-8", "replace").strip("'").strip('"') if isinstance(value[0], bytes) else str(value[0])
    if name not in THEMES:
        del args["theme"]


def page(title: str, main: list, sidebar: list | None = None, **kwargs) -> pn.template.FastListTemplate:
    """A page in the project's template: offline, following the browser's light/dark preference."""
    _drop_unknown_theme()
    template = pn.template.FastListTemplate(
        title=title, main=main, sidebar=sidebar or [], design=OfflineFast, font=FONT, font_url="", **kwargs,
    )
    template.config.js_files["explore_theme"] = THEME_JS_URL
    return template


def lab_page(cls: type, template: bool = True, args: dict | None = None):
    """A new lab of class ``cls`` and its view, configured from the URL, in a page template (one per session).

    Whatever the link holds, the page opens: values that cannot be applied are reported in it, and if
    building the page still fails, it opens with the lab's defaults and says why."""
    try:
        return _lab_page(cls, template, args)
    except Exception as exc:  # noqa: BLE001 - never a dead page with a traceback
        view = _lab_page(cls, template=False, args={})
        view._show_alert(f"The link could not be opened ({type(exc).__name__}: {exc}); the page shows the "
                         "lab's defaults.", "warning")
        if not template:
            return view
        return page(cls.title or cls.lab_name, main=[view.main], sidebar=[view.sidebar], sidebar_width=400)


def _lab_page(cls: type, template: bool = True, args: dict | None = None):
    report_refused_edits()  # (also for pages served by `panel serve`, not only by `serve` below)
    lab = cls()
    if args is None:
        args = dict(pn.state.session_args) if pn.state.curdoc is not None else {}
    preset, problems = apply_query(lab, args)
    view = LabView(lab, preset=preset)
    alerts = ["The link could not be applied in full: " + " · ".join(problems)] if problems else []
    runnable = True
    try:  # values that are each fine but cannot run together (an odd N where the grid must be even)
        lab.validate()
    except Exception as exc:  # noqa: BLE001 - any failed check is reported in the page, never a dead page
        alerts.append(f"The link's values cannot run as they are: {exc}. Change it, then press Run.")
        runnable = False
    if alerts:
        view._show_alert(" ".join(alerts), "warning", about_values=True)
    if runnable and pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.onload(view.show_initial_state)  # the page opens on its initial state, not on empty plots
    if pn.state.curdoc is not None and pn.state.location is not None:
        view.sync_location(pn.state.location, rewrite_on_load=bool(problems))
    if not template:
        return view
    return page(cls.title or cls.lab_name, main=[view.main], sidebar=[view.sidebar], sidebar_width=400)


def gallery_page(labs: list[str] | None = None):
    """The gallery in a page template (one per session)."""
    return page("Explore", main=[gallery(labs)])


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


#: seconds a thread holding the GIL runs before another may take it (Python's default: 5 ms). The
#: server's event loop pushes plots and answers clicks between the lab threads' Python code: behind a
#: lab thread looping in Python, a streaming push took ~7x its own CPU time in wall time
GIL_SWITCH_INTERVAL_S = 0.001


def serve(address: str = "127.0.0.1", port: int = 5006, show: bool = False, labs: list[str] | None = None,
          threaded: bool = False, **kwargs):
    """Serve the gallery and the labs with ``pn.serve``.

    Blocks unless ``threaded=True``, which returns the server thread (call its ``stop()``).
    Other keyword arguments go to ``pn.serve`` (e.g. ``websocket_origin``, ``verbose``).
    """
    kwargs.setdefault("websocket_origin", [f"{address}:{port}", f"localhost:{port}"])
    # the event loop shares the GIL with every running lab's worker thread: hand it over sooner
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
    # a closed tab's session (its memory) goes within ~30 s; its worker thread stops within ~2 s
    kwargs.setdefault("check_unused_sessions_milliseconds", CHECK_UNUSED_SESSIONS_MS)
    kwargs.setdefault("unused_session_lifetime_milliseconds", UNUSED_SESSION_LIFETIME_MS)
    report_refused_edits()
    quiet_closed_pages()
    apps = routes(labs)
    classes = lab_classes()
    kwargs.setdefault("title", {slug: "Explore" if slug == "/" else (classes[slug[1:]].title or slug[1:])
                                for slug in apps})
    return pn.serve(apps, address=address, port=port, show=show, threaded=threaded, **kwargs)


class _ClosedPageNoise(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for a message Tornado could not write to a
    page that had just closed (``WebSocketClosedError``, ``StreamClosedError``): two in three tabs closed
    while streaming logged such a traceback, though the session and its run stop as they should (a
    known Bokeh/Tornado behaviour). Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        from tornado.iostream import StreamClosedError
        from tornado.websocket import WebSocketClosedError

        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, (WebSocketClosedError, StreamClosedError))


def quiet_closed_pages() -> None:
    """Install :class:`_ClosedPageNoise` on asyncio's logger (once)."""
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _ClosedPageNoise) for f in log.filters):
        log.addFilter(_ClosedPageNoise())


__all__ = ["lab_page", "gallery_page", "routes", "serve"]
