"""Butcher tableaux of explicit Runge–Kutta methods, as frozen, self-checking data.

A method is its tableau; :class:`explore.numerics.rk.ExplicitRK` is the one engine that runs
any of them, fixed-step or adaptive (when the tableau carries embedded error weights).

Conventions (those of ``scipy.integrate._ivp``): ``a`` is the ``s x s`` strictly lower
triangular stage matrix, ``b`` the ``s`` weights and ``c`` the ``s`` nodes.  The error weights
``e`` have ``s + 1`` entries: the last one multiplies the derivative at the new point
``f(t + dt, y_new)``, which FSAL methods evaluate anyway and reuse as the first stage of the
next step.  The local error estimate is ``dt * sum_i e_i k_i``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction as F

__all__ = ["ButcherTableau", "RK4", "DOPRI5", "DOP853", "TABLEAUX"]

_TOL = 1e-12


def _floats(seq) -> tuple[float, ...]:
    return tuple(float(x) for x in seq)


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge–Kutta method with an optional embedded error estimator.

    Parameters
    ----------
    name : str
        Short name (``"rk4"``, ``"dopri5"`` ...).
    c, a, b : sequences of float
        Nodes (``s``), strictly lower triangular stage matrix (``s x s``; ragged rows holding
        only the entries below the diagonal are accepted) and weights (``s``).
    order : int
        Classical order of the propagating (``b``) solution.
    e : sequence of float, optional
        Error weights, ``s + 1`` entries; the last multiplies ``f(t + dt, y_new)``.
    error_order : int, optional
        Order ``q`` of the error estimator; the step controller uses the exponent
        ``-1 / (q + 1)``.  Required when ``e`` is given.
    e3 : sequence of float, optional
        Secondary 3rd-order error weights (DOP853's combined estimator), ``s + 1`` entries.
    fsal : bool
        First Same As Last: ``f(t + dt, y_new)`` is evaluated each step and reused as the first
        stage of the next one (so it costs nothing extra).

    Raises
    ------
    ValueError
        If shapes disagree, the method is not explicit, the rows of ``a`` do not sum to ``c``,
        the weights do not sum to 1, the quadrature conditions
        ``sum_i b_i c_i^(k-1) = 1/k`` (k = 1..order) fail, or the error weights are inconsistent.
    """

    name: str
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    e: tuple[float, ...] | None = None
    error_order: int | None = None
    e3: tuple[float, ...] | None = None
    fsal: bool = False
    description: str = field(default="", compare=False)

    def __post_init__(self):
        c, b = _floats(self.c), _floats(self.b)
        s = len(b)
        if s == 0:
            raise ValueError(f"tableau {self.name!r}: needs at least one stage")
        if len(c) != s:
            raise ValueError(f"tableau {self.name!r}: c has {len(c)} entries but b has {s}")
        if len(self.a) != s:
            raise ValueError(f"tableau {self.name!r}: a has {len(self.a)} rows but b has {s} entries")
        rows = []
        for i, row in enumerate(self.a):
            row = _floats(row)
            if len(row) > s:
                raise ValueError(f"tableau {self.name!r}: row {i} of a has {len(row)} entries (> {s})")
            if any(x != 0.0 for x in row[i:]):
                raise ValueError(
                    f"tableau {self.name!r}: a must be strictly lower triangular (explicit method); "
                    f"row {i} has a nonzero entry on or above the diagonal"
                )
            rows.append(row[:i] + (0.0,) * (s - i))
        a = tuple(rows)
        for i in range(s):
            if abs(sum(a[i]) - c[i]) > _TOL:
                raise ValueError(
                    f"tableau {self.name!r}: row {i} of a sums to {sum(a[i])!r}, not c[{i}] = {c[i]!r}"
                )
        if abs(sum(b) - 1.0) > _TOL:
            raise ValueError(f"tableau {self.name!r}: weights b sum to {sum(b)!r}, not 1")
        if not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"tableau {self.name!r}: order must be a positive int, got {self.order!r}")
        for k in range(1, self.order + 1):
            q = sum(bi * ci ** (k - 1) for bi, ci in zip(b, c))
            if abs(q - 1.0 / k) > _TOL:
                raise ValueError(
                    f"tableau {self.name!r}: quadrature condition sum(b c^{k - 1}) = 1/{k} fails "
                    f"({q!r}); the declared order {self.order} is too high"
                )
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        for name in ("e", "e3"):
            w = getattr(self, name)
            if w is None:
                continue
            w = _floats(w)
            if len(w) != s + 1:
                raise ValueError(
                    f"tableau {self.name!r}: {name} needs {s + 1} entries (stages + the derivative "
                    f"at the new point), got {len(w)}"
                )
            if abs(sum(w)) > _TOL:
                raise ValueError(
                    f"tableau {self.name!r}: error weights {name} sum to {sum(w)!r}, not 0 "
                    "(they are the difference of two consistent weight vectors)"
                )
            if w[-1] != 0.0 and not self.fsal:
                raise ValueError(
                    f"tableau {self.name!r}: {name} uses the derivative at the new point; set fsal=True"
                )
            object.__setattr__(self, name, w)
        if self.e3 is not None and self.e is None:
            raise ValueError(f"tableau {self.name!r}: e3 needs the main error weights e")
        if self.e is not None:
            if not isinstance(self.error_order, int) or self.error_order < 1:
                raise ValueError(
                    f"tableau {self.name!r}: error weights e need a positive int error_order, "
                    f"got {self.error_order!r}"
                )
        elif self.error_order is not None:
            raise ValueError(f"tableau {self.name!r}: error_order given without error weights e")
        if self.fsal and c[0] != 0.0:
            raise ValueError(f"tableau {self.name!r}: fsal needs c[0] == 0")

    @property
    def stages(self) -> int:
        """Number of stages ``s`` in ``a`` (the FSAL derivative not counted)."""
        return len(self.b)

    @property
    def adaptive(self) -> bool:
        """Whether the tableau has an embedded error estimator."""
        return self.e is not None

    @property
    def nfe_per_step(self) -> int:
        """Right-hand side evaluations per accepted step (FSAL reuse included)."""
        return self.stages


