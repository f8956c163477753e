r"""Two-dimensional incompressible Boussinesq flow in the x–z plane, vorticity–streamfunction form.

.. math::
    \zeta_t + \mathbf u\cdot\nabla\zeta = Ri\,\rho_x + Re^{-1}\nabla^2\zeta + F_\zeta,\qquad
    \rho_t + \mathbf u\cdot\nabla\rho = (Re\,Pr)^{-1}\nabla^2\rho,

with :math:`\zeta = u_z - w_x = \nabla^2\psi`, :math:`u = U_m + \psi_z`, :math:`w = -\psi_x` (so
:math:`\nabla\cdot\mathbf u = 0` by construction) and :math:`\rho` the density anomaly scaled by the
density jump (the momentum equation carries :math:`-Ri\,\rho\,\hat z`).

Space: Fourier in x (real FFTs); in z either Fourier (doubly periodic) or sine/cosine series on a
vertex grid ``z_j = -Lz/2 + j Lz/nz``, ``j = 0..nz`` (free-slip walls): ψ and ζ are sine series
(ψ = ζ = 0 on the walls, so w = 0 and u_z = 0), ρ a cosine series (no flux, ρ_z = 0, so the mean
density is conserved).  The sine/cosine transforms are the DCT-I / DST-I, i.e. the FFT of the
even/odd extension to a ``2 nz``-periodic grid. Three codings give the same numbers to round-off: on
NumPy, batched real-to-real transforms (ducc0's, else SciPy's: :class:`_R2RNonlinear`, the CPU's fast
path); on any array-API backend, the sums written out as dense matrix products (:meth:`ChannelGrid.dense_matrices`,
:class:`_DenseNonlinear`: a few batched GEMMs an evaluation, which is what a GPU runs fast at these
sizes) or, beyond :data:`DENSE_MAX` points, the extension and FFTs themselves.
Coefficients are stored as the first ``nz + 1`` entries of the extended spectrum, which keeps every
z-derivative a multiplication by ``i k_z`` (``k_z = π m / Lz``) and every field exactly of its parity.

The quadratic terms are dealiased by the 2/3 rule (strict: 3 × cut < number of points), which
makes advection conserve kinetic energy and enstrophy exactly in the semi-discrete scheme; the
energy budget ``dKE/dt = -ε + B + P`` then closes up to the time-stepping error.

The baroclinic torque Ri ρ_x is an even (cosine) field on the walls; it enters the odd (sine) vorticity
equation through its odd extension, which is exact while the density along each wall is uniform and
always keeps the kinetic-energy exchange ``B = -Ri <w ρ>`` exact.

A Coriolis force ``-2Ω ŷ × u`` about the axis normal to the plane equals ``2Ω ∇ψ`` — a pure
gradient, absorbed by the pressure: its curl (the only way it could enter the vorticity equation)
is identically zero and it does no work.  :class:`BoussinesqProblem` still adds the computed curl, so
a run can show that it is zero to round-off.

Linear stability reference: :func:`rayleigh_growth_rate` solves the Rayleigh equation of an inviscid
parallel shear flow between walls as a generalized eigenproblem (Chebyshev collocation);
for ``U = tanh z`` it reproduces Michalke's curve ("On the inviscid instability of the hyperbolic
tangent velocity profile", 1964): maximal growth 0.1897 at α = 0.4446, neutral at α = 1.
"""
from __future__ import annotations

import functools
import importlib
import math

from array_api_compat import array_namespace, is_numpy_namespace

from explore._host import to_host
from explore.numerics.fastfft import agrees, ducc_fft

__all__ = [
    "ChannelGrid",
    "kept_band",
    "BoussinesqProblem",
    "tanh_shear",
    "double_shear",
    "kinetic_energy",
    "enstrophy",
    "divergence_rms",
    "background_potential_energy",
    "energy_spectrum",
    "rayleigh_growth_rate",
    "rayleigh_growth_curve",
    "MICHALKE_ALPHA_MAX",
    "MICHALKE_GROWTH_MAX",
    "taylor_goldstein_growth_rate",
]

#: Michalke (1964): most unstable wavenumber and growth rate of U = tanh(z) (unbounded domain).
MICHALKE_ALPHA_MAX = 0.4446
MICHALKE_GROWTH_MAX = 0.1897

EVEN, ODD = "even", "odd"

#: the most points per direction for which a wall grid off NumPy transforms by dense matrix products
#: (:class:`ChannelGrid` ``dense``): one batched GEMM per direction instead of the even/odd extension's
#: copies and FFT calls. On a GPU a small grid's step is bound by kernel launches and per-call
#: overhead, not arithmetic: a whole basic_shear run (256 × 128, 1428 steps) took 15.4 s on an H200
#: with the extension and 8.1 s with the matrices; the products' arithmetic grows as n² per column,
#: so large grids keep the FFTs.
DENSE_MAX = 512


def _where(xp, cond, a: float, b: float):
    """``where`` with two float constants (array-API strict wants arrays there)."""
    return xp.where(cond, xp.asarray(a, dtype=xp.float64), xp.asarray(b, dtype=xp.float64))


def kept_band(nx: int, nz: int) -> tuple[int, int]:
    """``(rows, columns)`` of the modes the 2/3 rule keeps on an ``nx`` × ``nz`` grid with walls: the
    z-modes ``m < (2 nz - 1)//3 + 1`` and the x-modes ``k < (nx - 1)//3 + 1`` (a compact state's shape)."""
    return (2 * nz - 1) // 3 + 1, (nx - 1) // 3 + 1


