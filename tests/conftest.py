"""Fixtures shared by several test modules."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def order_problem():
    """bimodal_1d on VP-linear, 64 starting points, and their PF-ODE endpoints (rtol 1e-13): the
    smooth problem on which the samplers' empirical orders are fitted."""
    from explore.numerics.diffusion.reference import pf_ode
    from explore.numerics.diffusion.schedules import VPLinear, levels
    from explore.numerics.diffusion.step_schedules import step_times
    from explore.numerics.diffusion.targets import make_target

    target = make_target("bimodal_1d")
    sch = VPLinear()
    x = np.random.default_rng(0).standard_normal((64, 1))
    lv = levels(sch, step_times("logsnr", sch, 1))
    ref, _ = pf_ode(target, x, lv.at(0), [lv.at(1)], rtol=1e-13, atol=1e-13)
    return target, sch, x, ref[0]
