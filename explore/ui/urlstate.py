"""URL state of a lab page: ``?preset=two_soliton&N=1024&integrator=etdrk4``.

The query names a preset and the parameters that differ from it, so a shared link opens the same
configuration and the URL stays short. Values are written as JSON where that differs from the plain
string (``1024``, ``0.001``, ``true``) and as plain strings otherwise (``etdrk4``).

File names (a lab's ``output_files`` and ``input_files``) are neither written to nor taken from a
link: a link that named a checkpoint file would have the server overwrite that path when its
reader pressed Run. They are set in the page.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import param

#: query keys that are not lab parameters
RESERVED = ("preset", "theme")


def _encode(value: Any) -> str:
    if isinstance(value, str) and _decode(value) == value:
        return value  # a plain string reads back as itself
    return json.dumps(value)  # (so does a string that looks like JSON, "123" or "null", quoted)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def reference_values(lab, preset: str | None) -> dict[str, Any]:
    """The parameter values of ``preset`` (the defaults when ``None``)."""
    ref = type(lab)(preset=preset) if preset in type(lab).presets else type(lab)()
    return ref.values()


def query_of(lab, preset: str | None) -> dict[str, str]:
    """The query of ``lab``'s configuration: ``preset`` plus each parameter that differs from it."""
    ref = reference_values(lab, preset)
    out: dict[str, str] = {}
    if preset is not None:
        out["preset"] = preset
    files = lab.file_parameters()
    for key, value in lab.values().items():
        if key != "backend" and key not in files and ref.get(key, object()) != value:
            out[key] = _encode(value)
    return out


def search_of(lab, preset: str | None) -> str:
    """``query_of`` as a ``location.search`` string (``''`` when empty)."""
    query = query_of(lab, preset)
    return "?" + urlencode(query) if query else ""


def parse_query(args: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``(preset, values)`` from query arguments (values may be lists of bytes, as Bokeh gives them)."""
    flat: dict[str, str] = {}
    for key, value in args.items():
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else ""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        flat[key] = str(value)
    preset = flat.pop("preset", None)
    for key in RESERVED:
        flat.pop(key, None)
    return preset, {k: _decode(v) for k, v in flat.items()}


def apply_query(lab, args: dict[str, Any]) -> tuple[str | None, list[str]]:
    """Apply a page's query to ``lab``: the preset first, then each value; return (preset, problems).

    A problem (unknown preset, unknown parameter, bad value) is reported, never raised, so a mistyped
    link still opens the page, with an alert.
    """
    preset, values = parse_query(args)
    problems: list[str] = []
    if preset is not None:
        try:
            lab.apply_preset(preset)
        except ValueError as exc:
            problems.append(str(exc))
            preset = None
    files = lab.file_parameters()
    for key, value in values.items():
        if key in files:
            problems.append(f"URL parameter {key} ignored: file names are not taken from links (set it in the page)")
            continue
        p = lab.param[key] if key in lab.param else None
        if isinstance(value, bool) and isinstance(p, param.Number):  # (param takes True as the number 1)
            problems.append(f"URL parameter {key}={value!r} ignored: {key} is a number")
            continue
        try:
            lab.set(**{key: value})
        except Exception as exc:  # noqa: BLE001 - param raises ValueError/TypeError for bad values
            problems.append(f"URL parameter {key}={value!r} ignored: {exc}")
    return preset, problems


__all__ = ["apply_query", "parse_query", "query_of", "search_of"]
