"""Butcher tableaux: self-validation and the classical order of each method."""
import math

import numpy as np
import pytest

from explore.numerics.rk import ExplicitRK
from explore.numerics.tableaux import DOP853, DOPRI5, RK4, TABLEAUX, ButcherTableau


@pytest.mark.parametrize("name", list(TABLEAUX))
def test_tableau_is_consistent(name):
    tab = TABLEAUX[name]
    s = tab.stages
    assert len(tab.c) == len(tab.a) == s
    for i in range(s):
        assert all(x == 0.0 for x in tab.a[i][i:])
        assert math.isclose(sum(tab.a[i]), tab.c[i], abs_tol=1e-12)
    assert math.isclose(sum(tab.b), 1.0, abs_tol=1e-12)
    for k in range(1, tab.order + 1):
        assert math.isclose(sum(b * c ** (k - 1) for b, c in zip(tab.b, tab.c)), 1 / k, abs_tol=1e-12)
    if tab.e is not None:
        assert len(tab.e) == s + 1 and tab.error_order < tab.order


def test_known_shapes():
    assert (RK4.stages, RK4.order, RK4.adaptive) == (4, 4, False)
    assert (DOPRI5.stages, DOPRI5.order, DOPRI5.error_order, DOPRI5.fsal) == (6, 5, 4, True)
    assert (DOP853.stages, DOP853.order, DOP853.error_order, DOP853.fsal) == (12, 8, 7, True)
    assert DOP853.e3 is not None and len(DOP853.e3) == 13


def _kw(**over):
    kw = dict(name="x", c=(0.0, 0.5, 0.5, 1.0), a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
              b=(1 / 6, 1 / 3, 1 / 3, 1 / 6), order=4)
    kw.update(over)
    return kw


@pytest.mark.parametrize(
    "over, match",
    [
        (dict(c=(0.0, 0.5, 0.6, 1.0)), "sums to"),
        (dict(b=(1 / 6, 1 / 3, 1 / 3, 1 / 5)), "sum to"),
        (dict(order=5), "quadrature"),
        (dict(a=((0.0, 0.1), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))), "explicit"),
        (dict(c=(0.0, 0.5, 0.5)), "c has"),
        (dict(e=(0.1, -0.1, 0.0)), "entries"),
        (dict(e=(0.1, -0.1, 0.0, 0.0, 0.0)), "error_order"),
        (dict(e=(0.1, -0.1, 0.0, 0.0, 0.1), error_order=3), "sum to"),
    ],
)
def test_broken_tableau_raises(over, match):
    with pytest.raises(ValueError, match=match):
        ButcherTableau(**_kw(**over))
    ButcherTableau(**_kw())  # the unbroken one is fine


# y' = lam(t) y, exact y0 exp(i sin 2t - cos(t)/2 + 1/2): non-autonomous, so the nodes c matter
_Y0 = np.array([1.0, 0.5 + 0.2j])


def _lam(t):
    return 2j * np.cos(2 * t) + 0.5 * np.sin(t)


def _exact(t):
    return _Y0 * np.exp(1j * np.sin(2 * t) - 0.5 * np.cos(t) + 0.5)


# step counts over [0, 3] in the asymptotic regime of each order (errors stay >> round-off)
_STEPS = {4: [20, 40, 80, 160], 5: [160, 240, 320, 480], 8: [10, 14, 20, 28]}


@pytest.mark.parametrize("name", list(TABLEAUX))
def test_fixed_step_order_of_each_tableau(name):
    tab = TABLEAUX[name]
    T = 3.0
    dts = T / np.array(_STEPS[tab.order], dtype=float)
    errs = []
    for dt in dts:
        stepper = ExplicitRK(tab, lambda t, y: _lam(t) * y, dt=float(dt))
        state = stepper.init(0.0, _Y0)
        err = 0.0
        while state.t < T:
            state = stepper.step(state, T)
            err = max(err, float(np.max(np.abs(state.y - _exact(state.t)))))
        errs.append(err)
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - tab.order) <= 0.3, (name, slope, errs)
