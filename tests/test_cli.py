"""The command line end to end: list, run (netCDF out), and clear errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from explore.cli import main


def _this_checkout() -> dict:
    """The environment of a child Python that imports this checkout's ``explore`` (not another install)."""
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def test_list_shows_labs_presets_and_parameter_docs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "nlse" in out and "two_soliton" in out
    assert main(["list", "nlse"]) == 0
    out = capsys.readouterr().out
    assert "integrator" in out and "etdrk4" in out and "Domain length" in out


def test_run_writes_netcdf(tmp_path, capsys):
    out = tmp_path / "run.nc"
    code = main(["run", "nlse", "--preset", "two_soliton", "--set", "N=256", "--set", "integrator=etdrk4",
                 "--set", "dt=0.01", "--set", "t_end=1", "--set", "n_snapshots=4", "--out", str(out)])
    assert code == 0
    ds = xr.load_dataset(out, engine="h5netcdf")
    assert ds.attrs["integrator"] == "etdrk4" and ds.attrs["N"] == 256
    assert set(ds.data_vars) >= {"mass_drift", "momentum_drift", "energy_drift", "spectrum", "abs_psi"}
    assert ds.time.values[-1] == pytest.approx(1.0)
    assert "mass_drift" in capsys.readouterr().out


def test_console_script_progress_and_exit_code(tmp_path):
    exe = [sys.executable, "-m", "explore.cli"]
    r = subprocess.run(exe + ["run", "nlse", "--set", "t_end=0.2", "--set", "N=128", "--set", "n_snapshots=3",
                              "--out", str(tmp_path / "a.nc")], capture_output=True, text=True, timeout=120,
                       env=_this_checkout())
    assert r.returncode == 0, r.stderr
    assert "100.0%" in r.stderr  # the progress line
    assert (tmp_path / "a.nc").exists()


def test_run_notes_a_shortened_step(tmp_path, capsys):
    """A dt that does not divide the output interval is shortened (whole steps fill it): the run says so."""
    code = main(["run", "nlse", "--preset", "two_soliton", "--set", "N=128", "--set", "integrator=etdrk4",
                 "--set", "dt=0.03", "--set", "t_end=0.2", "--set", "n_snapshots=2", "--out", str(tmp_path / "r.nc")])
    assert code == 0
    assert "note: Steps of 0.025, not dt = 0.03: whole steps fill each frame interval" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "heat"], "unknown lab 'heat'"),
        (["run", "nlse", "--set", "M=3"], "unknown parameter 'M'"),
        (["run", "nlse", "--set", "N=abc"], "N='abc' is not a valid integer"),
        (["run", "nlse", "--set", "integrator=euler"], "integrator='euler' is not one of"),
        (["run", "nlse", "--set", "N=0"], "N"),
        (["run", "nlse", "--set", "L=-5"], "L"),
        # an alias's bad value is named as given, with the parameters it sets
        (["run", "kelvin_helmholtz", "--set", "N=-32"], "kelvin_helmholtz: 'N' = -32 gives nx = -32"),
        (["run", "kelvin_helmholtz", "--set", "L=-1"], "kelvin_helmholtz: 'L' = -1.0 gives Lx = -1.0"),
        (["run", "nlse", "--preset", "nope"], "unknown preset 'nope'"),
        (["run", "nlse", "--set", "N"], "NAME=VALUE"),
        (["run", "nlse", "--set", "N=64", "--set", "N=128"], "--set N is given twice"),  # (the last one won)
        (["sweep", "nlse", "--grid", "dt=0.1,0.2", "--set", "dt=0.3"], "dt is both swept (--grid) and fixed (--set)"),
        (["run", "nlse", "--backend", "cupy", "--set", "t_end=0.1"], "cupy"),
        (["run", "nlse", "--set", "atol=0"], "atol"),
        # file names are checked before the run, not after it (see the test below)
        (["run", "nlse", "--out", "/no/such/folder/run.nc"], "the folder of '--out'"),
        (["run", "nlse", "--out", "/"], "'--out' = '/' is a folder"),
        (["run", "kelvin_helmholtz", "--set", "resume_from=/"], "'resume_from' = '/' is not a file"),
        (["run", "kelvin_helmholtz", "--set", "checkpoint_file=/"], "'checkpoint_file' = '/' is a folder"),
        (["run", "reaction_diffusion", "--set", "snapshot_file=/"], "'snapshot_file' = '/' is a folder"),
        (["run", "reaction_diffusion", "--set", "resume_from=/"], "'resume_from' = '/' is not a file"),
        # a checkpoint named like a result replaced that result with an archive; a stream is netCDF
        (["run", "kelvin_helmholtz", "--set", "checkpoint_file=run.nc"],
         "'checkpoint_file' = 'run.nc' is written as a NumPy .npz archive: give it a name ending in .npz"),
        (["run", "reaction_diffusion", "--set", "checkpoint_file=rd.nc"], "'checkpoint_file' = 'rd.nc' is written as"),
        (["run", "reaction_diffusion", "--set", "snapshot_file=snap.txt"],
         "'snapshot_file' = 'snap.txt' is written as netCDF: give it a name ending in .nc or .nc4"),
        # the real step is min(dt, snapshot_dt): 1e8 steps, refused before the run
        (["run", "reaction_diffusion", "--set", "N=8", "--set", "t_end=1e4", "--set", "snapshot_dt=1e-4",
          "--set", "frame_dt=1e4", "--set", "dt=1"], "needs 1e+08 steps"),
        (["run", "reaction_diffusion", "--set", "L=1e-160"], "'L' = 1e-160 is too small"),
        # compositions of order > 2 step backwards in time: diffusion run backwards blows up
        (["run", "reaction_diffusion", "--set", "integrator=split_step6"], "takes sub-steps backwards in time"),
        (["run", "kelvin_helmholtz", "--set", "Lx=5e-324"], "'Lx' = 4.94066e-324 is too small"),
    ],
)
def test_clear_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("out", ["/no/such/folder/run.nc", "/"])
def test_the_output_file_is_checked_before_the_run(out, monkeypatch, capsys):
    """A bad ``--out`` is refused before any time is spent: the run itself must not start."""
    from explore.labs.nlse import NLSELab

    def no_run(self, callback=None):
        raise AssertionError("the run started before '--out' was checked")

    monkeypatch.setattr(NLSELab, "run", no_run)
    assert main(["run", "nlse", "--out", out]) == 2
    assert "'--out'" in capsys.readouterr().err


