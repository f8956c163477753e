"""The built-in labs: one module each, named after its lab (``explore/labs/<lab_name>.py``).

Importing a lab's module registers the lab. The registry imports them lazily: :func:`load` imports
the one module a lab name points to (a CLI run needs no other lab), :func:`load_all` every one (what
listing the labs needs).
"""
from __future__ import annotations

import importlib
import pkgutil


def modules() -> list[str]:
    """Names of the built-in lab modules."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> bool:
    """Import the built-in lab module called ``name``, if there is one (returns whether there is)."""
    if name not in modules():
        return False
    importlib.import_module(f"{__name__}.{name}")
    return True


def load_all() -> None:
    """Import every built-in lab module (registers every built-in lab)."""
    for name in modules():
        importlib.import_module(f"{__name__}.{name}")
