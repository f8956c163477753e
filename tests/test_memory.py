"""A run that cannot fit in memory is refused before it starts, by an estimate that tracks what runs take."""
import itertools
import json
import tracemalloc

import numpy as np
import pytest

from explore.cli import main
from explore.core import RunTooLarge
from explore.core.memory import available_bytes, format_bytes
from explore.labs.kelvin_helmholtz import KelvinHelmholtzLab
from explore.labs.reaction_diffusion import ReactionDiffusionLab
from explore.numerics import exponential
from explore.numerics.exponential import DtCache
from explore.sweep import FAILED, _run_point, gather_dataset, sweep_points


def _peak_bytes(lab, frames: int = 3) -> int:
    """Peak of the memory NumPy (and Python) allocate over the first ``frames`` frames of a run."""
    tracemalloc.start()
    try:
        stream = lab.frames()
        for _ in itertools.islice(stream, frames):
            pass
        stream.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("lab", [
    ReactionDiffusionLab(preset="stable_spiral", N=256, integrator="etdrk4"),
    ReactionDiffusionLab(preset="stable_spiral", N=256, integrator="ifrk4"),
    ReactionDiffusionLab(preset="stable_spiral", N=256, integrator="dop853", rtol=1e-5),
    ReactionDiffusionLab(preset="stable_spiral", N=256, integrator="if_dop853", rtol=1e-5),
    KelvinHelmholtzLab(preset="basic_shear", nx=512, nz=256, integrator="etdrk4"),
    KelvinHelmholtzLab(preset="basic_shear", nx=512, nz=256, integrator="rk4"),
    KelvinHelmholtzLab(preset="basic_shear", nx=512, nz=256, integrator="if_dop853", rtol=1e-5),
    KelvinHelmholtzLab(preset="double_shear", boundary="periodic", nx=512, nz=256, integrator="etdrk4"),
], ids=lambda lab: f"{lab.lab_name}-{lab.integrator}-{getattr(lab, 'boundary', '')}")
def test_the_estimate_is_what_a_run_takes(lab, monkeypatch):
    """Within a factor 0.7–1.5 of the measured peak (if_dop853 with a cache held to one step size, which
    a short run fills: the estimate counts the whole cache; and summing term by term, the larger of its
    two ways, which a run takes past ``INTERACTION_REACH``: the interaction picture takes less)."""
    if lab.integrator == "if_dop853":
        monkeypatch.setattr(exponential, "LAWSON_CACHE_BYTES", 1)
        if lab.lab_name == "reaction_diffusion":
            lab.set(t_end=0.3, snapshot_dt=0.1, frame_dt=0.1, initial_layer=0.0)
        else:
            lab.set(t_end=0.02, n_snapshots=2)
        assert _peak_bytes(lab) <= lab.memory_estimate()  # (the interaction picture: NumPy's default)
        monkeypatch.setattr(exponential, "INTERACTION_REACH", -1.0)
    if lab.lab_name == "reaction_diffusion":
        lab.set(t_end=0.3, snapshot_dt=0.1, frame_dt=0.1, initial_layer=0.0)
    else:
        lab.set(t_end=0.02, n_snapshots=2)
    measured = _peak_bytes(lab)
    estimate = lab.memory_estimate()
    assert 0.7 * measured <= estimate <= 1.5 * measured, (format_bytes(estimate), format_bytes(measured))


def test_a_run_too_large_is_refused_naming_what_to_change(monkeypatch):
    lab = ReactionDiffusionLab(preset="stable_spiral", N=4096, integrator="if_dop853")
    need = lab.memory_estimate()
    assert need > 30e9  # 86 arrays of 269 MB for the one step size the cache keeps, ~53 more for the rest
    monkeypatch.setenv("EXPLORE_MEMORY_BYTES", str(need - 1))
    with pytest.raises(RunTooLarge, match=r"needs about \d+ GB of memory, more than the \d+ GB free\. Use a smaller 'N'"):
        lab.validate()
    monkeypatch.setenv("EXPLORE_MEMORY_BYTES", str(need))
    lab.validate()  # (it fits: nothing allocated)
    monkeypatch.setenv("EXPLORE_MEMORY_BYTES", "1e6")
    kh = KelvinHelmholtzLab(preset="basic_shear")
    with pytest.raises(RunTooLarge, match=r"Use fewer points \('nx', 'nz'\)"):
        kh.validate()
    kh.validate(memory=False)