RK4 = ButcherTableau(
    name="rk4",
    c=(0.0, 0.5, 0.5, 1.0),
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    order=4,
    description="Classic 4-stage Runge–Kutta method of Kutta (1901), order 4.",
)


def _dopri5() -> ButcherTableau:
    c = (0, F(1, 5), F(3, 10), F(4, 5), F(8, 9), 1)
    a = (
        (),
        (F(1, 5),),
        (F(3, 40), F(9, 40)),
        (F(44, 45), F(-56, 15), F(32, 9)),
        (F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)),
        (F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)),
    )
    b = (F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84))
    # 4th-order companion; its last weight multiplies f(t + dt, y_new) (FSAL)
    bhat = (F(5179, 57600), 0, F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100), F(1, 40))
    e = tuple(bi - bh for bi, bh in zip(b + (0,), bhat))
    return ButcherTableau(
        name="dopri5",
        c=_floats(c),
        a=tuple(_floats(r) for r in a),
        b=_floats(b),
        order=5,
        e=_floats(e),
        error_order=4,
        fsal=True,
        description=(
            "Dormand–Prince 5(4), 'A family of embedded Runge-Kutta formulae': 7 stages "
            "(6 plus the FSAL derivative), order 5 with a 4th-order error estimate."
        ),
    )


def _dop853_table():
    """SciPy's module of DOP853's coefficients. Loaded from its file where possible: importing it as
    ``scipy.integrate._ivp.dop853_coefficients`` first runs ``scipy.integrate``'s ``__init__``, ~0.35 s
    (its solvers, quadrature, BVP code) that every run of dop853 / if_dop853 paid for 13 × 12 numbers."""
    import importlib.util
    import pathlib

    spec = importlib.util.find_spec("scipy")
    path = pathlib.Path(spec.origin).parent / "integrate" / "_ivp" / "dop853_coefficients.py" if spec else None
    if path is not None and path.is_file():
        file_spec = importlib.util.spec_from_file_location("_explore_dop853_coefficients", path)
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
        return module
    from scipy.integrate._ivp import dop853_coefficients  # pragma: no cover - another layout

    return dop853_coefficients  # pragma: no cover


def _dop853() -> ButcherTableau:
    # The coefficients are data: read once from SciPy's table (the method is ours).
    d = _dop853_table()

    s = 12
    return ButcherTableau(
        name="dop853",
        c=_floats(d.C[:s]),
        a=tuple(_floats(d.A[i, :i]) for i in range(s)),
        b=_floats(d.B),
        order=8,
        e=_floats(d.E5),
        error_order=7,
        e3=_floats(d.E3),
        fsal=True,
        description=(
            "DOP853 of Hairer, Nørsett & Wanner ('Solving Ordinary Differential Equations I'): "
            "12 stages + FSAL, order 8, combined 5th/3rd-order error estimator."
        ),
    )


DOPRI5 = _dopri5()


def __getattr__(name: str):
    """``DOP853`` and ``TABLEAUX`` (all tableaux by name) are made on first use: DOP853's coefficients
    come from SciPy's table, which a run of a fixed-step method never needs (PEP 562)."""
    if name == "DOP853":
        value = _dop853()
    elif name == "TABLEAUX":
        value = {t.name: t for t in (RK4, DOPRI5, __getattr__("DOP853"))}
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
