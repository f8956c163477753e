r"""The focusing cubic nonlinear Schrödinger equation on a periodic interval.

.. math::  i \psi_t + \tfrac12 \psi_{xx} + |\psi|^2 \psi = 0,  \qquad x \in [-L/2, L/2).

In Fourier space (orthonormal transform) this is the semilinear system
:math:`\hat\psi_t = L \hat\psi + N(\hat\psi)` with the diagonal symbol :math:`L = -i k^2/2` and
:math:`N = i\,\mathcal F(|\psi|^2\psi)`, which every integrator of :mod:`explore.numerics.integrators`
accepts. The exact flow of the nonlinear part, :math:`\psi \mapsto \psi e^{i|\psi|^2 t}`, makes
Strang split-step possible.
"""
from __future__ import annotations

import math

from array_api_compat import array_namespace

from explore.numerics.fourier import FourierGrid


class NLSEProblem:
    r"""Semilinear form of the NLSE on a :class:`FourierGrid` (state: Fourier coefficients).

    ``projector`` P (a truncation mask or an exponential filter, or ``None``) enters the nonlinear term
    symmetrically, :math:`N = i P \mathcal F(|\psi_P|^2 \psi_P)` with :math:`\psi_P = \mathcal F^{-1}(P \hat\psi)`:
    for a real P that keeps the mass :math:`\sum |\hat\psi|^2` and the Hamiltonian with
    :math:`|\psi_P|^4` exactly (a filter applied to the product alone did not: mass drifted 6e-6
    whatever the tolerance). A mask leaves a truncated state as it is (``P ψ̂ = ψ̂``); one of
    ``|k| < k_N/2`` keeps every aliased mode of the cubic product out of the state; Orszag's 2/3 mask,
    exact for quadratic products, lets the aliases of the cubic one's modes in ``(k_N, 2 k_N]`` back in.
    A projected nonlinear term has no exact flow, so split-step needs ``projector=None``.
    """

    def __init__(self, grid: FourierGrid, projector=None):
        self.grid = grid
        self.linear = -0.5j * grid.k2
        self.projector = projector

    def nonlinear(self, t, u_hat):
        if self.projector is None:
            psi = self.grid.ifft(u_hat)
            return self.grid.fft(1j * (psi * self.grid.xp.conj(psi)) * psi)
        psi = self.grid.ifft(self.projector * u_hat)
        return self.projector * self.grid.fft(1j * (psi * self.grid.xp.conj(psi)) * psi)

    def nonlinear_flow(self, u_hat, dt):
        """Exact flow of ``psi_t = i |psi|^2 psi`` over ``dt`` (``|psi|`` is constant along it).

        Only without a projector: ``P ∘ flow`` is not the flow of ``u' = P N(u)`` (they differ at
        O(dt²) by ``½ dt² P N'(u)(I − P) N(u)``), which made every split-step method first order and
        its mass drift, with any truncation or filter."""
        if self.projector is not None:
            raise ValueError("split-step: a dealiased (projected) nonlinear term has no exact flow; "
                             "use no projector, or an integrator that calls the nonlinear term")
        xp = self.grid.xp
        psi = self.grid.ifft(u_hat)
        return self.grid.fft(psi * xp.exp(1j * dt * xp.real(psi * xp.conj(psi))))

    def max_linear_rate(self) -> float:
        """``max |L|`` = k_max^2 / 2: the stiffness an explicit method must resolve."""
        return 0.5 * max(self.grid.k_nyquist) ** 2


# ---------------------------------------------------------------------------- invariants
def mass(grid: FourierGrid, psi) -> float:
    r"""Mass :math:`M = \int |\psi|^2 dx`."""
    xp = array_namespace(psi)
    return float(grid.integrate(xp.real(psi * xp.conj(psi))))


def momentum(grid: FourierGrid, psi) -> float:
    r"""Momentum :math:`P = \int \operatorname{Im}(\bar\psi \psi_x) dx = \sum_k k |\hat\psi_k|^2 \Delta x`
    (positive for a soliton moving to the right)."""
    xp = array_namespace(psi)
    u_hat = grid.fft(psi)
    return float(xp.sum(grid.k[0] * xp.real(u_hat * xp.conj(u_hat))) * grid.dx[0])


def hamiltonian(grid: FourierGrid, psi, projector=None) -> float:
    r"""Hamiltonian :math:`H = \int \tfrac12 |\psi_x|^2 - \tfrac12 |\psi_P|^4 dx`, gradient computed
    spectrally; :math:`\psi_P = \mathcal F^{-1}(P\hat\psi)` with the problem's ``projector`` (the
    quantity its symmetric nonlinear term conserves; ``ψ`` itself without one)."""
    xp = array_namespace(psi)
    u_hat = grid.fft(psi)
    kinetic = 0.5 * xp.sum(grid.k2 * xp.real(u_hat * xp.conj(u_hat))) * grid.dx[0]
    if projector is not None:
        psi = grid.ifft(projector * u_hat)
    density = xp.real(psi * xp.conj(psi))
    return float(kinetic - 0.5 * grid.integrate(density**2))


