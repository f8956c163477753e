"""The gallery index: one card per registered lab (title, one-line description, presets, link)."""
from __future__ import annotations

import html

import panel as pn

from explore.core.registry import lab_classes


def _one_line(text: str) -> str:
    text = " ".join((text or "").split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def lab_card(cls: type, prefix: str = "./") -> pn.pane.HTML:
    """The card of one lab class: its title linking to ``{prefix}{lab_name}``, description, presets."""
    name = cls.lab_name
    presets = ", ".join(html.escape(p) for p in cls.presets) or "none"
    body = (
        f'<h3 style="margin:0 0 4px 0"><a href="{prefix}{html.escape(name)}">{html.escape(cls.title or name)}</a></h3>'
        f'<p style="margin:0 0 4px 0">{html.escape(_one_line(cls.description))}</p>'
        f'<p style="margin:0;color:#666;font-size:90%">presets: {presets} · <code>{html.escape(name)}</code></p>'
    )
    return pn.pane.HTML(body, name=name, width=340, margin=8,
                        styles={"border": "1px solid #ddd", "border-radius": "6px", "padding": "10px"})


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