@pytest.mark.parametrize("lab", ["reaction_diffusion", "kelvin_helmholtz"])
def test_a_file_that_is_not_a_checkpoint_is_refused_by_name(lab, tmp_path, capsys):
    import numpy as np

    (tmp_path / "garbage.npz").write_text("not a checkpoint")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "other.npz", a=1)
    np.save(tmp_path / "array.npy", [0.0])
    for name in ("garbage.npz", "empty.npz", "other.npz", "array.npy"):
        assert main(["run", lab, "-q", "--set", f"resume_from={tmp_path / name}"]) == 2
        err = capsys.readouterr().err
        assert "'resume_from'" in err and "is not a checkpoint of this lab" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["run", "reaction_diffusion", "--set", "N=16", "--set", "integrator=dop853", "--set", "t_end=1e300",
     "--set", "snapshot_dt=1e300", "--set", "frame_dt=1e300"],
    ["run", "kelvin_helmholtz", "--set", "nx=16", "--set", "nz=8", "--set", "integrator=dop853",
     "--set", "t_end=1e300", "--set", "n_snapshots=1"],
    ["run", "nlse", "--set", "N=64", "--set", "t_end=1e300", "--set", "n_snapshots=1"],
    ["run", "nlse", "--set", "N=64", "--set", "t_end=1e308", "--set", "n_snapshots=1"],
], ids=["reaction_diffusion", "kelvin_helmholtz", "nlse", "nlse-1e308"])
def test_an_adaptive_run_that_would_never_end_is_stopped(argv, capsys):
    """The step of an adaptive run is known only as it goes: after 1024 steps the run projects its
    length at the average step so far and stops beyond 5e7 steps (these ran for days)."""
    assert main([*argv, "-q"]) == 3
    err = capsys.readouterr().err
    assert "stopped" in err and "Shorten 't_end', unless the step has collapsed. " in err and "Traceback" not in err
    assert "~inf" not in err and "collapsed: If" not in err  # (a projection past the floats; a hint in a hint)


