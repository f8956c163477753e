"""A parameter a lab calls inactive (greyed out in the dashboard) really changes nothing: the same run
with another value of it gives the same frames, bit for bit."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import param
import pytest

from explore.core import lab_classes

#: small runs of each lab, across the choices that decide what is inactive
CASES = {
    "reaction_diffusion": [
        dict(N=16, L=10.0, t_end=0.2, snapshot_dt=0.1, frame_dt=0.1, integrator=integrator, model=model,
             initial=initial, noise=noise)
        for integrator in ("etdrk4", "dopri5") for model, initial, noise in (("lambda_omega", "spiral", 0.01),
                                                                              ("gray_scott", "pearson", 0.0))
    ],
    "kelvin_helmholtz": [
        dict(nx=16, nz=16, t_end=0.02, n_snapshots=2, integrator=integrator, profile=profile,
             boundary=boundary, Re=100.0, noise=noise)
        for integrator in ("etdrk4", "dopri5") for profile, boundary, noise in (("single", "walls", 0.01),
                                                                                 ("double", "periodic", 0.0))
    ],
    "diffusion": [
        dict(n_samples=40, n_reference=20, steps=3, study=False, sampler=sampler, timesteps=timesteps, target=target)
        for sampler, timesteps, target in (("dpmpp_2m", "uniform_t", "ring8"),
                                           ("unipc", "karras", "ring_conditional"),
                                           ("ddim", "beta", "bimodal_1d"))
    ],
    "nlse": [dict(N=64, t_end=0.05, n_snapshots=1, integrator=integrator, initial=initial, dt=0.01)
             for integrator in ("etdrk4", "dopri5")
             for initial in ("soliton", "two_soliton", "modulated_soliton", "gaussian")],
}


def _other_value(lab, name):
    """A different valid value of parameter ``name``."""
    p = lab.param[name]
    value = getattr(lab, name)
    if isinstance(p, param.Selector):
        return next(o for o in p.objects if o != value)
    if isinstance(p, param.Integer):
        return value + 1
    if isinstance(p, param.Boolean):
        return not value
    if value is None:  # (KH's density_thickness: None follows another parameter)
        return (p.softbounds or (None, None))[0] or 0.1
    if isinstance(p, param.Number):
        low, high = p.bounds or (None, None)
        for candidate in (value * 1.5 + 0.01, value * 0.5, value * 0.9):
            if (low is None or candidate > low) and (high is None or candidate < high):
                return candidate
    raise AssertionError(f"no other value for {name}")


def _signature(frames) -> list:
    out = []
    for frame in frames:
        out.append(frame.time)
        out.extend(sorted((k, v) for k, v in {**frame.convergence, **frame.diagnostics}.items()
                          if not (isinstance(v, float) and math.isnan(v))))
        for key, sample in sorted(frame.samples.items()):
            for f in dataclasses.fields(sample):
                v = getattr(sample, f.name)
                out.append((key, f.name, np.asarray(v).tobytes() if isinstance(v, np.ndarray) else v))
    return out


@pytest.mark.parametrize("name, values", [(n, v) for n, cases in CASES.items() for v in cases],
                         ids=lambda x: x if isinstance(x, str) else "-".join(str(v) for v in x.values()
                                                                               if isinstance(v, str)))
def test_an_inactive_parameter_changes_nothing(name, values):
    lab = lab_classes()[name](**values)
    inactive = sorted(lab.inactive_parameters())
    assert inactive, "each case has something the run ignores"
    reference = _signature(lab.frames())
    compared = 0
    for p in inactive:
        other = lab_classes()[name](**values)
        setattr(other, p, _other_value(other, p))
        try:  # (a value the lab refuses, e.g. stratification 'jet' without the double profile, stays usable
            other.validate(memory=False)  # in the dashboard: the refusal names it)
        except ValueError as exc:
            assert f"'{p}'" in str(exc), (p, exc)
            continue
        assert p in other.inactive_parameters(), p
        assert _signature(other.frames()) == reference, p
        compared += 1
    assert compared >= 1


def test_what_is_inactive_follows_the_choices():
    rd = lab_classes()["reaction_diffusion"]()
    assert {"feed", "kill"} <= rd.inactive_parameters() and "beta" not in rd.inactive_parameters()
    rd.model = "gray_scott"
    assert "beta" in rd.inactive_parameters() and not {"feed", "kill"} & rd.inactive_parameters()
    rd.integrator = "if_dop853"
    assert {"dt", "initial_layer"} <= rd.inactive_parameters() and "rtol" not in rd.inactive_parameters()
    kh = lab_classes()["kelvin_helmholtz"]()
    kh.apply_preset("forced")
    assert "forcing_modes" not in kh.inactive_parameters()
    kh.forcing_amplitude = 0.0
    assert "forcing_modes" in kh.inactive_parameters()
