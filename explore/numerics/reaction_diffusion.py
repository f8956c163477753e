r"""Two-field reaction–diffusion systems on a periodic square, pseudo-spectral with real FFTs.

The state is the stacked orthonormal real-FFT spectra of the two fields, shape ``(2, N, N//2 + 1)``;
the Laplacian is diagonal there, so each system is a semilinear problem ``Y' = L Y + N(Y)`` with an
elementwise symbol ``L`` that every integrator of :mod:`explore.numerics.integrators` accepts.

* λ–ω system (Kopell & Howard, "Plane wave solutions to reaction-diffusion equations"), with
  :math:`A^2 = u^2 + v^2`, :math:`\lambda(A) = 1 - A^2`, :math:`\omega(A) = -\beta A^2`::

      u_t = d1 ∇²u + λ(A) u − ω(A) v,      v_t = d2 ∇²v + ω(A) u + λ(A) v.

  ``L = −d k²``; the reaction has an exact pointwise flow
  (:meth:`LambdaOmegaProblem.nonlinear_flow`), so Strang splitting applies too.
* Gray–Scott (Pearson, "Complex patterns in a simple system")::

      u_t = d1 ∇²u − u v² + F (1 − u),      v_t = d2 ∇²v + u v² − (F + k) v.

Diagnostics are plain array functions (array-API: NumPy, CuPy, ``array_api_strict``): moments,
mutual information of ``u`` and ``v``, phase-defect (spiral core) counting by winding number, the
radial (shell-summed) power spectrum.
"""
from __future__ import annotations

import functools
import math

from array_api_compat import array_namespace, is_numpy_namespace

from explore.numerics.fastfft import agrees, ducc_fft
from explore.numerics.fourier import FourierGrid

__all__ = [
    "rfft2", "irfft2", "spectral_grid", "LambdaOmegaProblem", "GrayScottProblem",
    "lambda_omega_reaction", "lambda_omega_flow", "gray_scott_reaction", "uniform_lambda_omega",
    "corotation_rate", "rotate_phase",
    "spiral", "spiral_periodic", "spiral_quartet", "moments", "mutual_information", "winding_numbers",
    "defect_count", "pattern_regions", "radial_spectrum",
]


# ---------------------------------------------------------------------------- transforms
def rfft2(w):
    """Orthonormal real FFT over the last two axes (a stack of fields at once)."""
    xp = array_namespace(w)
    return xp.fft.rfftn(w, axes=(-2, -1), norm="ortho")


def irfft2(w_hat, n: int):
    """Inverse of :func:`rfft2` for ``n × n`` fields."""
    xp = array_namespace(w_hat)
    return xp.fft.irfftn(w_hat, s=(n, n), axes=(-2, -1), norm="ortho")


@functools.cache
def _ducc_fft2():
    """``(irfft2_into, rfft2)`` on ``ducc0.fft`` (orthonormal, over the last two axes), or ``None`` where
    ducc0 is missing or does not give NumPy's numbers (checked once, to 1e-14 of the largest entry)."""
    import numpy as np

    fft = ducc_fft()
    if fft is None:  # pragma: no cover - depends on what is installed
        return None

    def irfft2_into(y, n, out):
        return fft.c2r(y, (y.ndim - 2, y.ndim - 1), n, False, 1, out, 1)

    def rfft2_new(x):
        return fft.r2c(x, (x.ndim - 2, x.ndim - 1), True, 1, None, 1)

    x = np.random.default_rng(0).standard_normal((2, 6, 6))
    y = np.fft.rfftn(x, axes=(-2, -1), norm="ortho")
    try:
        ok = agrees(rfft2_new(x), y, 1e-14) and agrees(irfft2_into(y, 6, np.empty_like(x)), x, 1e-14)
    except Exception:  # pragma: no cover - another ducc0 signature
        ok = False
    return (irfft2_into, rfft2_new) if ok else None


