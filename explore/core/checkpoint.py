"""Checkpoints of a run: the stepper's state and a lab's own accumulators in one ``.npz`` file.

A lab that offers ``checkpoint_file`` / ``resume_from`` saves at every frame with
:func:`save_checkpoint` (written to a temporary file, then renamed: an interrupted write never
leaves a broken checkpoint) and resumes with :func:`load_checkpoint`, which refuses a file written
with other physics or numerics (``params``, compared key by key) with a message naming them.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from explore.core.backend import to_host

#: the stepper state's entries of a checkpoint; the others belong to the lab
_STATE_KEYS = ("y", "index", "t", "dt", "nfe", "steps", "rejected", "params", "f")


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
    with np.load(path, allow_pickle=False) as ck:
        saved = json.loads(str(ck["params"]))
        diff = [k for k in params if saved.get(k) != params[k]]
        if diff:
            raise ValueError(f"{lab_name}: 'resume_from' was written with different "
                             + ", ".join(f"{k} ({saved.get(k)!r} vs {params[k]!r})" for k in diff))
        state = stepper.init(float(ck["t"]), xp.asarray(ck["y"]))
        state = dataclasses.replace(
            state, dt=float(ck["dt"]), nfe=int(ck["nfe"]), steps=int(ck["steps"]), rejected=int(ck["rejected"]),
            f=xp.asarray(ck["f"]) if "f" in ck.files else None)
        extra = {k: np.array(ck[k]) for k in ck.files if k not in _STATE_KEYS}
        return state, int(ck["index"]), extra
