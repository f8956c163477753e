"""The registry of labs, filled by the :func:`register_lab` decorator.

The CLI, the gallery and the registry-wide tests all read it; nothing lists labs twice.
"""
from __future__ import annotations

_LABS: dict[str, type] = {}


def register_lab(cls):
    """Class decorator: register a :class:`~explore.core.lab.Lab` subclass under ``cls.lab_name``."""
    name = getattr(cls, "lab_name", None)
    if not name:
        raise TypeError(f"{cls.__name__} needs a class attribute lab_name to be registered")
    if name in _LABS and _LABS[name] is not cls:
        raise ValueError(f"a lab named {name!r} is already registered ({_LABS[name].__name__})")
    _LABS[name] = cls
    return cls


def _load_builtin(name: str | None = None) -> None:
    """Register the built-in labs: all of them, or (``name``) only the one of that name if it is one."""
    import explore.labs

    if name is None or not explore.labs.load(name) or name not in _LABS:
        explore.labs.load_all()


def lab_names() -> list[str]:
    """Names of all registered labs, sorted."""
    _load_builtin()
    return sorted(_LABS)


def lab_classes() -> dict[str, type]:
    """Mapping name → lab class."""
    _load_builtin()
    return dict(sorted(_LABS.items()))


def get_lab(name: str) -> type:
    """The lab class registered as ``name``; a clear error names the known labs otherwise.

    Only that lab's module is imported when ``name`` is a built-in lab (the others load when listed).
    """
    if name not in _LABS:
        _load_builtin(name)
    try:
        return _LABS[name]
    except KeyError:
        raise KeyError(f"unknown lab {name!r}; known labs: {', '.join(sorted(_LABS)) or 'none'}") from None