def largest_kept_wavenumbers(Lx: float, Lz: float, nx: int, nz: int, walls: bool = True) -> tuple[float, float]:
    """``(k_x, k_z)`` of the highest modes the 2/3 rule keeps (3 k < points; with walls the z-modes of the
    2 nz-point even extension): what sets an explicit stepper's viscous limit, known before any grid."""
    if walls:
        rows, cols = kept_band(nx, nz)
        return 2 * math.pi / Lx * (cols - 1), math.pi / Lz * (rows - 1)
    return 2 * math.pi / Lx * ((nx - 1) // 3), 2 * math.pi / Lz * ((nz - 1) // 3)


class ChannelGrid:
    """Fourier (x) × sine/cosine or Fourier (z) grid on ``[0, Lx) × [-Lz/2, Lz/2]``.

    Parameters
    ----------
    Lx, Lz : float
        Domain lengths.
    nx : int
        Points in x (even).
    nz : int
        Intervals in z: ``nz + 1`` points including both walls (``walls=True``), or ``nz``
        periodic points.
    xp
        Array namespace.
    walls : bool
        Free-slip walls at ``z = ±Lz/2`` (sine/cosine in z) or doubly periodic.
    fast_path : bool
        On NumPy with walls: SciPy's real-to-real transforms (DCT-I / DST-I).
    dense : bool, optional
        Elsewhere with walls: the sine/cosine (and x-Fourier) transforms as products with dense
        matrices, the same sums written out (``f_j = Σ_m w_m c_m cos(π m j / nz)``, ...). Default: in a
        direction with at most :data:`DENSE_MAX` points; ``False``: the even/odd extension and FFTs.

    Notes
    -----
    Spectral arrays have shape ``(mz, nx//2 + 1)``: ``mz = nz + 1`` z-modes ``m = 0..nz`` (walls) or
    ``nz`` Fourier modes (periodic).  Coefficients are amplitudes: the ``[0, 0]`` entry of an even
    field is its domain mean (trapezoid rule in z on the walls).
    """

    def __init__(self, Lx: float, Lz: float, nx: int, nz: int, xp, *, walls: bool = True,
                 fast_path: bool = True, dense: bool | None = None):
        if nx < 4 or nx % 2:
            raise ValueError(f"nx must be an even number >= 4, got {nx}")
        if nz < 4 or (not walls and nz % 2):
            raise ValueError(f"nz must be >= 4 (and even when doubly periodic), got {nz}")
        if not (Lx > 0 and Lz > 0):
            raise ValueError(f"Lx and Lz must be positive, got {Lx}, {Lz}")
        self.Lx, self.Lz, self.nx, self.nz, self.xp, self.walls = float(Lx), float(Lz), int(nx), int(nz), xp, walls
        # NumPy: SciPy's real-to-real DCT-I / DST-I do the same transforms without the doubled array
        self._scipy = fast_path and walls and is_numpy_namespace(xp)
        generic_walls = walls and not self._scipy
        self._dense_z = generic_walls and (nz + 1 <= DENSE_MAX if dense is None else bool(dense))
        self._dense_x = self._dense_z and (nx <= DENSE_MAX if dense is None else bool(dense))
        self._mats = None
        self.dx, self.dz = self.Lx / nx, self.Lz / nz
        f64, c128 = xp.float64, xp.complex128
        self.x = self.dx * xp.arange(nx, dtype=f64)
        nzp = nz + 1 if walls else nz
        self.z = -self.Lz / 2 + self.dz * xp.arange(nzp, dtype=f64)
        self.shape = (nzp, nx)
        nkx = nx // 2 + 1
        kx = (2 * math.pi / self.Lx) * xp.arange(nkx, dtype=f64)
        if walls:
            mz = xp.arange(nz + 1, dtype=f64)
            kz = (math.pi / self.Lz) * mz
            index_z, n_ext = mz, 2 * nz
        else:
            index_z = xp.asarray([float(m if m <= nz // 2 else m - nz) for m in range(nz)], dtype=f64)
            kz = (2 * math.pi / self.Lz) * index_z
            n_ext = nz
        self.spectral_shape = (kz.shape[0], nkx)
        self.kx = xp.reshape(kx, (1, nkx))
        self.kz = xp.reshape(kz, (kz.shape[0], 1))
        self.K2 = self.kx**2 + self.kz**2
        self.inv_K2 = xp.where(self.K2 > 0, 1.0 / xp.where(self.K2 > 0, self.K2, 1.0), 0.0)
        # first derivatives; the x-Nyquist column is removed (it is outside the 2/3 band anyway)
        nyq_x = xp.reshape(xp.arange(nkx) < nx // 2, (1, nkx))
        self.ikx = xp.astype(xp.where(nyq_x, self.kx, 0.0), c128) * 1j
        nyq_z = xp.reshape(xp.abs(index_z) < n_ext // 2, (kz.shape[0], 1))
        self.ikz = xp.astype(xp.where(nyq_z, self.kz, 0.0), c128) * 1j
        # 2/3 rule, strict: 3 * cut < number of points, so cubic energy products are alias-free too
        keep_x = (3 * xp.arange(nkx, dtype=f64) < nx)
        keep_z = (3 * xp.abs(index_z) < n_ext)
        self.dealias = xp.astype(xp.reshape(keep_z, (-1, 1)) & xp.reshape(keep_x, (1, -1)), f64)
        self._odd_rows = xp.reshape(xp.astype((mz > 0) & (mz < nz), f64), (-1, 1)) if walls else None
        #: x-modes kept by the 2/3 rule (columns ``0..n_keep_x-1``); the rest of a dealiased field is zero
        self.n_keep_x = kept_band(nx, nz)[1]
        # Parseval weights of the half spectrum: <f g> = sum(W Re(f^ conj(g^)))
        wx = _where(xp, (xp.arange(nkx) == 0) | (xp.arange(nkx) == nx // 2), 1.0, 2.0)
        if walls:
            wz = _where(xp, (mz == 0) | (mz == nz), 1.0, 2.0)
        else:
            wz = xp.ones(nz, dtype=f64)
        self.weights = xp.reshape(wz, (-1, 1)) * xp.reshape(wx, (1, -1))
        # trapezoid weights in z (physical-space means)
        if walls:
            jz = xp.arange(nz + 1)
            self.z_weights = xp.reshape(_where(xp, (jz == 0) | (jz == nz), 0.5, 1.0), (-1, 1)) / nz
        else:
            self.z_weights = xp.ones((nz, 1), dtype=f64) / nz

    # ------------------------------------------------------------------ transforms
    def forward(self, f, parity: str = EVEN):
        """Physical ``f[..., z, x]`` (real) → spectral coefficients of the given z-parity."""
        xp = self.xp
        if self._scipy:
            return self._forward_scipy(f, parity)
        if self._dense_z:
            m = self.dense_matrices()
            fx = f @ m["x_fwd"] if self._dense_x else xp.fft.rfft(f, axis=-1, norm="forward")
            return m["z_fwd"][parity] @ fx
        fx = xp.fft.rfft(f, axis=-1, norm="forward")
        if not self.walls:
            return xp.fft.fft(fx, axis=-2, norm="forward")
        nz = self.nz
        inner = fx[..., 1:nz, :]
        if parity == EVEN:
            ext = xp.concat([fx, xp.flip(inner, axis=-2)], axis=-2)
            return xp.fft.fft(ext, axis=-2, norm="forward")[..., : nz + 1, :]
        zero = xp.zeros_like(fx[..., :1, :])
        ext = xp.concat([zero, inner, zero, -xp.flip(inner, axis=-2)], axis=-2)
        return xp.fft.fft(ext, axis=-2, norm="forward")[..., : nz + 1, :] * self._odd_rows

    def inverse(self, c, parity: str = EVEN):
        """Spectral coefficients of the given z-parity → physical field ``[..., z, x]`` (real)."""
        xp = self.xp
        if self._scipy:
            return self._inverse_scipy(c, parity)
        if self._dense_z:
            m = self.dense_matrices()
            cz = m["z_inv"][parity] @ c
            return xp.real(cz @ m["x_inv"]) if self._dense_x else xp.fft.irfft(cz, n=self.nx, axis=-1, norm="forward")
        if self.walls:
            nz = self.nz
            inner = c[..., 1:nz, :]
            if parity == EVEN:
                full = xp.concat([c, xp.flip(inner, axis=-2)], axis=-2)
            else:
                full = xp.concat([c[..., :nz, :], xp.zeros_like(c[..., :1, :]), -xp.flip(inner, axis=-2)], axis=-2)
            cz = xp.fft.ifft(full, axis=-2, norm="forward")[..., : nz + 1, :]
        else:
            cz = xp.fft.ifft(c, axis=-2, norm="forward")
        return xp.fft.irfft(cz, n=self.nx, axis=-1, norm="forward")

    def dense_matrices(self) -> dict:
        """The transforms of a ``dense`` grid as complex matrices (made once, on the grid's backend).

        ``z_inv[parity]`` ``(nz + 1, nz + 1)``: coefficients → values on the vertex grid,
        ``f_j = Σ_m w_m c_m cos(π m j / nz)`` (even; ``w_m = 1`` at ``m = 0, nz``, else 2) and
        ``f_j = 2i Σ_m c_m sin(π m j / nz)`` (odd); ``z_fwd[parity]`` their inverses,
        ``c_m = Σ_j w_j f_j cos(π m j / nz) / (2 nz)`` and ``c_m = -i Σ_j f_j sin(π m j / nz) / nz``
        (the DCT-I / DST-I, i.e. the even/odd extension's FFT, written out). ``x_inv`` ``(nx//2 + 1, nx)``:
        ``f_j = Re Σ_k w_k c_k e^{2πi kj/nx}`` (an ``irfft``); ``x_fwd`` ``(nx, nx//2 + 1)``: ``rfft / nx``.
        Angles are reduced to one period before the sines and cosines, so the entries are exact to
        round-off and symmetric.
        """
        if self._mats is None:
            import numpy as np

            xp, nz, nx = self.xp, self.nz, self.nx
            m = np.arange(nz + 1)
            angle = np.pi * (np.outer(m, m) % (2 * nz)) / nz
            cos, sin = np.cos(angle), np.sin(angle)
            w = np.where((m == 0) | (m == nz), 1.0, 2.0)
            k, j = np.arange(nx // 2 + 1), np.arange(nx)
            phase = 2 * np.pi * (np.outer(k, j) % nx) / nx
            wave = np.cos(phase) + 1j * np.sin(phase)
            wk = np.where((k == 0) | (k == nx // 2), 1.0, 2.0)
            c128 = lambda a: xp.asarray(np.ascontiguousarray(a, dtype=np.complex128))
            self._mats = {
                "z_inv": {EVEN: c128(cos * w), ODD: c128(2j * sin)},
                "z_fwd": {EVEN: c128(cos * w / (2 * nz)), ODD: c128(-1j * sin / nz)},
                "x_inv": c128(wk[:, None] * wave),
                "x_fwd": c128(np.conj(wave).T / nx),
            }
        return self._mats

    def _forward_scipy(self, f, parity):
        # DCT-I of the vertex values is the FFT of the even extension; DST-I of the interior
        # values is i times the FFT of the odd extension (Britanak, Yip & Rao, "Discrete Cosine
        # and Sine Transforms").
        import numpy as np
        import scipy.fft as sf

        nz = self.nz
        fx = sf.rfft(f, axis=-1, norm="forward")
        if parity == EVEN:
            return sf.dct(fx, type=1, axis=-2) / (2 * nz)
        out = np.zeros(fx.shape, dtype=fx.dtype)
        out[..., 1:nz, :] = sf.dst(fx[..., 1:nz, :], type=1, axis=-2) * (-0.5j / nz)
        return out

    def _inverse_scipy(self, c, parity):
        import numpy as np
        import scipy.fft as sf

        nz = self.nz
        if parity == EVEN:
            cz = sf.dct(c, type=1, axis=-2)
        else:
            cz = np.zeros(c.shape, dtype=c.dtype)
            cz[..., 1:nz, :] = sf.dst(c[..., 1:nz, :], type=1, axis=-2) * 1j
        return sf.irfft(cz, n=self.nx, axis=-1, norm="forward")

    # ------------------------------------------------------------------ quadrature
    def _odd_mode_weights(self, rows: int):
        """``m`` and ``w_m ((−1)^m − 1)`` for the first ``rows`` cosine modes (``−2 w_m`` on odd ``m``,
        0 on even): the wall difference and the z-moment of a cosine series see its odd modes only."""
        xp = self.xp
        m = xp.arange(rows, dtype=xp.float64)
        w = _where(xp, (m == 0) | (m == self.nz), 1.0, 2.0)
        return m, -2.0 * w * (m - 2.0 * xp.floor(m / 2.0))

    def wall_mean_difference(self, c):
        """``mean_x f(top wall) − mean_x f(bottom wall)`` of an even (cosine) field from its coefficients
        ``c[..., m, k_x]`` (any number of leading rows ``m``): ``Σ_m w_m ((−1)^m − 1) Re c[m, 0]``."""
        _, a = self._odd_mode_weights(c.shape[-2])
        return self.xp.sum(a * self.xp.real(c[..., :, 0]), axis=-1)

    def z_moment(self, c):
        """``<f z>`` (domain mean) of an even (cosine) field from its coefficients, exactly for the
        cosine series: ``Σ_{m≥1} w_m Re c[m, 0] ((−1)^m − 1) Lz / (m π)²`` (the trapezoid rule would
        carry an O(dz²) error: ``z`` is not a cosine polynomial)."""
        xp = self.xp
        m, a = self._odd_mode_weights(c.shape[-2])
        return xp.sum(a * self.Lz / (math.pi**2 * xp.where(m > 0, m * m, 1.0)) * xp.real(c[..., :, 0]), axis=-1)

    def mean(self, f):
        """Domain mean of a physical field (trapezoid in z on the walls: exact for the band)."""
        xp = self.xp
        return xp.sum(f * self.z_weights, axis=(-2, -1)) / self.nx

    def inner(self, a, b):
        """Domain mean of the product of two fields of equal parity, from their coefficients."""
        xp = self.xp
        return xp.sum(self.weights * xp.real(a * xp.conj(b)), axis=(-2, -1))


# ---------------------------------------------------------------------------- the equations
class BoussinesqProblem:
    """Semilinear form ``y' = L y + N(t, y)`` of the Boussinesq equations on a :class:`ChannelGrid`.

    The state ``y`` stacks the coefficients of ζ (odd) and ρ (even): shape ``(2, mz, nkx)``.
    ``L`` holds the viscous and diffusive symbols ``-K²/Re`` and ``-K²/(Re Pr)``; ``N`` the
    advection, the baroclinic torque, the body forcing, the curl of the Coriolis force and (doubly
    periodic only) the advection of a linear background density ``-gradient * z``.

    Parameters
    ----------
    grid : ChannelGrid
    Re, Ri, Pr : float
        Reynolds, (bulk) Richardson and Prandtl numbers.
    mean_velocity : float
        Uniform velocity ``U_m`` added to ``u`` (the mean flow a sine series cannot hold).
    rotation : float
        Rotation rate Ω about the axis normal to the plane (Coriolis force ``-2Ω ŷ × u``).
    forcing : array, optional
        Coefficients (odd parity) of a steady vorticity source ``F_ζ = ∇²ψ_f``.
    forcing_streamfunction : array, optional
        Coefficients of ``ψ_f`` (for the work done by the forcing).
    background_gradient : float
        Doubly periodic only: the total density is ``-background_gradient * z + ρ``.
    compact : bool
        Wall-bounded with SciPy's or dense transforms (ignored elsewhere): the state holds only the
        modes the 2/3 rule keeps, shape ``(2, mz_keep, nx_keep)`` (the others of a dealiased state
        are zero), so a time stepper does ~2× less arithmetic; :meth:`expand` / :meth:`compress` convert.

    Attributes
    ----------
    max_speed : tuple
        ``(max|u|, max|w|)`` of the last evaluation.
    max_rate : float
        ``max(|u|/dx + |w|/dz)`` over the grid at the last evaluation: the advective rate of a CFL step.
        Both are computed when first read after an evaluation (a stepper reads them once per step, not
        once per stage).
    budget : dict or None
        After a call with ``record = True``: ``dissipation``, ``buoyancy_flux``, ``forcing_power``,
        ``coriolis_power`` (kinetic-energy sources at that state) and, with walls, ``pe_diffusion``:
        the potential-energy source of diffusion through the no-flux walls,
        ``-κ Ri (ρ̄_top − ρ̄_bottom) / Lz`` (so ``dPE/dt = -buoyancy_flux + pe_diffusion``); doubly
        periodic with a background gradient γ, ``ape_dissipation`` ``κ Ri <|∇ρ|²> / γ``, the loss of
        the linear available potential energy ``Ri <ρ²> / (2γ)`` to mixing.
    """

    def __init__(self, grid: ChannelGrid, Re: float, Ri: float, Pr: float = 1.0, *, mean_velocity: float = 0.0,
                 rotation: float = 0.0, forcing=None, forcing_streamfunction=None, background_gradient: float = 0.0,
                 compact: bool = False):
        xp = grid.xp
        self.grid, self.Re, self.Ri, self.Pr = grid, float(Re), float(Ri), float(Pr)
        self.nu, self.kappa = 1.0 / self.Re, 1.0 / (self.Re * self.Pr)
        self.mean_velocity, self.rotation = float(mean_velocity), float(rotation)
        self.forcing, self.forcing_streamfunction = forcing, forcing_streamfunction
        self.background_gradient = float(background_gradient)
        self.linear = xp.stack([-self.nu * grid.K2, -self.kappa * grid.K2])
        # (max|u|, max|w|, max(|u|/dx + |w|/dz), Ri max|ρ_z|) of the last evaluation, or a callable that
        # computes them from its fields on first use (each path keeps them until its next call)
        self._speeds = (abs(self.mean_velocity), 0.0, abs(self.mean_velocity) / grid.dx, 0.0)
        self._pending_speeds = None
        self.record = False
        self.budget = None
        self.compact = bool(compact and (grid._scipy or grid._dense_z))
        #: the kept band (rows, columns) of a compact state
        self.band = kept_band(grid.nx, grid.nz) if grid.walls else None
        if self.compact:
            rows, cols = self.band
            self.linear = xp.asarray(self.linear[:, :rows, :cols], copy=True)
        self._fast = _R2RNonlinear(self) if grid._scipy else None
        self._dense = _DenseNonlinear(self) if grid._dense_z else None

    def _current_speeds(self) -> tuple:
        if self._pending_speeds is not None:
            self._speeds, self._pending_speeds = self._pending_speeds(), None
        return self._speeds

    @property
    def max_speed(self) -> tuple:
        """``(max|u|, max|w|)`` at the last evaluation."""
        return self._current_speeds()[:2]

    @property
    def max_rate(self) -> float:
        """max over the grid of ``|u|/dx + |w|/dz`` at the last evaluation (the advective CFL rate)."""
        return self._current_speeds()[2]

    @property
    def buoyancy_frequency(self) -> float:
        """``sqrt(Ri max|∂ρ/∂z|)`` at the last evaluation, with the background gradient of a doubly
        periodic box: a bound on the frequency (or, statically unstable, the growth rate) of the local
        gravity waves, ``ω² = Ri ρ_z k_x²/|k|²`` with frozen coefficients, which an explicit step must
        resolve whatever the flow's speed."""
        return math.sqrt(self._current_speeds()[3] + self.Ri * abs(self.background_gradient))

    def compress(self, y):
        """The state as this problem steps it (the kept band when ``compact``)."""
        if not self.compact:
            return y
        rows, cols = self.band
        return self.grid.xp.asarray(y[..., :rows, :cols], copy=True)

    def expand(self, y):
        """A (possibly compact) state as full coefficient arrays ``(..., mz, nx//2 + 1)``."""
        if not self.compact:
            return y
        xp, rows, cols = self.grid.xp, *self.band
        full = xp.zeros((*y.shape[:-2], *self.grid.spectral_shape), dtype=y.dtype)
        full[..., :rows, :cols] = y
        return full

    def streamfunction(self, zeta_hat):
        """ψ̂ = -ζ̂ / K² (the mean mode of ψ is irrelevant)."""
        return -zeta_hat * self.grid.inv_K2

    def velocity(self, y):
        """Physical ``(u, w)`` of state ``y`` (u includes the mean velocity)."""
        g = self.grid
        psi = self.streamfunction(y[0, ...])
        return g.inverse(g.ikz * psi, EVEN) + self.mean_velocity, g.inverse(-(g.ikx * psi), ODD)

    def coriolis_torque(self, psi_hat):
        """Curl of the Coriolis force ``2Ω ∇ψ``: ``∂z(2Ω ψ_x) - ∂x(2Ω ψ_z)`` — zero up to round-off."""
        g, two_omega = self.grid, 2.0 * self.rotation
        return g.ikz * (two_omega * (g.ikx * psi_hat)) - g.ikx * (two_omega * (g.ikz * psi_hat))

    def nonlinear(self, t, y):
        if self._fast is not None:
            return self._fast(y)
        if self._dense is not None:
            return self._dense(y)
        xp, g = self.grid.xp, self.grid
        zeta, rho = y[0, ...], y[1, ...]
        psi = self.streamfunction(zeta)
        even = g.inverse(xp.stack([g.ikz * psi, g.ikz * zeta, g.ikx * rho]), EVEN)      # u', ζ_z, ρ_x
        odd = g.inverse(xp.stack([-(g.ikx * psi), g.ikx * zeta, g.ikz * rho]), ODD)     # w, ζ_x, ρ_z
        u = even[0, ...] + self.mean_velocity
        w = odd[0, ...]
        rho_x = even[2, ...]
        n_zeta = self.Ri * rho_x - (u * odd[1, ...] + w * even[1, ...])
        n_rho = -(u * rho_x + w * odd[2, ...])
        out_zeta = g.dealias * g.forward(n_zeta, ODD)
        out_rho = g.dealias * g.forward(n_rho, EVEN)
        if self.background_gradient:
            out_rho = out_rho + self.background_gradient * (-(g.ikx * psi))  # -w d(-γ z)/dz = γ w
        if self.forcing is not None:
            out_zeta = out_zeta + self.forcing
        coriolis = None
        if self.rotation:
            coriolis = self.coriolis_torque(psi)
            out_zeta = out_zeta + coriolis
        rho_z = odd[2, ...]
        self._pending_speeds = lambda: _field_speeds(g, self.Ri, u, w, rho_z)
        if self.record:
            self.record = False
            self.budget = self._budget(zeta, psi, rho_x, coriolis, rho)
        return xp.stack([out_zeta, out_rho])

    def _budget(self, zeta, psi, rho_x, coriolis, rho) -> dict:
        """Kinetic-energy sources ``dKE/dt = -dissipation + buoyancy_flux + forcing_power`` (domain means)."""
        g = self.grid
        psi_phys = g.inverse(psi, ODD)
        out = {
            "dissipation": float(self.nu * g.inner(zeta, zeta)),
            "buoyancy_flux": float(-self.Ri * g.mean(psi_phys * rho_x)),   # -<ψ, Ri ρ_x> = -Ri <w ρ>
            "forcing_power": 0.0 if self.forcing is None else float(-g.inner(psi, self.forcing)),
            "coriolis_power": 0.0 if coriolis is None else float(-g.inner(psi, coriolis)),
        }
        if g.walls:
            out["pe_diffusion"] = float(self._pe_diffusion(rho))
        elif self.background_gradient:  # linear APE <b'²>/(2N²) is destroyed at χ = κ <|∇b'|²>/N²
            out["ape_dissipation"] = float(self.kappa * self.Ri / self.background_gradient * g.inner(g.K2 * rho, rho))
        return out

    def _pe_diffusion(self, rho_hat):
        """``-κ Ri (ρ̄_top − ρ̄_bottom) / Lz`` (a 0-d array on the grid's backend): diffusion's source of
        potential energy ``Ri <ρ z>``."""
        g = self.grid
        return -self.kappa * self.Ri * g.wall_mean_difference(rho_hat) / g.Lz


def _fast_transforms():
    """``(dct1, dst1, irfft, rfft)`` for :class:`_R2RNonlinear`, each writing into a given ``out``.

    ``dct1(a, out)`` / ``dst1(a, out)``: unnormalised DCT-I / DST-I along axis -2 of a float array (``out``
    may be ``a``); ``irfft(c, n, out)`` / ``rfft(f, out)``: along the last axis, ``norm="forward"``.
    The first of these that gives the numbers of ``scipy.fft.dct`` / ``dst`` and ``numpy.fft.irfft`` /
    ``rfft`` (checked here on small arrays) serves:

    1. ``ducc0.fft`` (a dependency), the successor of pocketfft that SciPy itself uses from 1.18: its
       batched transforms are ~1.3–1.7× faster than SciPy 1.17's pocketfft at these sizes (per
       evaluation at 256 × 128: ~0.67 ms instead of ~0.97 ms). Same sums, other rounding: checked to
       1e-14 of the largest entry.
    2. SciPy's own FFT module, called directly (``_pocketfft.pypocketfft`` up to SciPy 1.17,
       ``_duccfft.pyduccfft`` from 1.18; checked bit for bit): the public functions' argument handling
       costs 5–11 µs a call, 6 calls an evaluation, ~0.3 s of a basic_shear run.
    3. The public functions.
    """
    import numpy as np
    import scipy.fft as sf

    def sf_dct(a, out):
        out[...] = sf.dct(a, type=1, axis=-2)

    def sf_dst(a, out):
        out[...] = sf.dst(a, type=1, axis=-2)

    def np_irfft(c, n, out):
        return np.fft.irfft(c, n=n, axis=-1, norm="forward", out=out)

    def np_rfft(f, out):
        return np.fft.rfft(f, axis=-1, norm="forward", out=out)

    public = (sf_dct, sf_dst, np_irfft, np_rfft)
    candidates = [(ducc_fft, (), 1e-14)]
    candidates += [(functools.partial(importlib.import_module, m), (None,), 0.0)
                   for m in ("scipy.fft._pocketfft.pypocketfft", "scipy.fft._duccfft.pyduccfft")]
    for module, tail, tol in candidates:
        try:
            return _checked(_module_transforms(module(), tail), public, tol)
        except Exception:  # pragma: no cover - depends on what is installed
            continue
    return public  # pragma: no cover


def _module_transforms(fft, tail: tuple = ()):
    """The four transforms of :func:`_fast_transforms` on the FFT module ``fft``, one thread each:
    ``ducc0.fft`` or SciPy's private module, whose ``dct`` / ``dst`` take the same arguments plus
    ``tail`` (``(None,)``: no orthogonalization). Each function names its module in ``backend``."""
    name = fft.__name__

    def dct(a, out):
        fft.dct(a, 1, (a.ndim - 2,), 0, out, 1, *tail)

    def dst(a, out):
        fft.dst(a, 1, (a.ndim - 2,), 0, out, 1, *tail)

    def irfft(c, n, out):
        return fft.c2r(c, (c.ndim - 1,), n, False, 0, out, 1)

    def rfft(f, out):
        return fft.r2c(f, (f.ndim - 1,), True, 2, out, 1)

    for f in (dct, dst, irfft, rfft):
        f.backend = name
    return dct, dst, irfft, rfft


def _checked(fast, public, tol: float):
    """``fast`` after checking each of its transforms against the ``public`` one on small arrays: equal
    to within ``tol`` times the largest entry (``tol = 0``: bit for bit); raises if any differs."""
    import numpy as np

    dct, dst, irfft, rfft = fast
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 12))[..., ::2]
    c = (x + 1j * rng.standard_normal(x.shape))[..., :4]
    for mine, theirs in zip((dct, dst), public[:2]):
        a, b = np.zeros_like(x), np.zeros_like(x)
        mine(x, a)
        theirs(x, b)
        if not agrees(a, b, tol):
            raise ValueError("r2r differs")
    a, b = np.empty(x.shape), np.empty(x.shape)
    if not agrees(irfft(c, 6, a), public[2](c, 6, b), tol):
        raise ValueError("c2r differs")
    a, b = np.empty(c.shape, dtype=c.dtype), np.empty(c.shape, dtype=c.dtype)
    if not agrees(rfft(x, a), public[3](x, b), tol):
        raise ValueError("r2c differs")
    return fast


class _R2RNonlinear:
    """The nonlinear term of a wall-bounded :class:`BoussinesqProblem` on NumPy with SciPy's real transforms.

    The same arithmetic as the generic path, arranged to cost less (this is where a run spends its time):

    - only the ``n_keep_x`` x-modes that survive the 2/3 rule go through the z-transforms (the others
      are zero on the way in and discarded on the way out);
    - complex columns are transformed as interleaved real pairs (a float view): one batched DCT-I and
      one DST-I call per direction, from input buffers whose rows beyond the band stay zero into
      buffers that are allocated once (fresh large arrays cost page faults on every call);
    - the factors ``±i`` of the sine series are folded into the spectral multipliers, and so is ``Ri``
      (the density gradients come out times ``Ri``, the density tendency is divided by it again); the
      mean velocity ``U_m`` enters as u's ``(0, 0)`` coefficient;
    - odd fields vanish on the walls, so their physical values are made and used on the interior
      rows only (the sine transform reads no others);
    - the kinetic-energy budget (``record``) comes from the mixed (z, k_x) fields by Parseval in x,
      without another transform;
    - the CFL speeds are computed only when read (from ``u`` and ``w``, kept until the next call): a
      stepper reads them once per step, not at each of its stages;
    - an evaluation with ``record`` set at the same state as the previous evaluation, itself with
      ``record`` (a frame's diagnostics, then the first stage of the next step), returns a copy of that
      result and budget instead of computing them again.

    (Running the even and the odd group, then the two tendencies, on two threads was tried: on this
    project's 2-core machines it saved 3 % of a run's wall time for 27 % more CPU time.)
    """

    def __init__(self, problem: "BoussinesqProblem"):
        import numpy as np

        g = problem.grid
        self.problem, self.grid = problem, g
        K, nz, nx = g.n_keep_x, g.nz, g.nx
        nkx = nx // 2 + 1
        self.K = K
        self._dct, self._dst, self._irfft, self._rfft = _fast_transforms()
        inv_K2 = np.asarray(g.inv_K2)[:, :K]
        ikx = np.asarray(g.ikx)[:, :K]
        ikz = np.asarray(g.ikz)
        kx = ikx.imag
        kz = ikz.imag[1:nz]
        # the density gradients carry Ri (one multiplication fewer per evaluation in physical space)
        self.Ri = problem.Ri
        self.ri_scale = self.Ri if self.Ri else 1.0

        def rep(a):  # a real multiplier of complex columns, as one of their float view
            return np.ascontiguousarray(np.repeat(np.broadcast_to(a, np.broadcast_shapes(a.shape, (1, K))), 2, axis=-1))

        # even (cosine) group: u = U_m + C(ikz ψ), ζ_z = C(ikz ζ), Ri ρ_x = C(Ri ikx ρ), with ψ = -ζ/K²
        self.m_u = np.ascontiguousarray(-ikz * inv_K2)
        self.m_zz = np.ascontiguousarray(np.broadcast_to(ikz, (nz + 1, K)))
        self.m_rx = np.ascontiguousarray(np.broadcast_to(self.ri_scale * ikx, (nz + 1, K)))
        # odd (sine) group on the interior rows, the i of the inverse sine series folded in (real):
        # w = i S(-ikx ψ) = S(-kx ζ/K²), ζ_x = i S(ikx ζ) = S(-kx ζ), Ri ρ_z = i S(Ri ikz ρ) = S(-Ri kz ρ)
        self.m_w = rep(-kx * inv_K2[1:nz])
        self.m_zx = rep(-kx)
        self.m_rz = np.ascontiguousarray(-self.ri_scale * kz)
        dealias = np.asarray(g.dealias)[:, :K]
        # forward, of minus the tendencies: odd coefficients i/(2 nz) S(f), even ones -C(f)/(2 nz Ri),
        # times the 2/3 rule
        self.c_odd = np.ascontiguousarray((0.5j / nz) * dealias[1:nz])
        self.c_even = rep(-dealias / (2 * nz * self.ri_scale))
        # Parseval in x: mean_x(ψ ρ_x) = -sum_k (2/k) Im(ŵ conj(ρ̂_x)) on each row (ψ̂ = i ŵ / k)
        self.b_w = np.where(kx[0] > 0, 2.0 / np.where(kx[0] > 0, kx[0], 1.0), 0.0)
        self.zw_int = np.asarray(g.z_weights)[1:nz, 0]
        self.dx_over_dz = g.dx / g.dz
        # the state's rows: all z-modes, or the kept ones (compact); the multipliers cut to them
        rows = problem.band[0] if problem.compact else nz + 1
        self.rows, self.ri = rows, min(rows, nz)  # state rows; end of its interior (sine) rows
        for name in ("m_u", "m_zz", "m_rx", "c_even"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[:rows]))
        for name in ("m_w", "m_rz", "c_odd"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[:self.ri - 1]))
        # the multipliers of ζ, stacked: one multiplication per group
        self.m_zeta_even = np.stack([self.m_u, self.m_zz])
        self.m_zeta_odd = np.stack([self.m_w, np.broadcast_to(self.m_zx, self.m_w.shape)])
        if np.all(dealias[:rows] == 1.0):  # compact: the state is the band, the 2/3 rule keeps all of it
            self.c_odd, self.c_even = self.c_odd.flat[0], self.c_even.flat[0]
        w8 = np.asarray(g.weights)[:rows, :K]
        self.weights = w8 if problem.compact else np.asarray(g.weights)
        if problem.compact:
            self.inv_K2 = np.ascontiguousarray(inv_K2[:rows])
            self.ikx_c, self.ikz_c = ikx, np.ascontiguousarray(ikz[:rows])
            self.forcing = None if problem.forcing is None else np.ascontiguousarray(np.asarray(problem.forcing)[:rows, :K])
        else:
            self.forcing = problem.forcing
        # buffers: spectral inputs of the z-transforms (the rows beyond the state's stay zero), mixed
        # fields zero-padded to all x-modes (the padding stays zero), and products
        self.ev_in = np.zeros((3, nz + 1, K), dtype=np.complex128)
        self.od_in = np.zeros((3, nz - 1, K), dtype=np.complex128)
        self.ev = np.zeros((3, nz + 1, nkx), dtype=np.complex128)
        self.od = np.zeros((3, nz + 1, nkx), dtype=np.complex128)
        self.phys = np.zeros((2, nz + 1, nx))
        self.E = np.empty((3, nz + 1, nx))
        self.O = np.empty((3, nz - 1, nx))
        self.F = np.empty((2, nz + 1, nkx), dtype=np.complex128)
        self.tmp = np.empty((nz + 1, nx))
        self.tmp2 = np.empty((nz - 1, nx))
        self.tmp3 = np.empty((nz - 1, nx))  # w ρ_z (Ri ρ_z stays in O for the buoyancy frequency)
        self._calls = 0
        self._memo = None  # (call number, state, result, budget) of the last evaluation with record
        self._make_views()

    def _make_views(self) -> None:
        """The views of the buffers that every evaluation uses, made once (~25 views an evaluation
        otherwise cost ~20 µs of its ~1.1 ms)."""
        import numpy as np

        f64, K, rows, ri, nz = np.float64, self.K, self.rows, self.ri, self.grid.nz
        E, O = self.E, self.O
        odv = self.od_in[:, :ri - 1].view(f64)
        self.v_even = (self.ev_in[:2, :rows], self.ev_in[2, :rows], self.ev_in.view(f64),
                       self.ev[:, :, :K].view(f64))
        self.v_odd = (odv[:2], odv[2], self.od_in.view(f64), self.od[:, 1:nz, :K].view(f64), self.od[:, 1:nz])
        self.v_zeta = (E[0, 1:nz], E[1, 1:nz], E[2, 1:nz], O[0], O[1], self.phys[0, 1:nz], self.F[0, 1:nz],
                       self.F[0, 1:nz, :K].view(f64))
        self.v_rho = (E[0], E[2], O[0], O[2], self.phys[1], self.phys[1, 1:nz], self.F[1],
                      self.F[1, :, :K].view(f64))

    def _speeds(self) -> tuple:
        """``(max|u|, max|w|, max(|u|/dx + |w|/dz), Ri max|ρ_z|)`` of the last evaluation (``w`` and
        ``ρ_z`` vanish on the walls)."""
        import numpy as np

        g, nz = self.grid, self.grid.nz
        u, w, ri_rho_z = self.E[0], self.O[0], self.O[2]
        au, aw = np.abs(u, out=self.tmp), np.abs(w, out=self.tmp2)
        umax, wmax = float(au.max()), float(aw.max())
        if self.dx_over_dz != 1.0:
            aw *= self.dx_over_dz
        aw += au[1:nz]
        rate = max(float(aw.max()), float(au[0].max()), float(au[nz].max())) / g.dx
        n2 = max(float(ri_rho_z.max()), -float(ri_rho_z.min())) if self.Ri else 0.0
        return umax, wmax, rate, n2

    def _even_fields(self, zeta, rho):
        """u, ζ_z, Ri ρ_x on the grid (``self.E``): one batched DCT-I, then real FFTs in x."""
        import numpy as np

        zeta_in, rho_in, ev_in, ev = self.v_even
        np.multiply(zeta, self.m_zeta_even, out=zeta_in)
        np.multiply(rho, self.m_rx, out=rho_in)
        # the mean flow is u's (m, k_x) = (0, 0) coefficient (which ψ's leaves zero)
        self.ev_in[0, 0, 0] = self.problem.mean_velocity
        self._dct(ev_in, ev)
        self._irfft(self.ev, self.grid.nx, self.E)

    def _odd_fields(self, zeta, rho):
        """w, ζ_x, Ri ρ_z on the interior rows (``self.O``): one batched DST-I, then real FFTs in x."""
        import numpy as np

        f64, ri = np.float64, self.ri
        zeta_in, rho_in, od_in, od, od_c = self.v_odd
        np.multiply(zeta[1:ri].view(f64), self.m_zeta_odd, out=zeta_in)
        np.multiply(rho[1:ri].view(f64), self.m_rz, out=rho_in)
        self._dst(od_in, od)
        self._irfft(od_c, self.grid.nx, self.O)

    def _zeta_tendency(self):
        """``u ζ_x + w ζ_z - Ri ρ_x`` on the interior rows, to spectral (``self.F[0]``): a real FFT, then
        a DST-I of the kept columns. Overwrites ζ_x."""
        import numpy as np

        u, zeta_z, rho_x, w, zeta_x, Pz, Fz, fz = self.v_zeta
        np.multiply(u, zeta_x, out=Pz)
        np.multiply(w, zeta_z, out=zeta_x)
        Pz += zeta_x
        if self.Ri:
            Pz -= rho_x
        self._rfft(Pz, Fz)
        self._dst(fz, fz)

    def _rho_tendency(self):
        """``Ri (u ρ_x + w ρ_z)`` on all rows, to spectral (``self.F[1]``): a real FFT, then a DCT-I of the
        kept columns."""
        import numpy as np

        u, rho_x, w, rho_z, Pr, Pr_interior, Fr, fr = self.v_rho
        np.multiply(u, rho_x, out=Pr)
        Pr_interior += np.multiply(w, rho_z, out=self.tmp3)
        self._rfft(Pr, Fr)
        self._dct(fr, fr)

    def __call__(self, y):
        import numpy as np

        p, K, rows, ri, nz = self.problem, self.K, self.rows, self.ri, self.grid.nz
        f64 = np.float64
        record = p.record
        if record and self._memo is not None:
            calls, y_prev, out_prev, budget_prev = self._memo
            if calls == self._calls and y.shape == y_prev.shape and np.array_equal(y, y_prev):
                # the state of the last evaluation, which nothing has followed: its u and w (speeds) are current
                p.record = False
                p.budget = dict(budget_prev)
                return out_prev.copy()
        self._calls += 1
        zeta, rho = y[0, :, :K], y[1, :, :K]
        # spectral → mixed (z physical, k_x spectral) → physical
        self._even_fields(zeta, rho)
        self._odd_fields(zeta, rho)
        # u, w and Ri ρ_z stay as they are until the next call: the CFL speeds are computed from them when read
        p._pending_speeds = self._speeds
        # minus the tendencies, each to spectral
        self._zeta_tendency()
        self._rho_tendency()
        F, fr = self.F, self.v_rho[-1]
        if p.compact:  # every entry but the sine series' m = 0 row is written below
            out = np.empty(y.shape, dtype=np.complex128)
            out[0, 0] = 0.0
        else:
            out = np.zeros(y.shape, dtype=np.complex128)
        np.multiply(F[0, 1:ri, :K], self.c_odd, out=out[0, 1:ri, :K])
        np.multiply(fr[:rows], self.c_even, out=out[1, :, :K].view(f64))
        if self.forcing is not None:
            out[0] += self.forcing
        coriolis = psi = None
        if p.compact and (p.rotation or (record and self.forcing is not None)):
            psi = -y[0] * self.inv_K2
        elif p.rotation or (record and self.forcing is not None):
            psi = p.streamfunction(y[0])
        if p.rotation:
            if p.compact:
                two_omega = 2.0 * p.rotation
                coriolis = (self.ikz_c * (two_omega * (self.ikx_c * psi))
                            - self.ikx_c * (two_omega * (self.ikz_c * psi)))
            else:
                coriolis = p.coriolis_torque(psi)
            out[0] += coriolis
        if record:
            p.record = False
            w_hat, rho_x_hat = self.od[0, 1:nz, :K], self.ev[2, 1:nz, :K]
            flux = -(np.imag(w_hat * np.conj(rho_x_hat)) @ self.b_w)    # Ri mean_x(ψ ρ_x) on each interior row

            def inner(a, b):
                return float(np.sum(self.weights * np.real(a * np.conj(b))))

            p.budget = {
                "dissipation": p.nu * inner(y[0], y[0]),
                "buoyancy_flux": float(-(self.Ri / self.ri_scale) * (flux @ self.zw_int)),
                "forcing_power": 0.0 if self.forcing is None else -inner(psi, self.forcing),
                "coriolis_power": 0.0 if coriolis is None else -inner(psi, coriolis),
                "pe_diffusion": float(p._pe_diffusion(y[1])),
            }
            self._memo = (self._calls, y.copy(), out.copy(), dict(p.budget))
        return out


def _host_floats(v) -> list:
    """The entries of a small 1-D array of any backend as Python floats (one copy to the host)."""
    return [float(x) for x in to_host(v)]


def _field_speeds(grid, Ri: float, u, w, rho_z) -> tuple:
    """``(max|u|, max|w|, max(|u|/dx + |w|/dz), Ri max|ρ_z|)`` of physical fields, in one copy to the
    host (computed when a stepper reads them: once a step, not at every stage)."""
    xp = grid.xp
    au, aw = xp.abs(u), xp.abs(w)
    umax, wmax, rate, rho_z_max = _host_floats(xp.stack([xp.max(au), xp.max(aw), xp.max(au / grid.dx + aw / grid.dz),
                                                         xp.max(xp.abs(rho_z))]))
    return umax, wmax, rate, Ri * rho_z_max


class _DenseNonlinear:
    """The nonlinear term of a wall-bounded :class:`BoussinesqProblem` with dense transforms (any backend).

    The generic arithmetic in a few large operations, for a GPU where a small grid's cost is the
    number of kernel launches: the six fields ``u, w, ζ_x, ρ_x, ζ_z, ρ_z`` (and ``ψ`` when the budget
    is recorded) are made by one gather of the state's band times stacked spectral multipliers, one
    batched product with the stacked z-matrices (cosine or sine series each) and one with the
    x-matrix; the two tendencies go back by one product with the x-matrix and one batched product
    with the (negated) forward z-matrices, cut to the modes the 2/3 rule keeps. About a dozen array
    operations an evaluation instead of ~90. The CFL speeds are computed when read, in one copy to
    the host; the budget likewise.
    """

    # the fields, their source (0: ζ, 1: ρ) and parity; ψ last (only with the budget)
    _SOURCES = (0, 0, 0, 1, 0, 1, 0)
    _PARITIES = (EVEN, ODD, ODD, EVEN, EVEN, ODD, ODD)

    def __init__(self, problem: "BoussinesqProblem"):
        g, xp = problem.grid, problem.grid.xp
        self.problem, self.grid, self.xp = problem, g, xp
        K, keep = g.n_keep_x, problem.band[0]
        rows = keep if problem.compact else g.nz + 1
        self.K, self.rows, self.keep = K, rows, keep
        ikx, ikz = g.ikx[:, :K], g.ikz[:rows, :]
        inv = g.inv_K2[:rows, :K]
        shape = (rows, K)
        c128 = xp.complex128
        mult = [ikz * (-inv), ikx * inv, ikx, ikx, ikz, ikz, -inv]  # u, w, ζ_x, ρ_x, ζ_z, ρ_z, ψ
        self.mult = xp.stack([xp.astype(xp.broadcast_to(m, shape), c128) for m in mult])
        self.sources = xp.asarray(list(self._SOURCES))
        m = g.dense_matrices()
        self.z_inv = xp.stack([m["z_inv"][par][:, :rows] for par in self._PARITIES])
        # minus the tendencies come back: ζ (odd) and ρ (even), negated, only the kept rows
        self.z_fwd = xp.stack([-m["z_fwd"][ODD][:keep, :], -m["z_fwd"][EVEN][:keep, :]])
        self.x_inv = m["x_inv"][:K, :] if g._dense_x else None
        self.x_fwd = m["x_fwd"][:, :K] if g._dense_x else None
        self.weights = g.weights[:rows, :K] if problem.compact else g.weights
        self.inv_K2 = inv if problem.compact else g.inv_K2
        self.ikx_s, self.ikz_s = (ikx, ikz) if problem.compact else (g.ikx, g.ikz)
        self.forcing = problem.forcing
        if problem.compact and problem.forcing is not None:
            self.forcing = problem.forcing[:rows, :K]

    def __call__(self, y):
        p, g, xp = self.problem, self.grid, self.xp
        record = p.record
        n = 7 if record else 6
        band = y if p.compact else y[:, :self.rows, :self.K]
        spec = xp.take(band, self.sources[:n], axis=0) * self.mult[:n, ...]
        if p.mean_velocity:  # u's (m, k_x) = (0, 0) coefficient (which ψ's leaves zero)
            spec[0, 0, 0] = p.mean_velocity
        mixed = self.z_inv[:n, ...] @ spec
        if self.x_inv is not None:
            P = xp.real(mixed @ self.x_inv)
        else:
            P = xp.fft.irfft(mixed, n=g.nx, axis=-1, norm="forward")
        u, w = P[0, ...], P[1, ...]
        p._pending_speeds = lambda: _field_speeds(g, p.Ri, u, w, P[5, ...])
        # u ζ_x + w ζ_z - Ri ρ_x and u ρ_x + w ρ_z: minus the tendencies, in physical space
        T = u * P[2:4, ...] + w * P[4:6, ...]
        if p.Ri:
            T[0, ...] = T[0, ...] - p.Ri * P[3, ...]
        if self.x_fwd is not None:
            Tx = T @ self.x_fwd
        else:
            Tx = xp.fft.rfft(T, axis=-1, norm="forward")[..., :self.K]
        out = self.z_fwd @ Tx
        if not p.compact:
            full = xp.zeros((2, *g.spectral_shape), dtype=xp.complex128)
            full[:, :self.keep, :self.K] = out
            out = full
        psi = coriolis = None
        if p.rotation or self.forcing is not None:
            psi = -y[0, ...] * self.inv_K2
        zeta_out = out[0, ...]
        if self.forcing is not None:
            zeta_out = zeta_out + self.forcing
        if p.rotation:
            two_omega = 2.0 * p.rotation
            coriolis = (self.ikz_s * (two_omega * (self.ikx_s * psi))
                        - self.ikx_s * (two_omega * (self.ikz_s * psi)))
            zeta_out = zeta_out + coriolis
        if self.forcing is not None or p.rotation:
            out = xp.stack([zeta_out, out[1, ...]])
        if record:
            p.record = False
            inner = lambda a, b: xp.sum(self.weights * xp.real(a * xp.conj(b)))
            zero = xp.zeros((), dtype=xp.float64)
            values = xp.stack([
                p.nu * inner(y[0, ...], y[0, ...]),
                -p.Ri * g.mean(P[6, ...] * P[3, ...]),            # -Ri <ψ ρ_x> = -Ri <w ρ>
                zero if self.forcing is None else -inner(psi, self.forcing),
                zero if coriolis is None else -inner(psi, coriolis),
                p._pe_diffusion(y[1, ...]),
            ])
            keys = ("dissipation", "buoyancy_flux", "forcing_power", "coriolis_power", "pe_diffusion")
            p.budget = dict(zip(keys, _host_floats(values)))
        return out


# ---------------------------------------------------------------------------- initial profiles
def tanh_shear(z, thickness: float, velocity: float = 1.0):
    """``U(z) = velocity * tanh(z / thickness)`` (a shear layer of vorticity thickness 2·thickness)."""
    xp = array_namespace(z)
    return velocity * xp.tanh(z / thickness)


def double_shear(z, thickness: float, separation: float, velocity: float = 1.0):
    """A jet: ``U = velocity (tanh((z + s/2)/δ) - tanh((z - s/2)/δ) - 1)``, +velocity inside, -velocity outside."""
    xp = array_namespace(z)
    a = separation / 2
    return velocity * (xp.tanh((z + a) / thickness) - xp.tanh((z - a) / thickness) - 1.0)


# ---------------------------------------------------------------------------- diagnostics
def kinetic_energy(grid: ChannelGrid, zeta_hat, mean_velocity: float = 0.0) -> float:
    """``KE = ½ <u² + w²> = ½ <|∇ψ|²> + ½ U_m²`` (domain mean), exact from the coefficients."""
    psi = -zeta_hat * grid.inv_K2
    return float(0.5 * grid.inner(psi * grid.K2, psi) + 0.5 * mean_velocity**2)


def enstrophy(grid: ChannelGrid, zeta_hat) -> float:
    """``½ <ζ²>`` (domain mean)."""
    return float(0.5 * grid.inner(zeta_hat, zeta_hat))


def divergence_rms(grid: ChannelGrid, u, w) -> float:
    """rms of ``u_x + w_z`` of the physical velocity (u: cosine in z, w: sine in z), spectrally."""
    xp = grid.xp
    u_x = grid.inverse(grid.ikx * grid.forward(u, EVEN), EVEN)
    w_z = grid.inverse(grid.ikz * grid.forward(w, ODD), EVEN)
    d = u_x + w_z
    return float(xp.sqrt(grid.mean(d * d)))


def background_potential_energy(grid: ChannelGrid, rho, Ri: float) -> float:
    """Background (minimal) potential energy ``Ri <ρ* z*>``: the density sorted stably, heaviest at
    the bottom, each point keeping its area (Winters et al., "Available potential energy and mixing
    in density-stratified fluids")."""
    xp = grid.xp
    area = xp.reshape(xp.broadcast_to(grid.z_weights, grid.shape), (-1,)) / grid.nx
    r = xp.reshape(rho, (-1,))
    # the order among equal densities does not matter (a run of equal values r of total area A starting
    # at height z0 contributes r A (z0 + Lz A / 2) whatever the order of its areas): an unstable sort
    # (4× faster than a stable one) will do
    order = xp.argsort(r, descending=True, stable=False)
    r_sorted = xp.take(r, order)
    a_sorted = xp.take(area, order)
    top = xp.cumulative_sum(a_sorted)
    z_star = -grid.Lz / 2 + grid.Lz * (top - 0.5 * a_sorted)
    return float(Ri * xp.sum(a_sorted * r_sorted * z_star))


def energy_spectrum(grid: ChannelGrid, u, w):
    """1-D kinetic-energy spectrum in x: ``E(k_x)`` with ``sum E = ½ <u² + w²>``; returns ``(k, E)``."""
    xp = grid.xp
    uh = xp.fft.rfft(u, axis=-1, norm="forward")
    wh = xp.fft.rfft(w, axis=-1, norm="forward")
    power = xp.real(uh * xp.conj(uh)) + xp.real(wh * xp.conj(wh))
    wx = _where(xp, (xp.arange(grid.nx // 2 + 1) == 0) | (xp.arange(grid.nx // 2 + 1) == grid.nx // 2), 0.5, 1.0)
    E = xp.sum(power * grid.z_weights, axis=0) * wx
    return grid.kx[0, :], E


# ---------------------------------------------------------------------------- linear stability
def _chebyshev(n: int):
    """Chebyshev points ``x_j = cos(πj/n)`` and the differentiation matrix (Trefethen, "Spectral Methods in MATLAB")."""
    import numpy as np

    j = np.arange(n + 1)
    x = np.cos(np.pi * j / n)
    c = np.where((j == 0) | (j == n), 2.0, 1.0) * (-1.0) ** j
    X = x[:, None] - x[None, :]
    D = np.outer(c, 1 / c) / (X + np.eye(n + 1))
    D -= np.diag(D.sum(axis=1))
    return x, D


def _mapped_chebyshev(n: int, half_height: float, cluster: float | None):
    """Points ``z`` on ``[-H, H]`` and the differentiation matrix ``d/dz``: Chebyshev points, mapped as
    ``z = ℓ sinh(b s)`` (``ℓ = cluster``, ``b = asinh(H/ℓ)``) to cluster them at ``z = 0``, or scaled
    by ``H`` when ``cluster`` is None."""
    import numpy as np

    s, D = _chebyshev(n)
    if cluster is None:
        z, dz_ds = half_height * s, np.full_like(s, half_height)
    else:
        b = math.asinh(half_height / cluster)
        z, dz_ds = cluster * np.sinh(b * s), cluster * b * np.cosh(b * s)
    return z, D / dz_ds[:, None]


#: (cached: a lab asks again at every run start, resume and sweep point with the same numbers)
@functools.lru_cache(maxsize=256)
def rayleigh_growth_rate(alpha: float, profile=None, half_height: float = 10.0, n: int = 240,
                         return_phase_speed: bool = False, cluster: float | None = 0.1):
    r"""Temporal growth rate ``σ = α Im c`` of the most unstable mode of the Rayleigh equation

    .. math:: (U - c)(\phi'' - \alpha^2 \phi) - U'' \phi = 0,\qquad \phi(\pm H) = 0,

    solved as the generalized eigenproblem ``A φ = c B φ`` by Chebyshev collocation on ``n + 1``
    points (host NumPy / SciPy).  ``profile(z) -> (U, U'')`` defaults to ``U = tanh z``
    (Michalke's problem); ``half_height`` is the wall distance ``H``.  Returns 0 for a stable
    wavenumber; with ``return_phase_speed`` also ``Re c``.

    Near the neutral wavenumber the mode has a critical layer of width ~``Im c`` where ``U = Re c``
    (``z = 0`` for a symmetric layer), which plain Chebyshev points (sparsest in the middle) do not
    resolve: at α = 0.9 they gave 0.0245 for 0.0588, and 0 from α ≈ 0.92. With ``cluster`` set the
    points are mapped as ``z = ℓ sinh(b s)``, ``ℓ = cluster``, ``b = asinh(H/ℓ)``, putting them ~``ℓ b π/n``
    apart at ``z = 0``: the defaults agree with ``n = 960`` to 1e-6 up to α = 0.95, 2e-5 at α = 0.98
    and 1 % at α = 0.99. ``cluster=None``: the plain points.
    """
    import numpy as np
    import scipy.linalg

    if profile is None:
        def profile(z):
            t = np.tanh(z)
            return t, -2.0 * t * (1 - t**2)
    z, D = _mapped_chebyshev(n, half_height, cluster)
    D2 = D @ D
    U, U2 = profile(z)
    inner = slice(1, n)
    B = D2[inner, inner] - alpha**2 * np.eye(n - 1)
    A = np.diag(U[inner]) @ B - np.diag(U2[inner])
    c = scipy.linalg.eigvals(A, B)
    umax = float(np.max(np.abs(U)))
    ok = np.isfinite(c) & (np.abs(c.real) <= umax * (1 + 1e-9)) & (np.abs(c.imag) < 10 * umax)
    if not np.any(ok) or np.max(c[ok].imag) <= 1e-8:
        return (0.0, 0.0) if return_phase_speed else 0.0
    best = c[ok][np.argmax(c[ok].imag)]
    sigma = float(alpha * best.imag)
    return (sigma, float(best.real)) if return_phase_speed else sigma


#: (cached: a lab asks again at every run start, resume and sweep point with the same numbers)
@functools.lru_cache(maxsize=256)
def taylor_goldstein_growth_rate(alpha: float, J: float, thickness_ratio: float = 1.0, half_height: float = 10.0,
                                 n: int = 160, cluster: float | None = 0.03) -> float:
    r"""Temporal growth rate ``σ = α Im c`` of the most unstable mode of a stratified tanh shear layer, from
    the Taylor–Goldstein equation

    .. math:: (U - c)^2(\phi'' - \alpha^2\phi) - (U - c)U''\phi + N^2\phi = 0,\qquad \phi(\pm H) = 0,

    with ``U = tanh z`` and ``N² = J sech²(R z)`` (``R = thickness_ratio``, the shear over the density
    thickness): the layer of :class:`KelvinHelmholtzLab` in its own units, ``J`` the gradient Richardson
    number at its centre. Quadratic in ``c``; solved by Chebyshev collocation (points clustered at
    ``z = 0`` as in :func:`rayleigh_growth_rate`) and a companion linearization,
    ``[[0, I], [-K, -C]] (φ, cφ) = c [[I, 0], [0, M]] (φ, cφ)`` with ``M = L``,
    ``C = U'' - 2 U L``, ``K = U² L - U U'' + N²``, ``L = D² - α²``. Unstable modes lie in Howard's
    semicircle ``|c| ≤ max|U|``; by the Miles–Howard theorem there are none for ``J ≥ 1/4`` when
    ``R ≤ √2`` (``J cosh⁴z / cosh²(Rz)``, the gradient Richardson number, is then least at ``z = 0``);
    for ``R = 1`` the neutral curve is ``J = α(1 − α)`` (Hazel). ``J = 0`` is Rayleigh's equation.
    Returns 0 for a stable wavenumber. Near the neutral curve ``Im c`` is small and the critical layer
    thin: the points cluster at ``z = 0`` on a scale of 0.03 (at 0.1 modes with ``Im c ≲ 0.02`` were
    missed, and reported stable).
    (Measured: the lab's own small-amplitude runs grow within 1.3 % of this, at J = 0.1 and 0.23.)
    """
    import numpy as np

    if J == 0:
        return rayleigh_growth_rate(alpha, half_height=half_height, cluster=cluster)  # (at its own converged n)
    # the critical layer (where U = c) is singular here: collocation also yields spurious slowly growing
    # modes, which move when the grid changes. A mode counts only if a finer grid has it too.
    coarse, fine = (_taylor_goldstein_modes(alpha, J, thickness_ratio, half_height, m, cluster) for m in (n, n + n // 2))
    for c in coarse:
        if fine.size and np.min(np.abs(fine - c)) <= 2e-3 * c.imag:
            return float(alpha * c.imag)
    return 0.0


def _taylor_goldstein_modes(alpha, J, thickness_ratio, half_height, n, cluster):
    """Growing eigenvalues ``c`` of :func:`taylor_goldstein_growth_rate`'s problem on ``n + 1`` points,
    fastest first (within Howard's semicircle ``|c| ≤ 1``)."""
    import numpy as np
    import scipy.linalg

    z, D = _mapped_chebyshev(n, half_height, cluster)
    inner = slice(1, n)
    L = (D @ D)[inner, inner] - alpha**2 * np.eye(n - 1)
    t = np.tanh(z[inner])
    U, U2, N2 = t, -2.0 * t * (1 - t**2), J / np.cosh(thickness_ratio * z[inner]) ** 2
    C = np.diag(U2) - 2.0 * U[:, None] * L
    K = (U**2)[:, None] * L - np.diag(U * U2 - N2)
    eye, zero = np.eye(n - 1), np.zeros((n - 1, n - 1))
    c = scipy.linalg.eigvals(np.block([[zero, eye], [-K, -C]]), np.block([[eye, zero], [zero, L]]))
    c = c[np.isfinite(c) & (np.abs(c) <= 1.0 + 1e-9) & (c.imag > 1e-8)]
    return c[np.argsort(-c.imag)]


def rayleigh_growth_curve(alphas, profile=None, half_height: float = 10.0, n: int = 240, cluster: float | None = 0.1):
    """:func:`rayleigh_growth_rate` over an array of wavenumbers (Michalke's curve for the default)."""
    import numpy as np

    return np.array([rayleigh_growth_rate(float(a), profile, half_height, n, cluster=cluster)
                     for a in np.asarray(alphas)])