def test_a_none_able_parameter_can_be_set_to_none(capsys):
    """KH's density thickness may be None (the shear thickness): '--set density_thickness=None' says so;
    a parameter that may not be None still refuses the word."""
    from explore.cli import parse_value
    from explore.labs.kelvin_helmholtz import KelvinHelmholtzLab

    for text in ("None", "none", "null", ""):
        assert parse_value(KelvinHelmholtzLab, "density_thickness", text) is None
    assert main(["run", "kelvin_helmholtz", "--set", "Re=None", "-q"]) == 2
    assert "Re='None' is not a valid number" in capsys.readouterr().err


def test_divergence_exit_code(capsys):
    code = main(["run", "nlse", "--set", "integrator=rk4", "--set", "dt=0.05", "--set", "t_end=5", "-q"])
    assert code == 3
    assert "non-finite" in capsys.readouterr().err


def test_kelvin_helmholtz_takes_the_common_names_N_L_ny(tmp_path, capsys):
    """The 2-D labs' common names work for KH, whose own are nx × nz and Lx × Lz: ``N`` sets nx and keeps
    the cells square, ``L`` sets Lx and keeps the aspect ratio, ``ny`` is nz; a lab's own names win."""
    from explore.labs.kelvin_helmholtz import KelvinHelmholtzLab as KH
    from explore.sweep import sweep_points

    lab = KH(preset="basic_shear", N=96)
    assert (lab.nx, lab.nz, lab.Lx, lab.Lz) == (96, 48, 2.0, 1.0)
    lab = KH(preset="basic_shear", N=96, L=4.0, nz=40)
    assert (lab.nx, lab.nz, lab.Lx, lab.Lz) == (96, 40, 4.0, 2.0)
    assert KH(preset="basic_shear", ny=72).nz == 72
    # the narrower name wins whatever the order: ny (nz) over N (nx and nz)
    assert (KH(ny=16, N=64).nx, KH(ny=16, N=64).nz) == (64, 16) == (KH(N=64, ny=16).nx, KH(N=64, ny=16).nz)
    # N reads the domain L sets: whatever their order, the cells are square (N before L made nz = 128 in a
    # 4 × 4 box: an audit finding); L with Lx, whose aspects never agree, is refused
    for given in (dict(N=64, L=4.0, Lz=4.0), dict(L=4.0, N=64, Lz=4.0)):
        assert (KH(**given).nx, KH(**given).nz) == (64, 64), given
    assert (KH(N=64, L=4.0).nz, KH(L=4.0, N=64).nz) == (32, 32)
    with pytest.raises(ValueError, match="'L', 'Lx' do not fit together"):
        KH(L=4.0, Lx=8.0)
    lab = KH(preset="basic_shear", profile="double", boundary="periodic", Lz=1.1, N=100)
    assert lab.nz == 56  # 55 rounded to even: doubly periodic
    with pytest.raises(ValueError, match="other names: N, ny, L"):
        KH(M=3)
    assert [p["N"] for p in sweep_points("kelvin_helmholtz", {"N": [32, 48]}, fixed={"t_end": 0.1})] == [32, 48]

    out = tmp_path / "kh.nc"
    code = main(["run", "kelvin_helmholtz", "--set", "N=48", "--set", "L=2.5", "--set", "t_end=0.05",
                 "--set", "n_snapshots=1", "--out", str(out), "-q"])
    assert code == 0
    ds = xr.load_dataset(out, engine="h5netcdf")
    assert (ds.attrs["nx"], ds.attrs["nz"], ds.attrs["Lx"], ds.attrs["Lz"]) == (48, 24, 2.5, 1.25)
    assert main(["run", "kelvin_helmholtz", "--set", "N=4.5"]) == 2
    assert "N='4.5' is not a valid integer" in capsys.readouterr().err
    assert main(["list", "kelvin_helmholtz"]) == 0
    assert "nz = N·Lz/Lx" in capsys.readouterr().out


