"""The README's Python snippets work as written (the front door must not fail on its first example)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_python_snippet_runs_and_its_plot_renders():
    """The first snippet streams and runs a lab, then plots the error's history with HoloViews: run it
    (``...`` as ``pass``) and render what its last line makes, as a notebook would show it."""
    hv = pytest.importorskip("holoviews")
    code = BLOCKS[0].replace("    ...", "    pass")
    tree = ast.parse(code)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), "the snippet should end with the plot it shows"
    namespace: dict = {}
    exec(compile(tree, "README.md", "exec"), namespace)
    plot = eval(compile(ast.Expression(last.value), "README.md", "eval"), namespace)
    figure = hv.render(plot)
    assert namespace["ds"].error.size > 1 and figure.y_scale.__class__.__name__ == "LogScale"


def test_every_python_snippet_is_valid_python():
    assert len(BLOCKS) >= 2
    for block in BLOCKS:
        ast.parse(block.replace("    ...", "    pass"))
