"""The gallery index: one card per registered lab (thumbnail, title, one-line description, presets, links)."""
from __future__ import annotations

import functools
import html
import itertools
from urllib.parse import quote

import numpy as np
import panel as pn

from explore.core.frame import Curve, Field, Points
from explore.core.registry import lab_classes
from explore.ui.plots import _positive

THUMB_W, THUMB_H = 320, 90
#: at most this many points of a point cloud are drawn in a thumbnail
THUMB_DOTS = 300


def _one_line(text: str) -> str:
    text = " ".join((text or "").split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _svg_polyline(x: np.ndarray, y: np.ndarray, dots: bool = False) -> str:
    """A curve as an SVG polyline, or (``dots``) a point cloud as small circles, scaled to the thumbnail."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2:
        return ""
    step = max(1, x.size // (THUMB_DOTS if dots else 200))
    x, y = x[::step], y[::step]
    sx = (x - x.min()) / (np.ptp(x) or 1.0) * (THUMB_W - 8) + 4
    sy = THUMB_H - 4 - (y - y.min()) / (np.ptp(y) or 1.0) * (THUMB_H - 8)
    if dots:  # (a cloud joined in sampling order is a scribble)
        return "".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="1.2" fill="currentColor"/>' for a, b in zip(sx, sy))
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(sx, sy))
    return f'<polyline points="{points}" fill="none" stroke="currentColor" stroke-width="1.5"/>'


@functools.lru_cache(maxsize=None)
def thumbnail(name: str) -> str:
    """A small inline SVG of the lab's first frame (its first curve or point cloud; a field's mean
    profile); ``''`` when the lab cannot make one quickly. Computed once per lab and server."""
    try:
        lab = lab_classes()[name]()
        frames = lab.frames()
        frame = next(itertools.islice(frames, 1), None)
        frames.close()
    except Exception:  # noqa: BLE001 - a card without a picture is fine
        return ""
    if frame is None:
        return ""
    shapes = ""
    for sample in [*frame.samples.values(), frame.spectrum]:
        if isinstance(sample, (Curve, Points)):
            y = np.asarray(sample.y, float)
            shapes = _svg_polyline(np.asarray(sample.x, float), np.log10(_positive(y)) if getattr(sample, "logy", False)
                                   else y, dots=isinstance(sample, Points))
        elif isinstance(sample, Field):
            shapes = _svg_polyline(np.asarray(sample.x, float), np.nanmean(np.asarray(sample.values, float), axis=0))
        if shapes:
            break
    if not shapes:
        return ""
    return (f'<svg role="img" aria-label="first frame of {html.escape(name)}" width="{THUMB_W}" '
            f'height="{THUMB_H}" viewBox="0 0 {THUMB_W} {THUMB_H}" style="color:#0072B5;display:block;'
            f'margin-bottom:6px">{shapes}</svg>')


def lab_card(cls: type, prefix: str = "./", thumb: bool = True) -> pn.pane.HTML:
    """The card of one lab class: a thumbnail, its title linking to ``{prefix}{lab_name}``, its
    one-line description and its presets, each linking to ``{prefix}{lab_name}?preset=...``."""
    name = cls.lab_name
    url = f"{prefix}{quote(name)}"
    presets = ", ".join(f'<a href="{url}?preset={quote(p)}">{html.escape(p)}</a>' for p in cls.presets) or "none"
    body = (
        (thumbnail(name) if thumb else "")
        + f'<h3 style="margin:0 0 4px 0"><a href="{url}">{html.escape(cls.title or name)}</a></h3>'
        f'<p style="margin:0 0 4px 0">{html.escape(_one_line(cls.description))}</p>'
        f'<p style="margin:0;opacity:0.75;font-size:90%">presets: {presets} · <code>{html.escape(name)}</code></p>'
    )
    # the card's frame is drawn by the markup itself: the pane's own styles framed its outer box, which
    # the text (laid out 340 px wide inside the padding) ran past
    card = ('<div style="border:1px solid #ddd;border-radius:6px;padding:10px;box-sizing:border-box;'
            f'width:340px;overflow-wrap:anywhere">{body}</div>')
    return pn.pane.HTML(card, name=name, width=340, margin=8)


def gallery(labs: list[str] | None = None, prefix: str = "./") -> pn.Column:
    """The index page: a card per registered lab (or per name in ``labs``), each linking to ``/<lab_name>``."""
    classes = lab_classes()
    names = list(classes) if labs is None else list(labs)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise KeyError(f"unknown labs {unknown}; known labs: {', '.join(classes) or 'none'}")
    cards = [lab_card(classes[n], prefix) for n in names]
    intro = pn.pane.Markdown(
        "# Explore\nLive, parameterized labs for numerical methods. Pick a lab; every knob is a parameter, "
        "runs stream live, and each run exports to netCDF or to a line of code."
        + ("" if cards else "\n\n*No labs are registered.*")
    )
    return pn.Column(intro, pn.FlexBox(*cards), sizing_mode="stretch_width")


__all__ = ["gallery", "lab_card"]