# ---------------------------------------------------------------------------- exact solutions
def _wrap(x, L: float):
    """Map distances to [-L/2, L/2) so solutions travel through the periodic boundary."""
    xp = array_namespace(x)
    return (x + L / 2) - L * xp.floor((x + L / 2) / L) - L / 2


def soliton(x, t: float, amplitude: float, position: float, velocity: float, L: float | None = None):
    r"""Bright soliton :math:`A\,\mathrm{sech}(A(x - x_0 - vt))\, e^{i(vx + (A^2 - v^2)t/2)}`.

    With ``L`` the soliton travels through the periodic boundary: its envelope and its carrier
    ``e^{iv(x − x₀ − vt)}`` are taken at the wrapped distance from the centre, so the phase under the
    soliton stays continuous as it crosses the edge (``e^{ivx}`` itself is periodic only when ``vL/2π``
    is an integer; the jump is left where the envelope is smallest, opposite the centre).
    """
    xp = array_namespace(x)
    xi = x - position - velocity * t
    if L is not None:
        xi = _wrap(xi, L)
    envelope = amplitude / xp.cosh(amplitude * xi)
    phase = velocity * (xi + position + velocity * t) + 0.5 * (amplitude**2 - velocity**2) * t
    return envelope * xp.exp(1j * phase)


def akhmediev_parameter(omega: float) -> float:
    """The breather parameter ``a`` of modulation wavenumber Ω: Ω = 2 sqrt(1 - 2a), 0 < a < 1/2."""
    if not 0 < omega < 2:
        raise ValueError(f"the Akhmediev breather needs 0 < omega < 2 (modulation-unstable band), got {omega}")
    return 0.5 * (1 - (omega / 2) ** 2)


def akhmediev_breather(x, t: float, omega: float):
    r"""Akhmediev breather on the unit background, peaking at ``t = 0`` (Akhmediev, Eleonskii &
    Kulagin, "Generation of periodic trains of picosecond pulses in an optical fiber: exact solutions"):

    .. math:: \psi = \frac{(1-4a)\cosh bt + \sqrt{2a}\cos\Omega x + i b \sinh bt}
                          {\sqrt{2a}\cos\Omega x - \cosh bt}\, e^{it},
              \quad \Omega = 2\sqrt{1-2a},\; b = \sqrt{8a(1-2a)}.
    """
    xp = array_namespace(x)
    a = akhmediev_parameter(omega)
    b = math.sqrt(8 * a * (1 - 2 * a))
    s = math.sqrt(2 * a)
    # numerator and denominator divided by cosh bt: finite for any t (cosh overflows beyond |bt| ~ 710)
    e = math.exp(-abs(b * t))
    sech, tanh = 2 * e / (1 + e * e), math.tanh(b * t)
    cos = xp.cos(omega * x)
    return ((1 - 4 * a) + s * sech * cos + 1j * b * tanh) / (s * sech * cos - 1) * complex(math.cos(t), math.sin(t))


def akhmediev_growth_rate(omega: float) -> float:
    """Growth rate ``b = sqrt(8a(1-2a))`` of the breather (the modulation-instability gain at Ω)."""
    a = akhmediev_parameter(omega)
    return math.sqrt(8 * a * (1 - 2 * a))


def soliton_collision_shift(a1: float, v1: float, a2: float, v2: float) -> tuple[float, float]:
    r"""Position shifts of two solitons after one collision (Zakharov & Shabat, "Exact theory of
    two-dimensional self-focusing and one-dimensional self-modulation of waves in nonlinear media").

    Each soliton is pushed forward along its motion relative to the other by

    .. math:: \Delta_j = \frac{1}{A_j}\ln\frac{(v_1-v_2)^2 + (A_1+A_2)^2}{(v_1-v_2)^2 + (A_1-A_2)^2}.

    Returns the signed shifts ``(δx_1, δx_2)`` in the lab frame.
    """
    dv = v1 - v2
    if dv == 0:
        raise ValueError("solitons with equal velocities never collide")
    ratio = (dv**2 + (a1 + a2) ** 2) / (dv**2 + (a1 - a2) ** 2)
    sign = 1.0 if dv > 0 else -1.0
    return sign * math.log(ratio) / a1, -sign * math.log(ratio) / a2
