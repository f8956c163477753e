"""Sweeps on Dask: a grid of parameter values gathered into one Dataset."""
from __future__ import annotations

import numpy as np
import pytest

from explore.cli import main
from explore.sweep import _run_point, sweep, sweep_points


def test_sweep_on_a_local_cluster_matches_direct_runs(tmp_path):
    grid = {"integrator": ["ifrk4", "split_step"], "dt": [0.02, 0.01]}
    fixed = dict(N=256, amplitude=1.0, position=0.0, velocity=0.0, t_end=0.5, n_snapshots=2)
    ds = sweep("nlse", grid, preset="single_soliton", fixed=fixed, workers=2)
    assert ds.error.dims == ("integrator", "dt") and ds.error.shape == (2, 2)
    direct = _run_point("nlse", "single_soliton", {**fixed, "integrator": "split_step", "dt": 0.01})
    assert float(ds.error.sel(integrator="split_step", dt=0.01)) == direct["error"]
    # halving dt: split-step error falls ~4x (order 2), IF-RK4 much more (order 4)
    ratio = ds.error_max.sel(dt=0.02) / ds.error_max.sel(dt=0.01)
    assert 3 < float(ratio.sel(integrator="split_step")) < 5
    assert float(ratio.sel(integrator="ifrk4")) > 10
    ds.to_netcdf(tmp_path / "s.nc", engine="h5netcdf")


def test_bad_point_fails_before_any_work():
    with pytest.raises(ValueError, match="dt"):
        sweep_points("nlse", {"dt": [0.01, -1.0]}, preset="single_soliton")


def test_cli_sweep_errors(capsys):
    assert main(["sweep", "nlse", "--grid", "dt"]) == 2
    assert "NAME=V1,V2" in capsys.readouterr().err
    assert main(["sweep", "nlse", "--grid", "integrator=euler"]) == 2
    assert "not one of" in capsys.readouterr().err


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
