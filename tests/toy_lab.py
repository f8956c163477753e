"""A tiny registered lab for the UI tests: forward Euler on ``u' = -a u`` (exact ``u0 exp(-a t)``).

Importing this module registers ``toy_decay``; only tests import it.
"""
from __future__ import annotations

import math
import time

import numpy as np
import param

from explore.core import Curve, Field, Frame, Lab, register_lab, to_host


@register_lab
class ToyDecay(Lab):
    lab_name = "toy_decay"
    title = "Toy decay"
    description = "Forward Euler on u' = -a u for a vector u. A lab for testing the dashboard."
    presets = {"default": {}, "fast decay": {"a": 5.0}, "blowup": {"blowup": True}}
    default_preset = "default"
    divergence_hint = "Switch off 'blowup'."
    groups = {"Problem": ["a", "n"], "Method": ["dt", "t_end", "n_frames"]}

    a = param.Number(default=1.0, bounds=(0.0, 100.0), softbounds=(0.0, 5.0), doc="Decay rate a in u' = -a u.")
    n = param.Integer(default=32, bounds=(4, 512), doc="Number of grid points.")
    dt = param.Number(default=0.01, bounds=(1e-4, 1.0), doc="Time step of forward Euler.")
    t_end = param.Number(default=1.0, bounds=(1e-3, 100.0), doc="Final time.")
    n_frames = param.Integer(default=20, bounds=(1, 1000), doc="Frames reported over the run.")
    delay = param.Number(default=0.0, bounds=(0.0, 1.0), doc="Seconds slept per frame (to watch it stream).")
    blowup = param.Boolean(default=False, doc="Multiply the state by 1e100 each step, so the run diverges.")

    def check(self) -> None:
        if self.a * self.dt > 2.0:
            raise ValueError(f"{self.lab_name}: parameter 'dt' = {self.dt} is unstable for a = {self.a} "
                             f"(forward Euler needs a*dt <= 2)")

    def _frames(self, xp):
        x = np.linspace(0.0, 2 * np.pi, self.n, endpoint=False)
        y = np.linspace(0.0, 1.0, 16)
        rng = np.random.default_rng(self.seed)
        u0_host = np.sin(x) + 0.5 * np.cos(3 * x) + 0.1 * rng.standard_normal(self.n)
        u0 = xp.asarray(u0_host)
        u = u0
        steps = max(1, round(self.t_end / self.dt))
        every = max(1, steps // self.n_frames)
        k = np.fft.rfftfreq(self.n, d=1.0 / self.n)
        for i in range(1, steps + 1):
            with np.errstate(all="ignore"):  # a blown-up state is reported by Lab.frames, not warned about
                u = u - self.dt * self.a * u
                if self.blowup:
                    u = u * 1e100
            if i % every and i != steps:
                continue
            t = i * self.dt
            uh = to_host(u)
            with np.errstate(all="ignore"):
                err = float(np.max(np.abs(uh - u0_host * math.exp(-self.a * t)))) + 1e-300
                power = np.abs(np.fft.rfft(uh)) ** 2 + 1e-300
                mean = float(np.mean(uh))
            if self.delay:
                time.sleep(self.delay)
            yield Frame(
                step=i, time=t, progress=i / steps,
                convergence={"error": err, "norm": float(np.max(np.abs(uh)))},
                diagnostics={"mean": mean},
                spectrum=Curve(k, power, "k", "power", logy=True),
                samples={"u": Curve(x, uh, "x", "u"),
                         "field": Field(x, y, np.outer(y, uh), "x", "y", "u")},
                nfe=i, steps=i,
            )