class _NumpyFields:
    """NumPy fast path of a reaction term: the 2-D real FFTs, and the products, written into buffers
    kept between calls (fresh arrays of this size on every call make each transform up to ~1.5×
    slower). The transforms are ducc0's 2-D ones where it is installed (one call each way, ~1.7×
    faster than NumPy's at N = 128), else NumPy's as two 1-D passes."""

    def __init__(self, n: int):
        import numpy as np

        self.n = n
        self.out = np.empty((2, n, n))
        self.a = np.empty((n, n))
        self.b = np.empty((n, n))
        self.c = np.empty((n, n))
        self._phys = np.empty((2, n, n))
        self._half = np.empty((2, n, n // 2 + 1), dtype=np.complex128)
        self._ducc = _ducc_fft2()

    def physical(self, y):
        """``irfft2(y)`` into a buffer (valid until the next call)."""
        import numpy as np

        if self._ducc is not None:
            return self._ducc[0](y, self.n, self._phys)
        np.fft.ifft(y, axis=-2, norm="ortho", out=self._half)
        return np.fft.irfft(self._half, n=self.n, axis=-1, norm="ortho", out=self._phys)

    def spectral(self):
        """``rfft2`` of ``out`` (a new array)."""
        import numpy as np

        if self._ducc is not None:
            return self._ducc[1](self.out)
        np.fft.rfft(self.out, axis=-1, norm="ortho", out=self._half)
        return np.fft.fft(self._half, axis=-2, norm="ortho")


def spectral_grid(L: float, N: int, xp) -> FourierGrid:
    """The real-FFT :class:`FourierGrid` of an ``N × N`` periodic square of side ``L``."""
    return FourierGrid(L, N, xp, ndim=2, real=True)


def _stacked_symbol(grid: FourierGrid, d1: float, d2: float, shift=(0.0, 0.0)):
    """``(shift_i − d_i |k|²)`` for i = 1, 2, stacked to the state's shape ``(2, N, N//2+1)``."""
    xp = grid.xp
    k2 = grid.k2
    return xp.stack([shift[0] - d1 * k2, shift[1] - d2 * k2])


# ---------------------------------------------------------------------------- λ–ω
def lambda_omega_reaction(u, v, beta: float):
    """The full λ–ω reaction ``(λu − ωv, ωu + λv)`` with λ = 1 − A², ω = −βA²."""
    a2 = u * u + v * v
    lam, om = 1.0 - a2, -beta * a2
    return lam * u - om * v, om * u + lam * v


def lambda_omega_flow(u, v, beta: float, dt: float, frame_rate: float = 0.0):
    r"""Exact flow over ``dt`` of the λ–ω reaction ``w' = (1 − (1 + iβ)|w|² + iΩ) w`` (``w = u + iv``;
    ``Ω = frame_rate``, the turn of a co-rotating frame, see :func:`corotation_rate`).

    ``(A²)' = 2A²(1 − A²)`` gives ``A²(t) = A₀² e^{2t} / g``, ``g = 1 + A₀²(e^{2t} − 1)``; the phase
    turns by ``Ω dt − β ∫A² = Ω dt − (β/2) ln g``. Pointwise, for any array namespace.
    """
    xp = array_namespace(u)
    g = 1.0 + math.expm1(2.0 * dt) * (u * u + v * v)
    s = math.exp(dt) / xp.sqrt(g)
    phi = (-0.5 * beta) * xp.log(g) + frame_rate * dt
    c, sn = s * xp.cos(phi), s * xp.sin(phi)
    return u * c - v * sn, u * sn + v * c


def uniform_lambda_omega(t: float, amplitude: float, phase: float, beta: float) -> tuple[float, float]:
    r"""Exact spatially uniform solution ``(u, v)`` at time ``t`` from ``A e^{iθ}`` at ``t = 0``.

    ``A' = A(1 − A²)`` gives ``A²(t) = 1/(1 + c e^{−2t})``, ``c = 1/A₀² − 1``; ``θ' = −βA²`` gives
    ``θ(t) = θ₀ − (β/2) ln((e^{2t} + c)/(1 + c))``: relaxation onto the limit cycle ``|w| = 1``
    that turns at angular velocity ``−β`` (the homogeneous oscillation).
    """
    if amplitude == 0.0:  # the unstable fixed point w = 0
        return 0.0, 0.0
    # in logarithms, ln g = ln(A₀² e^{2t} + 1 − A₀²) (then A = A₀ e^t / √g, θ = θ₀ − (β/2) ln g), so that
    # neither e^{2t} nor 1/A₀² overflows at any t or amplitude
    la = math.log(amplitude)
    if amplitude < 1.0:
        x, y = 2.0 * t + 2.0 * la, math.log1p(-amplitude * amplitude)  # ln g = ln(e^x + e^y)
        lg = max(x, y) + math.log1p(math.exp(-abs(x - y)))
    else:
        lg = 2.0 * t + 2.0 * la + math.log1p(-(1.0 - 1.0 / amplitude**2) * math.exp(-2.0 * t))
    a = math.exp(la + t - 0.5 * lg)
    theta = phase - 0.5 * beta * lg
    return a * math.cos(theta), a * math.sin(theta)


def corotation_rate(u, v, beta: float) -> float:
    r"""The mean angular velocity of the phase of ``w = u + iv``, weighted by ``|w|²``, as a frame rate ``Ω``
    (``w`` turns at ``−Ω``): ``Ω = β⟨A⁴⟩/⟨A²⟩``.

    For the λ–ω system with ``d1 = d2``, ``Im⟨w, ∂t w⟩ = −β⟨A⁴⟩`` exactly (diffusion and λ(A) add real
    terms), so a rigidly rotating spiral, ``w = e^{−iω t} W``, turns at exactly ``ω = Ω``: in a frame
    turning with it, the spiral stands still. 0 for ``w ≡ 0``.
    """
    xp = array_namespace(u)
    a2 = u * u + v * v
    m2 = float(xp.mean(a2))
    return float(beta * float(xp.mean(a2 * a2)) / m2) if m2 > 0.0 else 0.0


def rotate_phase(w, theta: float):
    """``e^{iθ}(u + iv)`` for fields stacked ``(2, ...)``: physical fields or their spectra alike (the
    rotation has real coefficients, so it commutes with the Fourier transform)."""
    xp = array_namespace(w)
    c, s = math.cos(theta), math.sin(theta)
    return xp.stack([c * w[0, ...] - s * w[1, ...], s * w[0, ...] + c * w[1, ...]])


class LambdaOmegaProblem:
    """The λ–ω system as a semilinear problem on stacked real-FFT spectra ``(2, N, N//2+1)``.

    ``linear = −d_i |k|²`` (diffusion only); ``nonlinear`` is the whole reaction, evaluated
    pseudo-spectrally (no dealiasing, like the peer). The reaction's linear growth (the ``1`` of λ)
    stays in the nonlinear part on purpose: in the linear part it would also amplify, at rate
    ``1 − d|k|²``, the round-off in the Hermitian-redundant entries of the real-FFT storage, which the
    inverse transform never sees and no nonlinearity saturates (a slow blow-up after ~100 time units).

    ``frame_rate`` ``Ω`` (``d1 = d2`` only): the state is ``z = e^{iΩt} w``, the fields in a frame that
    turns at ``Ω``. With equal diffusion the equations are unchanged by a constant phase rotation, so
    ``z`` obeys them too, plus the frame's turn ``iΩz`` (in the nonlinear part): an exact change of
    variables. Chosen as the pattern's own rotation (:func:`corotation_rate`), it makes a rigidly
    rotating spiral a fixed point, which the exponential integrators keep exactly (the idea of Beyn &
    Thümmler's "Freezing solutions of equivariant evolution equations"): only the deviation from rigid
    rotation is stepped, with a far smaller time error (stable_spiral at Δt = 0.1: 2.4e-5 → 4e-8).
    """

    def __init__(self, grid: FourierGrid, d1: float, d2: float, beta: float):
        self.grid, self.n = grid, grid.N[0]
        self.d1, self.d2, self.beta = float(d1), float(d2), float(beta)
        self.linear = _stacked_symbol(grid, self.d1, self.d2)
        self._np = _NumpyFields(self.n) if is_numpy_namespace(grid.xp) else None
        self._frame_rate = 0.0

    @property
    def frame_rate(self) -> float:
        """``Ω``: the rate at which the frame of the state turns (0: the fixed frame)."""
        return self._frame_rate

    @frame_rate.setter
    def frame_rate(self, omega: float) -> None:
        omega = float(omega)
        if omega != 0.0 and self.d1 != self.d2:
            raise ValueError(f"frame_rate: a turning frame needs d1 = d2 (the equations are not invariant under a "
                             f"phase rotation otherwise), got d1 = {self.d1:g}, d2 = {self.d2:g}")
        if not math.isfinite(omega):
            raise ValueError(f"frame_rate: must be finite, got {omega!r}")
        self._frame_rate = omega

    def nonlinear(self, t, y):
        if self._np is not None:
            return self._nonlinear_numpy(y)
        xp = self.grid.xp
        w = irfft2(y, self.n)
        u, v = w[0, ...], w[1, ...]
        m = 1.0 - (u * u + v * v)   # λ(A)
        bm = self.beta * (1.0 - m) - self._frame_rate  # −ω(A) − Ω = βA² − Ω
        return rfft2(xp.stack([m * u + bm * v, m * v - bm * u]))

    def _nonlinear_numpy(self, y):
        """The same reaction as ``(1 − A²) u + βA² v = u + A²(βv − u)``, ``v − A²(v + βu)``, in buffers
        (and the frame's turn ``(−Ωv, Ωu)``)."""
        import numpy as np

        f = self._np
        w = f.physical(y)
        u, v = w[0], w[1]
        a2, tmp, out = f.a, f.b, f.out
        np.multiply(u, u, out=a2)
        np.multiply(v, v, out=tmp)
        a2 += tmp
        if self._frame_rate == 0.0:
            np.multiply(v, self.beta, out=tmp)
            tmp -= u
            tmp *= a2
            np.add(u, tmp, out=out[0])
            np.multiply(u, self.beta, out=tmp)
            tmp += v
            tmp *= a2
            np.subtract(v, tmp, out=out[1])
        else:  # (1 − A²)u + (βA² − Ω)v, (1 − A²)v − (βA² − Ω)u
            b = f.c
            np.multiply(a2, self.beta, out=b)
            b -= self._frame_rate
            np.subtract(1.0, a2, out=a2)
            np.multiply(a2, u, out=out[0])
            np.multiply(b, v, out=tmp)
            out[0] += tmp
            np.multiply(a2, v, out=out[1])
            np.multiply(b, u, out=tmp)
            out[1] -= tmp
        return f.spectral()

    def fields(self, y):
        """The physical fields ``(u, v)`` stacked (on NumPy in a buffer, valid until the next evaluation)."""
        return irfft2(y, self.n) if self._np is None else self._np.physical(y)

    def nonlinear_flow(self, y, dt):
        xp = self.grid.xp
        w = irfft2(y, self.n)
        u, v = lambda_omega_flow(w[0, ...], w[1, ...], self.beta, dt, self._frame_rate)
        return rfft2(xp.stack([u, v]))

    def rhs(self, y):
        """The full right-hand side ``L y + N(y)`` (spectral), in the frame of the state."""
        return self.linear * y + self.nonlinear(0.0, y)

    def fixed_frame_rhs(self, y):
        """``∂t w`` turned into the frame of ``y``: :meth:`rhs` without the frame's turn ``iΩz`` (its norm
        is that of ``∂t w`` in the fixed frame)."""
        f = self.rhs(y)
        return f if self._frame_rate == 0.0 else f - self._frame_rate * self.turn(y)

    def turn(self, y):
        """``iz`` for the stacked spectra ``y`` of ``z``'s real and imaginary parts: ``(−v, u)``; the frame's
        term of the right-hand side is ``Ω`` times it (so a derivative taken at one rate is moved to another
        by adding ``ΔΩ`` times it, with no new evaluation)."""
        xp = self.grid.xp
        return xp.stack([-y[1, ...], y[0, ...]])

    def max_linear_rate(self) -> float:
        """``max |L|``: the stiffness an explicit method must resolve."""
        return max(self.d1, self.d2) * 2 * max(self.grid.k_nyquist) ** 2


# ---------------------------------------------------------------------------- Gray–Scott
def gray_scott_reaction(u, v, feed: float, kill: float):
    """Gray–Scott reaction ``(−uv² + F(1 − u), uv² − (F + k)v)``."""
    uvv = u * v * v
    return -uvv + feed * (1.0 - u), uvv - (feed + kill) * v


class GrayScottProblem:
    """Gray–Scott on stacked real-FFT spectra: ``linear = (−F − d1|k|², −(F + k) − d2|k|²)``,
    ``nonlinear = (−uv² + F, uv²)``."""

    def __init__(self, grid: FourierGrid, d1: float, d2: float, feed: float, kill: float):
        self.grid, self.n = grid, grid.N[0]
        self.d1, self.d2, self.feed, self.kill = float(d1), float(d2), float(feed), float(kill)
        self.linear = _stacked_symbol(grid, self.d1, self.d2, (-self.feed, -(self.feed + self.kill)))
        self._np = _NumpyFields(self.n) if is_numpy_namespace(grid.xp) else None

    def nonlinear(self, t, y):
        if self._np is not None:
            import numpy as np

            f = self._np
            w = f.physical(y)
            np.multiply(w[0], w[1], out=f.a)
            np.multiply(f.a, w[1], out=f.out[1])           # u v²
            np.subtract(self.feed, f.out[1], out=f.out[0])
            return f.spectral()
        xp = self.grid.xp
        w = irfft2(y, self.n)
        u, v = w[0, ...], w[1, ...]
        uvv = u * v * v
        return rfft2(xp.stack([self.feed - uvv, uvv]))

    def rhs(self, y):
        return self.linear * y + self.nonlinear(0.0, y)

    #: ``∂t w`` (Gray–Scott is stepped in the fixed frame only: it has no phase symmetry)
    fixed_frame_rhs = rhs

    def max_linear_rate(self) -> float:
        return max(self.d1, self.d2) * 2 * max(self.grid.k_nyquist) ** 2 + self.feed + self.kill


# ---------------------------------------------------------------------------- initial conditions
def _coordinates(grid: FourierGrid):
    """``X[iy, ix] = x[ix]``, ``Y[iy, ix] = y[iy]`` (rows are y, columns x)."""
    xp = grid.xp
    x = xp.reshape(grid.x[1], (1, grid.N[1]))
    y = xp.reshape(grid.x[0], (grid.N[0], 1))
    return x + 0.0 * y, y + 0.0 * x


def spiral(grid: FourierGrid, arms: int = 1):
    r"""rd-spiral's initial condition ``tanh(r) (cos(mθ − r), sin(mθ − r))`` (stacked ``(2, N, N)``).

    Not periodic: the phase ``mθ − r`` jumps across the box edge, so the periodic grid sees a
    discontinuity (spectrum flat up to the Nyquist wavenumber) that no ``N`` resolves; the partner
    defects that the torus requires (net winding 0) sit on that jump.
    """
    xp = grid.xp
    X, Y = _coordinates(grid)
    r = xp.sqrt(X * X + Y * Y)
    th = xp.atan2(Y, X)
    a, ph = xp.tanh(r), arms * th - r
    return xp.stack([a * xp.cos(ph), a * xp.sin(ph)])


def spiral_periodic(grid: FourierGrid, arms: int = 1, centre: tuple[float, float] = (0.0, 0.0)):
    r"""A smooth periodic variant of :func:`spiral`: the same formula in the periodic coordinates
    ``ξ = (L/2π) sin(2π(x − x_c)/L)``, ``η = (L/2π) sin(2π(y − y_c)/L)`` (≈ x − x_c, y − y_c near the
    core at ``centre``).

    No jump at the box edge, so the field is smooth and runs converge spectrally in ``N``. A
    continuous field on the torus has zero net winding (Poincaré–Hopf), so the ``+m`` core comes with
    the images the topology requires, half a period away: ``−m`` at ``(x_c + L/2, y_c)`` and
    ``(x_c, y_c + L/2)``, ``+m`` at ``(x_c + L/2, y_c + L/2)``. With the default centre those sit on the
    box edges; :func:`spiral_quartet` puts all four inside.
    """
    xp = grid.xp
    X, Y = _coordinates(grid)
    L = grid.L[0]
    s = L / (2 * math.pi)
    xi, eta = s * xp.sin((X - centre[0]) / s), s * xp.sin((Y - centre[1]) / s)
    r = xp.sqrt(xi * xi + eta * eta)
    th = xp.atan2(eta, xi)
    a, ph = xp.tanh(r), arms * th - r
    return xp.stack([a * xp.cos(ph), a * xp.sin(ph)])


def spiral_quartet(grid: FourierGrid, arms: int = 1):
    r""":func:`spiral_periodic` centred at ``(−L/4, −L/4)``: four cores, ``+m`` at ``(∓L/4, ∓L/4)`` and
    ``−m`` at ``(±L/4, ∓L/4)``, all a quarter box from the edges — a smooth periodic start that plants
    no defect on the box edges (net winding 0, as the torus requires).

    The cores sit on grid points: when ``N`` is not a multiple of 4, ``L/4`` falls between two, and a
    core of charge ``m ≥ 2`` inside one plaquette cannot be counted (:func:`winding_numbers`), so the
    centre moves to the nearest grid point below ``−L/4`` (half a cell)."""
    L, n = grid.L[0], grid.N[0]
    c = -L / 4 if n % 4 == 0 else -L / 2 + (n // 4) * (L / n)
    return spiral_periodic(grid, arms, centre=(c, c))


# ---------------------------------------------------------------------------- diagnostics
def moments(f) -> tuple[float, float, float]:
    """Spatial mean, variance and excess kurtosis of a field (kurtosis 0 for a uniform field).

    The deviations are scaled by their largest size before the powers are taken: the kurtosis is
    scale-free, and a field decaying towards zero (a Gray–Scott ``v`` at 1e-82) would otherwise
    underflow ``var²`` to 0 (a division by zero) and ``d⁴`` to denormals long before that.
    """
    xp = array_namespace(f)
    mean = xp.mean(f)
    d = f - mean
    size = float(xp.max(xp.abs(d)))
    mean = float(mean)
    if size <= 1e-12 * abs(mean):  # uniform to round-off (or exactly): kurtosis is undefined; report 0
        return mean, float(xp.mean(d * d)), 0.0
    z = d / size
    m2, m4 = float(xp.mean(z * z)), float(xp.mean(z * z * z * z))
    return mean, size * size * m2, m4 / (m2 * m2) - 3.0


def _quantize(f, bins: int):
    xp = array_namespace(f)
    lo, hi = xp.min(f), xp.max(f)
    span = hi - lo
    q = xp.floor((f - lo) / xp.where(span > 0, span, 1.0) * bins)
    return xp.astype(xp.clip(q, 0, bins - 1), xp.int64)


def _counts(index, size: int):
    """Histogram of integer ``index`` in ``[0, size)`` (array-API: sort + searchsorted)."""
    xp = array_namespace(index)
    if is_numpy_namespace(xp):  # the same counts without a sort
        import numpy as np

        return np.bincount(np.reshape(index, (-1,)), minlength=size).astype(np.float64)
    s = xp.sort(xp.reshape(index, (-1,)))
    edges = xp.arange(size + 1, dtype=s.dtype)
    pos = xp.searchsorted(s, edges, side="left")
    return xp.astype(pos[1:] - pos[:-1], xp.float64)


def mutual_information(u, v, bins: int = 32) -> float:
    r"""Mutual information :math:`I(u; v) = \sum p_{ij} \ln(p_{ij} / p_i p_j)` in nats of the
    one-point distributions of two fields, from a ``bins × bins`` histogram over each field's own
    range (so it does not depend on the fields' scale). 0 for a uniform field."""
    xp = array_namespace(u)
    qu, qv = _quantize(u, bins), _quantize(v, bins)
    n = math.prod(u.shape)
    pj = _counts(qu * bins + qv, bins * bins) / n
    pu, pv = _counts(qu, bins) / n, _counts(qv, bins) / n
    outer = xp.reshape(xp.reshape(pu, (bins, 1)) * xp.reshape(pv, (1, bins)), (-1,))
    safe = pj > 0
    ratio = xp.where(safe, pj / xp.where(safe, outer, 1.0), 1.0)
    return max(0.0, float(xp.sum(xp.where(safe, pj * xp.log(ratio), 0.0))))


def winding_numbers(u, v):
    r"""Winding number of the phase ``arg(u + iv)`` around every grid plaquette (periodic).

    The phase differences along the four edges of a plaquette, each wrapped into (−π, π], sum to
    ``2π n``; ``n ≠ 0`` marks a phase singularity (spiral core) of charge ``n`` inside it.
    Returns an integer array of the fields' shape (plaquette ``[i, j]`` has corner ``[i, j]``).
    Four wrapped edges hold ``|n| ≤ 1`` (2 only on the boundary of the range): a core of charge
    ``|m| ≥ 2`` is counted right on a grid point (its neighbouring plaquettes share it), not inside a
    plaquette, where it reads as ``m ∓ 4`` with spurious pairs around (dynamics split such cores into
    unit ones at once; the initial conditions put them on grid points).
    """
    xp = array_namespace(u)
    phi = xp.atan2(v, u)
    two_pi = 2 * math.pi

    def wrap(d):
        return d - two_pi * xp.round(d / two_pi)

    right = xp.roll(phi, -1, axis=1)
    up_right = xp.roll(right, -1, axis=0)
    up = xp.roll(phi, -1, axis=0)
    total = wrap(right - phi) + wrap(up_right - right) + wrap(up - up_right) + wrap(phi - up)
    return xp.astype(xp.round(total / two_pi), xp.int64)


def defect_count(u, v) -> tuple[int, int]:
    """``(number of unit phase defects, net topological charge)`` from :func:`winding_numbers`."""
    xp = array_namespace(u)
    w = winding_numbers(u, v)
    return int(xp.sum(xp.abs(w))), int(xp.sum(w))


def pattern_regions(v) -> tuple[int, float]:
    """``(number of regions, area fraction)`` of a Gray–Scott pattern: the connected parts (periodic,
    4-neighbour) of where ``v`` exceeds the midpoint of its range. Spots give many small regions,
    stripes one connected labyrinth; a uniform field (range at most 1e-6 · max(1, |v|)) gives ``(0, 0.0)``.
    Host NumPy (connected-component labelling is not an array-API operation)."""
    import numpy as np
    from scipy import ndimage

    v = np.asarray(v)
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 1e-6 * max(1.0, abs(hi), abs(lo)):
        return 0, 0.0
    mask = v > 0.5 * (lo + hi)
    labels, n = ndimage.label(mask)
    parent = np.arange(n + 1)

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    # regions that touch across the periodic edges are one
    for a, b in zip(np.concatenate([labels[0], labels[:, 0]]), np.concatenate([labels[-1], labels[:, -1]])):
        if a and b:
            parent[root(a)] = root(b)
    count = len({root(a) for a in range(1, n + 1)})
    return count, float(mask.mean())


def radial_spectrum(w_hat, grid: FourierGrid, bins: int | None = None):
    r"""Radial power spectrum ``E(k)`` of real fields from their real-FFT spectra: the power summed
    over each shell of ``|k|`` (the convention whose shells add up to the mean square; the angular
    average is ``E`` divided by the shell's number of modes, ~``2πn``).

    ``w_hat`` has shape ``(..., N, N//2+1)`` (orthonormal, as :func:`rfft2`); leading axes (the two
    fields) are summed. Shell ``n`` collects the modes with ``(n − ½)Δk ≤ |k| < (n + ½)Δk``,
    ``Δk = 2π/L``, ``n = 1 … bins``; the half-plane storage is weighted so every mode ``±k`` counts.
    With ``bins = ⌈N/√2⌉`` the shells sum to the mean square over the box minus the mean (Parseval);
    the default ``N/2`` leaves out the corners ``|k| > (N/2 + ½)Δk``, which a resolved field barely
    has (white noise: ~20 % of its variance). Returns ``(k, power)`` with ``k = n Δk``.

    Each shell is summed on its own, so its value is accurate relative to itself: a spectrum spans
    dozens of decades, and differences of a running sum over the shells (an earlier version) left
    every shell below ~1e-16 of the total as rounding noise or an exact zero.
    """
    xp = array_namespace(w_hat)
    n = grid.N[0]
    bins = n // 2 if bins is None else int(bins)
    dk = 2 * math.pi / grid.L[0]
    power = xp.real(w_hat * xp.conj(w_hat))
    while power.ndim > 2:
        power = xp.sum(power, axis=0)
    m = power.shape[-1]
    col = xp.arange(m)
    edge = (col == 0) | (col == m - 1) if n % 2 == 0 else (col == 0)
    weight = 2.0 - xp.astype(edge, xp.float64)
    power = power * xp.reshape(weight, (1, m)) / (n * n)
    shell = xp.astype(xp.round(xp.sqrt(grid.k2) / dk), xp.int64)
    shell = xp.reshape(shell + xp.zeros(power.shape, dtype=xp.int64), (-1,))
    k = dk * xp.arange(1, bins + 1, dtype=xp.float64)
    return k, _shell_sums(xp, shell, xp.reshape(power, (-1,)), bins)


def _shell_sums(xp, shell, values, bins: int):
    """``[sum(values[shell == s]) for s in 1 … bins]``, each sum taken over its own shell."""
    bincount = getattr(xp, "bincount", None)  # NumPy and CuPy: one pass
    if bincount is not None:
        return bincount(shell, weights=values, minlength=bins + 1)[1:bins + 1]
    return xp.stack([xp.sum(xp.where(shell == s, values, 0.0)) for s in range(1, bins + 1)])
