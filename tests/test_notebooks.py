"""Execute every notebook in ``notebooks/`` headlessly and check what it computes.

Each ``notebooks/*.ipynb`` is run top to bottom with nbclient in a ``python3`` kernel that runs
this interpreter (the project's venv). A notebook may end its numeric story in a code cell tagged
``summary`` that prints one JSON object; :data:`CHECKS` holds per-notebook assertions on it.
"""
from __future__ import annotations

import copy
import json
import math
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

# Appended (in memory only) to every executed notebook: where the kernel really runs.
PROBE = (
    "import json as _j, sys as _s, explore as _e\n"
    "print('KERNEL_PROBE ' + _j.dumps({'executable': _s.executable, 'prefix': _s.prefix, "
    "'explore': getattr(_e, '__file__', None)}))"
)


def _check_nlse(summary: dict) -> None:
    theory = {"rk4": 4, "ifrk4": 4, "etdrk4": 4, "split_step": 2}
    for method, order in theory.items():
        measured = summary["orders"][method]
        assert abs(measured - order) <= 0.3, f"{method}: fitted order {measured:.2f}, theory {order}"
    # spectral convergence: ~1e-10 at N = 512, decay rate near pi^2 / (2 A L)
    assert summary["soliton_error_N512"] < 1e-9
    assert abs(summary["spectral_decay_rate"] / summary["spectral_decay_rate_theory"] - 1) < 0.25
    # Zakharov–Shabat collision shift, resolved run
    assert summary["collision_shift_error"] < 1e-4
    # modulation-instability gain sigma(k) = |k| sqrt(1 - k^2/4), and its peak at sqrt 2
    assert summary["mi_gain_max_rel_error"] < 0.05
    assert abs(summary["mi_peak_k"] - math.sqrt(2)) < 0.1
    # errors after the breather's peak grow at the maximal instability gain, 1
    assert 0.7 < summary["breather_error_growth_rate"] < 1.3


def _check_kelvin_helmholtz(summary: dict) -> None:
    assert summary["growth_rate_max_rel_error"] < 0.05  # against the Rayleigh/Michalke growth rate
    assert summary["taylor_goldstein_max_rel_error"] < 0.05  # stratified, against Taylor–Goldstein
    assert summary["divergence_max"] < 1e-10
    assert summary["rotation_relative_change"] < 1e-10  # a Coriolis force about the normal axis does nothing


def _check_reaction_diffusion(summary: dict) -> None:
    theory = {"etdrk4": 4, "ifrk4": 4, "split_step": 2}  # fitted on the 2-D spiral against DOP853
    for method, order in theory.items():
        measured = summary["orders"][method]
        assert abs(measured - order) <= 0.3, f"{method}: fitted order {measured:.2f}, theory {order}"
    # the periodic start converges in N; rd-spiral's (a phase jump at the edge) does not
    assert summary["grid_gap_t10"]["spiral_periodic"] < 1e-2 < summary["grid_gap_t10"]["spiral"]
    assert summary["rotation_period_diff_N48"] < 1e-5 * summary["rotation_period"]
    assert summary["pattern_decay_regime"] == "homogeneous_oscillation"
    # in the frame turning with it a rigid spiral stands still: ETDRK4's time error at Δt = 0.1 falls ~100×
    assert summary["frame_error_t20"]["co-rotating"] < 0.03 * summary["frame_error_t20"]["fixed"]
    # explicit DOP853's evaluations grow ~N² (stability), Lawson's DOP853's hardly (accuracy)
    n = {int(k): v for k, v in summary["evaluations_t5"].items()}
    assert n[64]["dop853"] > 2.5 * n[32]["dop853"] and n[64]["if_dop853"] < 1.5 * n[32]["if_dop853"]
    assert n[64]["if_dop853"] < 0.5 * n[64]["dop853"]
    assert all(v > 1e-4 for v in summary["gray_scott_v_variance"].values())


def _check_diffusion_samplers(summary: dict) -> None:
    assert summary["pndm50_over_ddim1000"] < 1  # PNDM at 50 steps beats DDIM at 1000
    assert summary["optimal_over_best_fixed_8"] < 0.8  # the DP schedule beats every fixed one at 8 steps
    assert abs(summary["hb_interval_gain_beta_0.5"] - 3) < 1e-6  # momentum stretches the interval by (2-β)/β


CHECKS = {
    "nlse": _check_nlse,
    "kelvin_helmholtz": _check_kelvin_helmholtz,
    "reaction_diffusion": _check_reaction_diffusion,
    "diffusion_samplers": _check_diffusion_samplers,
}


def _python3_kernel_uses(executable: str) -> bool:
    """Whether the ``python3`` kernelspec launches ``executable``."""
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return False
    argv0 = spec.argv[0]
    # jupyter_client replaces a bare 'python' / 'python3' by sys.executable when launching
    if argv0 in {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        return True
    return os.path.realpath(argv0) == os.path.realpath(executable)


@pytest.fixture(scope="module")
def kernel_env():
    """Make sure ``python3`` resolves to this interpreter, and the kernel imports this checkout."""
    if not _python3_kernel_uses(sys.executable):
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix)  # = `python -m ipykernel install --sys-prefix`
        assert _python3_kernel_uses(sys.executable), "could not install a python3 kernelspec for this venv"
    # The kernel starts in notebooks/; put the repository first on its path so `explore` is this
    # checkout's package whatever state the (editable) install is in.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([old] if old else []))
    yield
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                   and o.get("name") == "stdout")


def test_notebooks_found():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; commit notebooks without outputs"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, kernel_env):
    nb = nbformat.read(path, as_version=4)
    run = copy.deepcopy(nb)
    run.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(run, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first error

    errors = [o for c in run.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors

    probe = json.loads(_stdout(run.cells[-1]).split("KERNEL_PROBE ", 1)[1])
    assert os.path.realpath(probe["executable"]) == os.path.realpath(sys.executable), probe
    assert Path(probe["explore"]).resolve().parent.parent == ROOT, probe

    summaries = [c for c in run.cells if c.cell_type == "code" and "summary" in c.metadata.get("tags", [])]
    check = CHECKS.get(path.stem)
    if check is not None:
        assert len(summaries) == 1, f"{path.name}: expected one code cell tagged 'summary'"
    for cell in summaries:
        summary = json.loads(_stdout(cell))
        if check is not None:
            check(summary)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_carries_no_outputs(path):
    """Committed notebooks stay small and reviewable: outputs are made by running them."""
    nb = nbformat.read(path, as_version=4)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"{path.name}: cells {with_outputs} carry outputs; clear them before committing"
    assert path.stat().st_size < 200_000