def test_booleans_on_the_command_line():
    from explore.cli import UsageError, parse_value
    from explore.labs.diffusion import DiffusionLab

    for text, value in (("yes", True), ("1", True), ("true", True), ("True", True), ("no", False), ("0", False),
                        ("false", False)):
        assert parse_value(DiffusionLab, "study", text) is value, text
    with pytest.raises(UsageError, match="study"):
        parse_value(DiffusionLab, "study", "maybe")


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch, capsys):
    """The result is written to a temporary file renamed into place: a write that fails (an old file held
    open and locked by a notebook truncated it to 0 bytes, and the run was lost) leaves the old file."""
    out = tmp_path / "run.nc"
    argv = ["run", "nlse", "-q", "--set", "t_end=0.1", "--set", "N=64", "--set", "n_snapshots=2", "--out", str(out)]
    assert main(argv) == 0
    before = out.read_bytes()

    def full_disk(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    from explore.core.result import ResultParts

    monkeypatch.setattr(ResultParts, "write_netcdf", full_disk)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "could not write --out" in err and "No space left" in err and "Traceback" not in err
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["run.nc"]


@pytest.mark.parametrize("argv, message", [
    (["run", "nlse", "--out", "out.csv"], "name ending in .nc"),
    (["run", "nlse", "--out", ""], "'--out' is empty"),
    (["run", "reaction_diffusion", "--set", "snapshot_file=rd.nc", "--out", "rd.nc"], "is also 'snapshot_file'"),
    (["sweep", "nlse", "--workers", "0", "--grid", "dt=0.01,0.02"], "--workers: must be at least 1"),
    (["serve", "--port", "70000"], "a port is 0..65535"),
])
def test_more_clear_errors(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # (argparse's own refusals)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_port_in_use_is_one_line(monkeypatch, capsys):
    import importlib

    serve_module = importlib.import_module("explore.ui.serve")  # (the package exports a function of that name)

    def busy(**kwargs):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(serve_module, "serve", busy)
    assert main(["serve", "--port", "5999"]) == 2
    err = capsys.readouterr().err
    assert "cannot serve on 127.0.0.1:5999: Address already in use" in err


def test_a_progress_line_in_a_log_is_one_line_per_tenth(tmp_path):
    r = subprocess.run([sys.executable, "-m", "explore.cli", "run", "nlse", "--set", "t_end=0.5", "--set", "N=64",
                        "--set", "n_snapshots=50"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env=_this_checkout())
    assert r.returncode == 0 and "\r" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 11 and lines[-1].startswith("[####################] 100.0%"), r.stderr


def test_a_result_file_rebuilds_its_lab(tmp_path):
    """``Lab.from_attrs(ds.attrs)``: netCDF stores booleans as 0/1 and None as "null"; the file's
    attributes give back the same lab (what the run used, for every lab)."""
    from explore.core import lab_classes

    for name, cls in lab_classes().items():
        lab = cls()
        for p in cls.parameter_names():  # a boolean flipped and a None where the lab allows one
            par = cls.param[p]
            if type(par).__name__ == "Boolean":
                setattr(lab, p, not getattr(lab, p))
            elif par.allow_None and getattr(lab, p) is not None and p not in ("backend",):
                setattr(lab, p, None)
        from explore.core.result import _attr

        attrs = {k: _attr(v) for k, v in lab.values().items()}
        path = tmp_path / f"{name}.nc"
        xr.Dataset(attrs=attrs).to_netcdf(path, engine="h5netcdf")
        again = cls.from_attrs(xr.load_dataset(path, engine="h5netcdf").attrs)
        assert again.values() == lab.values(), name
        for p in cls.parameter_names():  # (a sweep's coordinate holding None keeps the others as text)
            if type(cls.param[p]).__name__ == "Boolean":
                for text, value in (("false", False), ("true", True), ("0", False), ("1", True)):
                    assert getattr(cls.from_attrs({p: text}), p) is value, (name, p, text)


def test_a_rebuilt_lab_does_not_overwrite_the_first_runs_files(tmp_path):
    """``from_attrs`` leaves the parameters that name files at their defaults (running the rebuilt lab
    would otherwise rewrite the first run's snapshot stream and checkpoint, and resume again), unless
    asked (``files=True``); attributes of another lab's result are refused, naming both labs."""
    from explore.core import lab_classes

    labs = lab_classes()
    rd = labs["reaction_diffusion"]
    assert {"snapshot_file", "checkpoint_file", "resume_from"} <= set(rd.file_parameters())
    named = dict(snapshot_file=str(tmp_path / "s.nc"), checkpoint_file=str(tmp_path / "c.npz"),
                 resume_from=str(tmp_path / "old.npz"))
    attrs = {"lab": "reaction_diffusion", "N": 32, **named}
    again = rd.from_attrs(attrs)
    assert again.N == 32 and all(getattr(again, p) == rd.param[p].default for p in named)
    assert {p: getattr(rd.from_attrs(attrs, files=True), p) for p in named} == named
    with pytest.raises(ValueError, match="nlse: these attributes are of a 'reaction_diffusion' result"):
        labs["nlse"].from_attrs(attrs)


def test_the_result_file_has_the_usual_permissions(tmp_path):
    import os
    import stat

    out = tmp_path / "run.nc"
    assert main(["run", "nlse", "-q", "--set", "t_end=0.1", "--set", "N=64", "--set", "n_snapshots=1",
                 "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_out_may_not_be_the_file_the_run_resumes_from(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ck.nc").write_bytes(b"a checkpoint")
    assert main(["run", "reaction_diffusion", "--set", "resume_from=ck.nc", "--out", "ck.nc"]) == 2
    assert "is also 'resume_from'" in capsys.readouterr().err


def test_a_sweep_whose_every_point_diverges_exits_3(capsys):
    argv = ["sweep", "nlse", "--grid", "dt=0.3,0.4", "--set", "t_end=1.0", "--set", "N=512", "--set", "integrator=rk4",
            "--workers", "1"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert err.count("failed: The run became non-finite") == 2


def test_an_overwritten_result_keeps_the_files_mode(tmp_path):
    import os
    import stat

    out = tmp_path / "run.nc"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    assert main(["run", "nlse", "-q", "--set", "t_end=0.1", "--set", "N=64", "--set", "n_snapshots=1",
                 "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


@pytest.mark.parametrize("lab_name, preset, values", [
    ("nlse", "two_soliton", dict(N=128, t_end=0.5, n_snapshots=3)),
    ("reaction_diffusion", "stable_spiral", dict(N=32, L=10.0, t_end=2.0, frame_dt=1.0)),
    ("reaction_diffusion", "spots", dict(N=32, t_end=20.0, snapshot_dt=10.0, frame_dt=10.0)),
    ("kelvin_helmholtz", "rotating", dict(nx=32, nz=16, t_end=0.2, n_snapshots=2)),
    ("diffusion", "ring8", dict(n_samples=200, n_reference=50, steps=3)),
])
def test_the_cli_writes_the_file_xarray_would(tmp_path, lab_name, preset, values):
    """`explore run` writes its result without importing xarray (~1 s of a small run); the file reads back
    identical to the one xarray's own writer makes of the same result: coordinates (``time``, ``nfe`` … on
    ``step``; a dimension's own), dimensions without one, scalars, category flags, attributes."""
    from explore.core import get_lab

    parts = get_lab(lab_name)(preset=preset, **values).collect()
    parts.write_netcdf(tmp_path / "ours.nc")
    parts.to_dataset().to_netcdf(tmp_path / "xarray.nc", engine="h5netcdf")
    ours = xr.load_dataset(tmp_path / "ours.nc", engine="h5netcdf")
    theirs = xr.load_dataset(tmp_path / "xarray.nc", engine="h5netcdf")
    xr.testing.assert_identical(ours, theirs)
    assert set(ours.coords) >= {"step", "time", "progress", "nfe", "steps"}
    for name in ours.variables:
        assert ours[name].encoding.get("_FillValue") is theirs[name].encoding.get("_FillValue") or np.isnan(
            ours[name].encoding["_FillValue"]) and np.isnan(theirs[name].encoding["_FillValue"])


def test_a_cli_run_imports_neither_xarray_nor_dask(tmp_path):
    code = ("import sys; from explore.cli import main; "
            f"assert main(['run', 'reaction_diffusion', '--set', 'N=16', '--set', 't_end=1', '--set', 'frame_dt=1', "
            f"'-q', '--out', {str(tmp_path / 'r.nc')!r}]) == 0; "
            "print(sorted(m for m in ('xarray', 'pandas', 'dask', 'distributed') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_this_checkout())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert xr.load_dataset(tmp_path / "r.nc").u_final.shape == (16, 16)


def test_a_coordinate_no_variable_holds_is_kept_as_xarray_keeps_it(tmp_path):
    """(In the file's own ``coordinates`` attribute, as xarray writes it.)"""
    from explore.core.result import ResultParts

    parts = ResultParts({"step": np.arange(3), "time": ("step", np.arange(3.0))}, {"final": ("x", np.ones(4))}, {"a": 1})
    parts.write_netcdf(tmp_path / "ours.nc")
    parts.to_dataset().to_netcdf(tmp_path / "xarray.nc", engine="h5netcdf")
    ours = xr.load_dataset(tmp_path / "ours.nc", engine="h5netcdf")
    xr.testing.assert_identical(ours, xr.load_dataset(tmp_path / "xarray.nc", engine="h5netcdf"))
    assert "time" in ours.coords and "coordinates" not in ours.attrs


def test_list_shows_whether_a_ranges_ends_are_allowed(capsys):
    """``explore list LAB``: a range's brackets say whether its ends are allowed, as the lab checks them
    (``dt = 0`` and ``omega = 0`` are refused; ``seed = 0`` is not)."""
    assert main(["list", "nlse"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("    ") and line.split()}
    assert "Number (0, 2), default 0.5" in lines["omega"]
    assert "Number (0, ∞), default" in lines["dt"]
    assert "Number [0, ∞), default" in lines["modulation"]
    assert "Integer [0, 4294967295], default 0" in lines["seed"]
    from explore.labs.nlse import NLSELab

    for name, value in (("omega", 0.0), ("dt", 0.0)):
        with pytest.raises(ValueError):
            NLSELab(**{name: value})
    assert NLSELab(seed=0, modulation=0.0).seed == 0


def test_the_run_summary_names_the_labs_time_and_aligns_long_names(tmp_path, capsys):
    """The summary after a run says what its frames count (a sampler's NFE, not a time t), and the
    history's values stand in one column however long the diagnostics' names."""
    assert main(["run", "diffusion", "-q", "--set", "n_samples=200", "--set", "steps=4"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.startswith("diffusion: ") and ", NFE = 5, " in head and " t = " not in head, head
    assert main(["run", "kelvin_helmholtz", "-q", "--set", "N=32", "--set", "t_end=0.05", "--set", "n_snapshots=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ", t = 0.05, " in lines[0]
    rows = [line for line in lines[1:] if " final " in line]
    assert any(line.split()[0] == "energy_budget_residual" for line in rows)
    assert len({line.index(" final ") for line in rows}) == 1, rows


def test_resuming_from_a_result_file_says_it_is_no_checkpoint(tmp_path, capsys):
    """A netCDF result given as ``resume_from`` is refused as no checkpoint, without NumPy's advice to load
    it as pickled data (which a user has no reason to trust, nor to try)."""
    out = tmp_path / "kh.nc"
    assert main(["run", "kelvin_helmholtz", "-q", "--set", "N=16", "--set", "t_end=0.01", "--set", "n_snapshots=1",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", "kelvin_helmholtz", "-q", "--set", "N=16", "--set", f"resume_from={out}"]) == 2
    err = capsys.readouterr().err
    assert f"'resume_from' = '{out}' is not a checkpoint of this lab (not an .npz archive)" in err, err
    assert "pickle" not in err and "Traceback" not in err


def test_the_progress_line_fits_the_terminal(monkeypatch):
    """On a terminal the progress line is rewritten in place, which only works while it fits on one row:
    it is cut to the terminal's width (KH's line is ~150 characters; at 80 columns it wrapped and piled up)."""
    import io
    import os
    import shutil

    from explore.cli import _Progress
    from explore.core import Frame

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: os.terminal_size((80, 24)))
    out = Terminal()
    progress = _Progress(out, True)
    conv = {"divergence": 2.9e-14, "mean_density_drift": 0.0, "energy_budget_residual": 1e-6, "pe_budget_residual": 1e-5}
    for i in range(3):
        progress(Frame(step=i, time=0.1 * i, progress=i / 2, convergence=conv, steps=10 * i))
    progress.done()
    lines = out.getvalue().split("\r")[1:]
    assert len(lines) == 3 and all(len(line.rstrip("\n")) == 79 for line in lines), [len(x) for x in lines]
    assert lines[-1].startswith("[####################] 100.0%  t=0.2  steps=20") and lines[-1].endswith("\n")