def test_the_cli_refuses_it_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("EXPLORE_MEMORY_BYTES", "1e6")
    assert main(["run", "reaction_diffusion", "--set", "N=64", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs about" in err[0] and "1 MB free" in err[0]


def test_a_sweep_keeps_the_points_that_fit(monkeypatch):
    """Planned without the check (where a point runs decides whether it fits); a point too large for its
    worker fails alone, by name, and the others are kept."""
    fixed = dict(t_end=1.0, frame_dt=1.0, L=10.0)
    small = ReactionDiffusionLab(preset="stable_spiral", N=16, **fixed).memory_estimate()
    monkeypatch.setenv("EXPLORE_MEMORY_BYTES", str(2 * small))
    assert len(sweep_points("reaction_diffusion", {"N": [16, 256]}, "stable_spiral", fixed)) == 2
    good = _run_point("reaction_diffusion", "stable_spiral", {**fixed, "N": 16}, ("N",))
    bad = _run_point("reaction_diffusion", "stable_spiral", {**fixed, "N": 256}, ("N",))
    assert FAILED not in good and "needs about" in bad[FAILED]
    ds = gather_dataset("reaction_diffusion", {"N": [16, 256]}, "stable_spiral", [good, bad], fixed)
    assert json.loads(ds.attrs["failed_points"]) == [{"point": "N=256", "error": bad[FAILED]}]
    assert float(ds.defects.sel(N=16)) >= 0 and ds.defects.sel(N=256).isnull()


def test_the_cache_drops_its_oldest_step_before_it_builds_a_new_one():
    """So a cache of one step size never holds two steps' operators at once (at 4096² for if_dop853:
    23 GB less at the peak)."""
    held = []

    def build(dt):
        held.append(len(cache))
        return dt

    cache = DtCache(build, size=2)
    for dt in (0.1, 0.2, 0.1, 0.3, 0.4):
        cache(dt)
    assert held == [0, 1, 1, 1] and len(cache) == 2  # (0.1 was reused; 0.3 replaced 0.2, 0.4 replaced 0.1)


def test_available_memory_is_the_hosts_less_what_a_container_limit_leaves(tmp_path, monkeypatch):
    from explore.core import memory

    monkeypatch.delenv("EXPLORE_MEMORY_BYTES", raising=False)
    host = available_bytes("numpy")
    assert 0 < host <= memory.os.sysconf("SC_PAGE_SIZE") * memory.os.sysconf("SC_PHYS_PAGES")
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    limit.write_text(f"{host // 2 + 10**6}\n")
    usage.write_text(f"{10**6}\n")
    monkeypatch.setattr(memory, "_CGROUP_FILES", ((str(limit), str(usage)),))
    assert available_bytes("numpy") == host // 2  # (a cgroup v2 limit and use: what is left of it)
    limit.write_text("max\n")  # no limit
    assert abs(available_bytes("numpy") - host) < 0.1 * host
    monkeypatch.setenv("EXPLORE_MEMORY_BYTES", "3e9")
    assert available_bytes("numpy") == 3_000_000_000 and available_bytes("cupy") == 3_000_000_000
    assert format_bytes(7.2e9) == "7.2 GB" and format_bytes(23.6e9) == "24 GB" and format_bytes(950e6) == "950 MB"


def _collect_peak(lab) -> int:
    """Peak of what NumPy and Python allocate over a whole run (frames and result, as ``explore run``)."""
    tracemalloc.start()
    try:
        lab.collect()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("values", [
    dict(preset="image16", n_samples=20000),
    dict(preset="image16", n_samples=20000, sampler="unipc", order=3),
    dict(preset="ring8", n_samples=200000, sampler="dpmpp_3m"),
    dict(preset="guided_ring", n_samples=100000),
    dict(preset="bimodal_1d", n_samples=200000),
    dict(preset="image16", n_samples=2000, n_reference=2000, steps=20, study=False, compare="dpmpp_3m,ddim"),
], ids=lambda v: "-".join(str(x) for x in v.values()))
def test_the_diffusion_estimate_is_what_a_run_takes(values):
    """Within 0.7–1.5 of the measured peak: the samples' arrays per sampler, the exact model's chunked
    temporaries, the reference trajectory and the frames."""
    from explore.labs.diffusion import DiffusionLab

    lab = DiffusionLab(**values)
    measured, estimate = _collect_peak(lab), lab.memory_estimate()
    assert 0.7 * measured <= estimate <= 1.5 * measured, (format_bytes(estimate), format_bytes(measured))


def test_a_diffusion_run_holds_its_current_samples_not_every_steps():
    """A run's frames are made as the sampler goes and hold copies of what they show: ten times the steps
    cost no more arrays of the samples' size (every step's samples were held until the end: 0.43 of
    0.86 GB for image16 at 20 000 samples), and the exact model's temporaries are chunked (CHUNK_ELEMENTS:
    its ~8 (K, n, d) arrays at once were 16 GB for image16 at 10⁶ samples)."""
    from explore.labs.diffusion import DiffusionLab
    from explore.numerics.diffusion.targets import CHUNK_ELEMENTS, make_target

    base = dict(preset="image16", n_samples=6000, n_reference=50, study=False)
    state = 8 * 6000 * 256
    few, many = _collect_peak(DiffusionLab(**base, steps=3)), _collect_peak(DiffusionLab(**base, steps=20))
    assert many - few < 2 * state, (format_bytes(few), format_bytes(many))
    target = make_target("ring8")
    x = np.random.default_rng(0).standard_normal((3 * CHUNK_ELEMENTS // 16 + 5, 2))
    whole = target._predict(x, 0.6, 0.8)
    tracemalloc.start()
    chunked = target.predict(x, 0.6, 0.8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    for a, b in zip(chunked, whole):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    assert peak < 2 * x.nbytes + 12 * 8 * CHUNK_ELEMENTS, format_bytes(peak)
    np.testing.assert_allclose(target.score(x, 0.6, 0.8), target._score(x, 0.6, 0.8), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(target.log_prob(x, 0.6, 0.8), target._log_prob(x, 0.6, 0.8), rtol=1e-13)


@pytest.mark.parametrize("integrator", ["ifrk4", "etdrk4", "split_step"])
def test_the_nlse_estimate_is_what_a_run_takes_whatever_its_frames(integrator):
    """Within 0.7–1.5 of the measured peak (1.8 for the splitting steppers, which evaluate no nonlinear
    stages), and frames hold what they show, not the arrays it was cut from (a strided view of each
    frame's spectrum kept 2 MB a frame alive at N = 2¹⁸)."""
    from explore.labs.nlse import NLSELab

    lab = NLSELab(N=2**16, t_end=0.05, n_snapshots=5, integrator=integrator, dt=0.01)
    measured, estimate = _collect_peak(lab), lab.memory_estimate()
    most = 1.8 if integrator.startswith("split") else 1.5
    assert 0.7 * measured <= estimate <= most * measured, (format_bytes(estimate), format_bytes(measured))
    more = _collect_peak(NLSELab(N=2**16, t_end=0.5, n_snapshots=50, integrator=integrator, dt=0.01))
    assert more - measured < 5 * 16 * 2**16, (format_bytes(measured), format_bytes(more))


def test_a_malformed_memory_limit_is_refused_naming_the_variable(monkeypatch):
    from explore.labs.nlse import NLSELab

    for text, value in (("3e9", 3 * 10**9), ("4GB", 4 * 10**9), ("512 MiB", 2**29), ("2gib", 2 * 2**30)):
        monkeypatch.setenv("EXPLORE_MEMORY_BYTES", text)
        assert available_bytes("numpy") == value, text
    for text in ("abc", "1GBB", "-5", "nan"):
        monkeypatch.setenv("EXPLORE_MEMORY_BYTES", text)
        with pytest.raises(ValueError, match=f"EXPLORE_MEMORY_BYTES = '{text}' is not an amount of memory"):
            NLSELab().validate()
    monkeypatch.setenv("EXPLORE_MEMORY_BYTES", "1MB")
    with pytest.raises(RunTooLarge, match=r"nlse: this run needs about .* more than the 1 MB free\. Use a smaller 'N'"):
        NLSELab(N=2**16).validate()
