"""Checkpoints of a run: the stepper's state and a lab's own accumulators in one ``.npz`` file.

A lab that offers ``checkpoint_file`` / ``resume_from`` saves at every frame with
:func:`save_checkpoint` (written to a temporary file, then renamed: an interrupted write never
leaves a broken checkpoint) and resumes with :func:`load_checkpoint`, which refuses a file written
with other physics or numerics (``params``, compared key by key) with a message naming them.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile

import numpy as np

from explore.core.backend import to_host

#: the stepper state's entries of a checkpoint; the others belong to the lab
_STATE_KEYS = ("y", "index", "t", "dt", "nfe", "steps", "rejected", "params", "f")


def _same(a, b) -> bool:
    """Parameters agree: numbers to round-off (a frame interval computed as t_end / n may differ in
    its last bit), anything else exactly."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def save_checkpoint(path: str, state, index: int, params: dict, **extra) -> None:
    """Write ``state`` (a stepper's :class:`~explore.numerics.rk.StepState`) at frame ``index``,
    the ``params`` a resumed run must share, and the lab's ``extra`` arrays or numbers."""
    tmp = path + ".tmp.npz"
    f = {} if state.f is None else {"f": to_host(state.f)}
    np.savez(tmp, y=to_host(state.y), index=index, t=state.t, dt=state.dt, nfe=state.nfe, steps=state.steps,
             rejected=state.rejected, params=json.dumps(params), **f, **extra)
    os.replace(tmp, path)


def load_checkpoint(path: str, stepper, xp, params: dict, lab_name: str):
    """``(state, index, extra)`` from a checkpoint: the stepper's state on backend ``xp`` (its
    counters and proposed step as saved), the frame index and the lab's own entries (host arrays).

    Raises ``ValueError`` naming ``resume_from`` and each parameter that differs from ``params``.
    """
    try:
        ck = np.load(path, allow_pickle=False)
        if not isinstance(ck, np.lib.npyio.NpzFile):  # a plain .npy array
            raise ValueError("an array, not an .npz archive")
        with ck:
            saved = json.loads(str(ck["params"]))
            entries = {k: np.array(ck[k]) for k in ck.files}
        missing = [k for k in _STATE_KEYS if k not in entries and k not in ("params", "f")]
        if missing or not isinstance(saved, dict):
            raise KeyError(", ".join(missing) or "params")
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # (EOFError: an empty file)
        raise ValueError(f"{lab_name}: 'resume_from' = {path!r} is not a checkpoint of this lab "
                         f"({type(exc).__name__}: {exc})") from None
    absent = [k for k in params if k not in saved]
    if absent:  # (a parameter the lab has gained since: the run it continues may have used anything)
        raise ValueError(f"{lab_name}: 'resume_from' = {path!r} was written by an older version of this lab, "
                         f"without {', '.join(repr(k) for k in absent)}; run from the start")
    diff = [k for k in params if not _same(saved.get(k), params[k])]
    if diff:
        raise ValueError(f"{lab_name}: 'resume_from' was written with different "
                         + ", ".join(f"{k} ({saved.get(k)!r} vs {params[k]!r})" for k in diff))
    state = stepper.init(float(entries["t"]), xp.asarray(entries["y"]))
    state = dataclasses.replace(
        state, dt=float(entries["dt"]), nfe=int(entries["nfe"]), steps=int(entries["steps"]),
        rejected=int(entries["rejected"]), f=xp.asarray(entries["f"]) if "f" in entries else None)
    extra = {k: v for k, v in entries.items() if k not in _STATE_KEYS}
    return state, int(entries["index"]), extra
