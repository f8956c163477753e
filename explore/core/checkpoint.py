"""Checkpoints of a run: the stepper's state and a lab's own accumulators in one ``.npz`` file.

A lab that offers ``checkpoint_file`` / ``resume_from`` saves at every frame with
:func:`save_checkpoint` (written to a temporary file, then renamed: an interrupted write never
leaves a broken checkpoint) and resumes with :func:`load_checkpoint`, which refuses a file written
with other physics or numerics (``params``, compared key by key) with a message naming them.
"""
from __future__ import annotations

import contextlib
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


def _not_a_checkpoint(path: str, lab_name: str, exc: BaseException) -> ValueError:
    why = f"{type(exc).__name__}: {exc}"
    if "pickle" in str(exc):  # (NumPy's guess for a file that is neither .npz nor .npy, e.g. a netCDF result)
        why = "not an .npz archive"
    return ValueError(f"{lab_name}: 'resume_from' = {path!r} is not a checkpoint of this lab ({why})")


@contextlib.contextmanager
def checkpoint_entries(path: str, lab_name: str):
    """Read a lab's own entries of a checkpoint inside this: an entry missing, of another shape or not
    a number (a file changed by hand or by another tool) is refused naming ``resume_from``, not
    reported as an ``IndexError`` from deep inside the lab."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise _not_a_checkpoint(path, lab_name, exc) from None


def load_checkpoint(path: str, stepper, xp, params: dict, lab_name: str, shape: tuple | None = None,
                    required: tuple[str, ...] = (), names: dict[str, str] | None = None):
    """``(state, index, extra)`` from a checkpoint: the stepper's state on backend ``xp`` (its
    counters and proposed step as saved), the frame index and the lab's own entries (host arrays).

    Raises ``ValueError`` naming ``resume_from`` and each parameter that differs from ``params`` (an
    entry of ``params`` that is no parameter is named as ``names`` says: KH's ``frame_dt`` is
    ``t_end / n_snapshots``), or
    what is wrong with the file: not a checkpoint, an entry of ``required`` (the lab's own) missing, a
    state not of ``shape`` or not finite, a counter that is not a number.
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
        raise _not_a_checkpoint(path, lab_name, exc) from None
    absent = [k for k in params if k not in saved]
    if absent:  # (a parameter the lab has gained since: the run it continues may have used anything)
        raise ValueError(f"{lab_name}: 'resume_from' = {path!r} was written by an older version of this lab, "
                         f"without {', '.join(repr(k) for k in absent)}; run from the start")
    diff = [k for k in params if not _same(saved.get(k), params[k])]
    if diff:
        names = names or {}
        raise ValueError(f"{lab_name}: 'resume_from' was written with different "
                         + ", ".join(f"{names.get(k, k)} ({saved.get(k)!r} vs {params[k]!r})" for k in diff))
    with checkpoint_entries(path, lab_name):
        missing = [k for k in required if k not in entries]  # (after the parameters: an older lab's file says so)
        if missing:
            raise KeyError(", ".join(missing))
        y, f = entries["y"], entries.get("f")
        for name, a in (("state", y), ("derivative", f)):
            if a is None:
                continue
            if shape is not None and a.shape != tuple(shape):
                raise ValueError(f"its {name} has shape {a.shape}, this run's {tuple(shape)}")
            if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
                raise ValueError(f"its {name} is not all finite numbers")
        t, index = float(entries["t"]), int(entries["index"])
        counters = dict(dt=float(entries["dt"]), nfe=int(entries["nfe"]), steps=int(entries["steps"]),
                        rejected=int(entries["rejected"]))
        if not (math.isfinite(t) and math.isfinite(counters["dt"])) or index < 0:
            raise ValueError(f"its time {t!r}, step {counters['dt']!r} or frame {index!r} is not valid")
    state = stepper.init(t, xp.asarray(y))
    state = dataclasses.replace(state, **counters, f=None if f is None else xp.asarray(f))
    extra = {k: v for k, v in entries.items() if k not in _STATE_KEYS}
    return state, index, extra
