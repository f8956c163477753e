"""What one reporting step of a lab shows: a :class:`Frame`.

A frame carries host NumPy arrays already reduced for display; the full-resolution state stays
inside the lab (and on the device for CuPy).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

MAX_PIXELS = 512  # per axis, for fields
MAX_POINTS = 10_000


@dataclass(frozen=True)
class Curve:
    """A 1-D curve ``y(x)``; ``logx``/``logy`` say how it is best shown.

    ``vertical``: ``x`` runs up the page and ``y`` across it, as a profile over height is drawn (a
    mean density against z); the data and their labels stay ``y(x)``.
    """

    x: np.ndarray
    y: np.ndarray
    xlabel: str = "x"
    ylabel: str = "y"
    logx: bool = False
    logy: bool = False
    vertical: bool = False


@dataclass(frozen=True)
class Points:
    """A point cloud (e.g. eigenvalues in the complex plane, samples).

    ``equal_aspect``: one unit of ``x`` is as long on screen as one unit of ``y`` (a phase portrait,
    a cloud in the plane: axes of the same units); off by default, where each axis fits its data.
    """

    x: np.ndarray
    y: np.ndarray
    xlabel: str = "x"
    ylabel: str = "y"
    equal_aspect: bool = False


@dataclass(frozen=True)
class Field:
    """A 2-D field ``values[iy, ix]`` on coordinates ``x`` (columns) and ``y`` (rows).

    ``equal_aspect``: drawn at the aspect of its domain (a 2 × 1 box looks 2 × 1), as a field in
    space should be; switch it off where the axes have different units (a space–time diagram).
    """

    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    xlabel: str = "x"
    ylabel: str = "y"
    label: str = "value"
    equal_aspect: bool = True


Sample = Curve | Points | Field


@dataclass(frozen=True)
class Frame:
    """One reporting step of a run.

    Attributes
    ----------
    step, time, progress
        Frame index, simulated time (or NFE / iteration), fraction of the run done in [0, 1].
    convergence
        Named positive scalars best read on a log axis (invariant drift, error vs exact ...).
    diagnostics
        Other named scalars (entropies, shifts ...), read on a linear axis.
    spectrum
        A spectrum: a :class:`Curve` (k, power) or :class:`Points` (eigenvalues).
    samples
        Named views of the state: curves, point clouds or fields.
    nfe, steps
        Cumulative right-hand-side evaluations and accepted solver steps.
    """

    step: int
    time: float
    progress: float
    convergence: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)
    spectrum: Curve | Points | None = None
    samples: dict[str, Sample] = field(default_factory=dict)
    nfe: int = 0
    steps: int = 0


def light_frame(frame: Frame) -> Frame:
    """``frame`` without its fields and point clouds. A history keeps these of its last frame only (a
    result stores the last one; curves become series over the frames), so the frames before it are
    kept light: a lab whose field grows with the run (NLSE's space–time waterfall) would otherwise
    hold memory growing with the square of the frame count."""
    light = {k: s for k, s in frame.samples.items() if isinstance(s, Curve)}
    spectrum = frame.spectrum if isinstance(frame.spectrum, Curve) else None
    if len(light) == len(frame.samples) and spectrum is frame.spectrum:
        return frame
    return dataclasses.replace(frame, samples=light, spectrum=spectrum)


def decimate(a: np.ndarray, limit: int = MAX_PIXELS, axes: tuple[int, ...] | None = None) -> np.ndarray:
    """Stride ``a`` along ``axes`` (default: all) so that no axis exceeds ``limit`` entries: a copy where
    it strides (a strided view held by a frame kept the whole array alive: an NLSE run at N = 2¹⁸ held
    every frame's full spectrum, 2 MB a frame, for 512 points shown), else ``a`` itself."""
    axes = range(a.ndim) if axes is None else axes
    index = [slice(None)] * a.ndim
    for ax in axes:
        n = a.shape[ax]
        if n > limit:
            index[ax] = slice(None, None, -(-n // limit))
    if all(i == slice(None) for i in index):
        return a
    return np.array(a[tuple(index)])
