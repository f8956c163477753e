"""Checks of the files a run reads or writes (checkpoints, snapshot streams, the CLI's ``--out``), made
before any work so that a bad path is refused by the parameter's name instead of failing after a run."""
from __future__ import annotations

import os


def check_input_file(lab_name: str, name: str, path: str) -> None:
    """Refuse, naming the parameter ``name``, a ``path`` that is not an existing file."""
    if not os.path.exists(path):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} is not a file")


def check_output_file(lab_name: str, name: str, path: str) -> None:
    """Refuse, naming the parameter ``name``, a ``path`` that cannot be written: a folder, or a file in a
    folder that does not exist or is not writable (checked before a run, not after it)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"{lab_name}: the folder of {name!r} = {path!r} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} is not writable")
