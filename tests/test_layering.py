"""Imports point down only: numerics and labs never import the UI stack (or param, for numerics)."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "explore"
UI = {"panel", "holoviews", "bokeh", "hvplot"}
FORBIDDEN = {
    "core": UI | {"explore.labs", "explore.ui", "explore.numerics"},
    "numerics": UI | {"param", "explore.labs", "explore.ui", "explore.core"},
    "labs": UI | {"explore.ui"},
}


def imported_modules(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer):
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for mod in imported_modules(path):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[layer]):
                if layer == "core" and mod == "explore.labs":  # the registry loads built-in labs lazily
                    continue
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, bad


def test_no_eval_of_user_text():
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec"}, f"{path}: {node.func.id}()"
