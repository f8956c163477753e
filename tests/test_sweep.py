"""Sweeps on Dask: a grid of parameter values gathered into one Dataset."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from explore.cli import main
from explore.sweep import _run_point, sweep, sweep_points


def test_sweep_on_a_local_cluster_matches_direct_runs(tmp_path):
    grid = {"integrator": ["ifrk4", "split_step"], "dt": [0.02, 0.01]}
    fixed = dict(N=256, amplitude=1.0, position=0.0, velocity=0.0, t_end=0.5, n_snapshots=2)
    said = []
    ds = sweep("nlse", grid, preset="single_soliton", fixed=fixed, workers=2, notify=lambda *a: said.append(a))
    assert ds.error.dims == ("integrator", "dt") and ds.error.shape == (2, 2)
    # what a point's run does that its values do not say, as explore run says it: dt = 0.02 does not fill the
    # frame interval 0.25 with whole steps (told before any point runs, and kept in the file)
    note = "Steps of 0.0192308, not dt = 0.02: whole steps fill each frame interval t_end / n_snapshots = 0.25."
    assert said == [(note, ["integrator='ifrk4', dt=0.02", "integrator='split_step', dt=0.02"])]
    assert json.loads(ds.attrs["notices"]) == [{"notice": note, "points": said[0][1]}]
    direct = _run_point("nlse", "single_soliton", {**fixed, "integrator": "split_step", "dt": 0.01})
    assert float(ds.error.sel(integrator="split_step", dt=0.01)) == direct["error"]
    # a point's summaries are its run's final values (checked against the lab itself, not the sweep's code)
    from explore.labs.nlse import NLSELab

    run = NLSELab(preset="single_soliton", **fixed, integrator="split_step", dt=0.01).run()
    assert float(ds.error.sel(integrator="split_step", dt=0.01)) == float(run.error[-1]) > 0
    # halving dt: split-step error falls ~4x (order 2), IF-RK4 much more (order 4)
    ratio = ds.error_max.sel(dt=0.02) / ds.error_max.sel(dt=0.01)
    assert 3 < float(ratio.sel(integrator="split_step")) < 5
    assert float(ratio.sel(integrator="ifrk4")) > 10
    ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")


def test_bad_point_fails_before_any_work():
    with pytest.raises(ValueError, match="dt"):
        sweep_points("nlse", {"dt": [0.01, -1.0]}, preset="single_soliton")


def test_cli_sweep_errors(capsys, tmp_path):
    assert main(["sweep", "nlse", "--grid", "dt"]) == 2
    assert "NAME=V1,V2" in capsys.readouterr().err
    assert main(["sweep", "nlse", "--grid", "integrator=euler"]) == 2
    assert "not one of" in capsys.readouterr().err
    # (each was accepted: the second --grid replaced the first; a point ran twice; --out replaced a point's file)
    assert main(["sweep", "nlse", "--grid", "dt=0.01", "--grid", "dt=0.02,0.03"]) == 2
    assert "--grid dt is given twice" in capsys.readouterr().err
    assert main(["sweep", "nlse", "--grid", "dt=0.01,1e-2"]) == 2
    assert "'dt' lists the value 0.01 twice" in capsys.readouterr().err
    out = str(tmp_path / "o.nc")
    assert main(["sweep", "reaction_diffusion", "--grid", f"snapshot_file={out},{tmp_path / 'o2.nc'}", "--out", out]) == 2
    assert "is also 'snapshot_file' in --grid" in capsys.readouterr().err
    assert main(["list", ""]) == 2  # (it listed every lab)
    assert "unknown lab ''" in capsys.readouterr().err


def test_a_grid_is_lists_of_distinct_values_and_not_too_many_points():
    from explore.sweep import MAX_POINTS, checked_grid

    assert checked_grid({"dt": (v for v in (0.1, 0.2))}) == {"dt": [0.1, 0.2]}  # (a generator ran, then failed)
    for grid, message in [({}, "at least one parameter"), ({"dt": []}, "no values given for 'dt'"),
                          ({"dt": 0.01}, "must be a list"), ({"integrator": "rk4"}, "must be a list"),
                          ({"integrator": ["rk4", "rk4"]}, "twice"),
                          ({"seed": range(MAX_POINTS), "N": [32, 64]}, "more than 10,000")]:
        with pytest.raises(ValueError, match=message):
            checked_grid(grid)
    assert checked_grid({"flag": [True, 1]}) == {"flag": [True, 1]}  # (equal, but not the same value)
    with pytest.raises(ValueError, match="sweep: unknown lab 'nosuch'"):
        sweep_points("nosuch", {"dt": [0.1]})


def test_a_scheduler_address_is_checked_and_one_that_never_answers_gives_up(monkeypatch):
    """A malformed address is refused before connecting; a connection to something that is not a Dask
    scheduler (its dashboard's port, say) hung for good, whatever Client's timeout: the sweep now gives up
    after SCHEDULER_TIMEOUT_S (+ grace), naming the address; a client that fails says why."""
    import threading

    import explore.sweep as sw

    for address in ("tcp://127.0.0.1:abc", "tcp://127.0.0.1:99999", "tcp://", "tcp://host:8786/path", ""):
        with pytest.raises(ValueError, match="not a Dask scheduler's address"):
            sw._check_address(address)
    for address in ("tcp://127.0.0.1:8786", "127.0.0.1:8786", "tls://scheduler.example:8786", "tcp://[::1]:8786"):
        sw._check_address(address)  # (Dask takes an address without its protocol, or its port, too)
    monkeypatch.setattr(sw, "SCHEDULER_TIMEOUT_S", 0.1)
    monkeypatch.setattr(sw, "SCHEDULER_GRACE_S", 0.2)
    never, closed = threading.Event(), threading.Event()

    class Late:  # a client that connects only after the sweep gave up on it
        def __init__(self, address, timeout):
            never.wait(5.0)

        def close(self):
            closed.set()

    def fails(address, timeout):
        raise TypeError("TLS expects a `ssl_context`")

    with pytest.raises(sw.ClusterUnavailable, match=r"tcp://127.0.0.1:8786' \(no answer within 0.3 s"):
        sw._connect(Late, "tcp://127.0.0.1:8786")
    never.set()
    assert closed.wait(5.0), "a client connected after the give-up was left open"
    with pytest.raises(sw.ClusterUnavailable, match="TypeError: TLS expects"):
        sw._connect(fails, "tls://127.0.0.1:1")


def test_cli_sweep_without_dask_names_the_extra(monkeypatch, capsys):
    """Dask is an extra (``.[sweep]``): where it is missing, a sweep says so, exit status 2, no traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # what an absent package looks like to import
    assert main(["sweep", "nlse", "--preset", "single_soliton", "--grid", "dt=0.02,0.01"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and ".[sweep]" in err and "Traceback" not in err


def test_a_cluster_that_does_not_start_is_reported_with_its_likely_cause(monkeypatch, capsys):
    """distributed turns any start failure into a RuntimeError; the CLI prints it (exit 1, no traceback),
    and only a user's own script is told about the ``__main__`` guard (its workers re-import it)."""
    import sys

    import dask.distributed

    from explore.sweep import _start_failure

    def failing(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(dask.distributed, "LocalCluster", failing)
    assert main(["sweep", "nlse", "--preset", "single_soliton", "--grid", "dt=0.02,0.01"]) == 1
    err = capsys.readouterr().err
    assert "did not start (Nanny failed to start.)" in err and "Traceback" not in err
    main_module = sys.modules["__main__"]
    monkeypatch.setattr(main_module, "__spec__", None, raising=False)
    monkeypatch.setattr(main_module, "__file__", "/home/me/my_sweep.py", raising=False)
    assert "__main__" in _start_failure(RuntimeError("x"))
    monkeypatch.setattr(main_module, "__file__", "/venv/bin/explore", raising=False)  # the console script
    assert "__main__" not in _start_failure(RuntimeError("x"))


def test_a_categorical_diagnostic_is_summarized_by_its_final_code_with_its_names():
    """The regime of a reaction–diffusion point: its final code, no meaningless largest code, and the
    gathered Dataset says what the codes mean (CF flags, of the variable's own type)."""
    from explore.sweep import gather_dataset

    out = _run_point("reaction_diffusion", "stable_spiral", dict(N=16, L=10.0, t_end=2.0, frame_dt=1.0))
    assert "regime" in out and "regime_max" not in out and "defects_max" in out
    ds = gather_dataset("reaction_diffusion", {"N": [16]}, "stable_spiral", [out])
    assert ds.regime.attrs["flag_meanings"].split()[0] == "transient"
    assert ds.regime.attrs["flag_values"].dtype == ds.regime.dtype


def test_a_summary_named_like_a_swept_parameter_and_the_fixed_parameters(tmp_path):
    """Sweeping ``steps`` (the diffusion lab's) or KH's ``dt``: the summary of the same name is
    ``NAME_final`` (xarray refused a variable named like a coordinate, and every result was lost); the
    file records every parameter that is not swept."""
    from explore.sweep import gather_dataset

    results = [{"steps": 7.0, "nfe": 14.0, "error": 0.1}, {"steps": 12.0, "nfe": 24.0, "error": 0.01}]
    ds = gather_dataset("diffusion", {"steps": [5, 10]}, "ring8", results, fixed={"n_samples": 200})
    assert list(ds.steps.values) == [5, 10] and list(ds.steps_final.values) == [7.0, 12.0]
    assert ds.attrs["n_samples"] == 200 and "steps" not in ds.attrs and ds.attrs["preset"] == "ring8"
    ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")  # (the attributes are netCDF types)
    # a swept alias (KH's N: nx and nz): the parameters it stands for are variables over the grid
    ds = gather_dataset("kelvin_helmholtz", {"N": [32, 64]}, "basic_shear", [{"nfe": 1.0}, {"nfe": 2.0}])
    assert "nx" not in ds.attrs and "nz" not in ds.attrs and ds.attrs["Re"] == 1000.0
    assert list(ds.nx.values) == [32, 64] and list(ds.nz.values) == [16, 32]
    # ... unless one of them is fixed (the runs used it: nz = 16 with every N)
    ds = gather_dataset("kelvin_helmholtz", {"N": [32, 64]}, "basic_shear", [{"nfe": 1.0}, {"nfe": 2.0}],
                        fixed={"nz": 16})
    assert "nx" not in ds.attrs and ds.attrs["nz"] == 16 and ds.attrs["explore_version"]


def test_a_sweep_file_says_how_to_run_each_point_again(tmp_path):
    """Audit findings: a fixed alias that derives a parameter from a swept one (KH's N = 32 with Lz
    swept: nz = 8 at Lz = 0.5, 16 at Lz = 1) was recorded once, at Lz's default, and a fixed narrower
    alias (ny) not at all; a grid value None was written as NaN, which no run takes back. Each point's
    lab, rebuilt from the file (attributes, its coordinates, the per-point variables), is the lab it ran."""
    from explore.labs.kelvin_helmholtz import KelvinHelmholtzLab as KH
    from explore.sweep import gather_dataset, sweep_points

    cases = [({"Lz": [0.5, 1.0]}, {"N": 32}), ({"N": [32, 64]}, {"ny": 8}),
             ({"density_thickness": [None, 0.1]}, {"nx": 32, "nz": 16})]
    for grid, fixed in cases:
        points = sweep_points("kelvin_helmholtz", grid, "basic_shear", fixed)
        ds = gather_dataset("kelvin_helmholtz", grid, "basic_shear", [{"nfe": 1.0}] * len(points), fixed)
        ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")
        with xr.open_dataset(tmp_path / "s.nc", engine="h5netcdf") as back:
            back.load()
        for i, values in enumerate(points):
            at = back.isel({name: i for name in grid})
            attrs = {**back.attrs, **{k: at[k].values.item() for k in grid},
                     **{k: at[k].values.item() for k in at.data_vars if k in KH.parameter_names()}}
            assert KH.from_attrs(attrs).values() == KH(preset="basic_shear", **values).values(), (grid, values)


def test_a_diverging_point_is_named_and_the_others_are_kept(capsys):
    """A point whose run diverges has NaN values and is listed with its message; the sweep keeps the
    others (a divergence lost the whole sweep, with a message that named no point)."""
    import json

    from explore.sweep import FAILED, _run_point, gather_dataset

    fixed = {"t_end": 1.0, "N": 512, "integrator": "rk4"}
    good = _run_point("nlse", None, {**fixed, "dt": 0.001}, ("dt",))
    bad = _run_point("nlse", None, {**fixed, "dt": 0.3}, ("dt",))
    assert FAILED in bad and "non-finite" in bad[FAILED] and FAILED not in good
    ds = gather_dataset("nlse", {"dt": [0.001, 0.3]}, None, [good, bad], fixed)
    assert np.isfinite(float(ds.error.sel(dt=0.001))) and np.isnan(float(ds.error.sel(dt=0.3)))
    failed = json.loads(ds.attrs["failed_points"])
    assert failed == [{"point": "dt=0.3", "error": bad[FAILED]}]
    with pytest.raises(ValueError, match="workers must be a whole number of at least 1"):
        sweep("nlse", {"dt": [0.01]}, workers=0)
    with pytest.raises(ValueError, match="workers must be"):
        sweep("nlse", {"dt": [0.01]}, workers="1")


def test_a_point_its_run_refuses_is_failed_and_the_others_are_kept(tmp_path):
    """A point whose run refuses it only when it starts (a checkpoint of another grid, a backend the worker
    lacks) is a failed point: it lost the whole sweep, the good points' results with it."""
    from explore.sweep import FAILED

    ck = str(tmp_path / "ck.npz")
    base = {"t_end": 0.2, "frame_dt": 0.1, "L": 10.0}
    _run_point("reaction_diffusion", None, {**base, "N": 16, "checkpoint_file": ck})
    bad = _run_point("reaction_diffusion", None, {**base, "N": 32, "t_end": 0.4, "resume_from": ck}, ("resume_from",))
    assert "was written with different N (16 vs 32)" in bad[FAILED]


def test_points_may_not_share_an_output_file(tmp_path):
    """Every point writing one snapshot (or checkpoint) file would overwrite the others' silently."""
    from explore.sweep import sweep_points

    shared = str(tmp_path / "s.nc")
    with pytest.raises(ValueError, match="more than one point would write 'snapshot_file'"):
        sweep_points("reaction_diffusion", {"beta": [1.0, 0.5]}, fixed={"N": 16, "snapshot_file": shared})
    points = sweep_points("reaction_diffusion", {"snapshot_file": [str(tmp_path / "a.nc"), str(tmp_path / "b.nc")]},
                          fixed={"N": 16})
    assert len(points) == 2


def test_ctrl_c_during_a_sweep_is_one_line(tmp_path):
    """Ctrl-C reaches the whole process group: the workers now ignore it (they printed their own
    tracebacks, and the client its cancelled tasks), the sweep stops with one line and status 130."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    cmd = [sys.executable, "-m", "explore.cli", "sweep", "nlse", "--workers", "2", "--set", "t_end=400",
           "--set", "integrator=rk4", "--grid", "dt=0.001,0.0005"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": root})

    def group_size() -> int:
        count = 0
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    count += os.getpgid(int(pid)) == proc.pid
                except OSError:
                    pass
        return count

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and group_size() < 3 and proc.poll() is None:  # (the workers are up)
            time.sleep(0.2)
        time.sleep(3.0)  # (their tasks running)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and err.strip() == "explore: interrupted", err


def test_the_cli_says_a_sweeps_notices_naming_a_few_points(capsys):
    from explore.cli import _print_sweep_notice

    _print_sweep_notice(4, "Steps of 0.025, not dt = 0.03.", ["dt=0.03"])
    _print_sweep_notice(2, "A layer thinner than the grid.", ["N=16", "N=32"])
    _print_sweep_notice(9, "Slow.", [f"seed={i}" for i in range(5)])
    assert capsys.readouterr().err.splitlines() == [
        "note (dt=0.03): Steps of 0.025, not dt = 0.03.",
        "note (every point): A layer thinner than the grid.",
        "note (seed=0; seed=1; seed=2 and 2 more): Slow."]
