"""Checks of the files a run reads or writes (checkpoints, snapshot streams, the CLI's ``--out``), made
before any work so that a bad path is refused by the parameter's name instead of failing after a run."""
from __future__ import annotations

import contextlib
import os
import tempfile

#: what ``--out`` and a snapshot stream may end with: netCDF-4 (HDF5) files
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5")
#: what a checkpoint may end with: NumPy's ``.npz`` archives (a checkpoint named ``run.nc`` replaced the
#: result of that name with an archive)
CHECKPOINT_SUFFIXES = (".npz",)


def check_input_file(lab_name: str, name: str, path: str) -> None:
    """Refuse, naming the parameter ``name``, a ``path`` that is not an existing file."""
    if not os.path.exists(path):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} is not a file")


def check_output_file(lab_name: str, name: str, path: str) -> None:
    """Refuse, naming the parameter ``name``, a ``path`` that cannot be written: a folder, or a file in a
    folder that does not exist or is not writable (checked before a run, not after it)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"{lab_name}: the folder of {name!r} = {path!r} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} is not writable")


def check_netcdf_name(lab_name: str, name: str, path: str) -> None:
    """Refuse an empty name or one that does not end like a netCDF file (``out.csv`` got HDF5 in it)."""
    _check_suffix(lab_name, name, path, NETCDF_SUFFIXES, "netCDF")


def check_checkpoint_name(lab_name: str, name: str, path: str) -> None:
    """Refuse an empty name or one that does not end in ``.npz`` (a checkpoint is a NumPy archive)."""
    _check_suffix(lab_name, name, path, CHECKPOINT_SUFFIXES, "a NumPy .npz archive")


def _check_suffix(lab_name: str, name: str, path: str, suffixes: tuple[str, ...], kind: str) -> None:
    if not path:
        raise ValueError(f"{lab_name}: {name!r} is empty; give a file name ending in {suffixes[0]}")
    if not path.lower().endswith(suffixes):
        raise ValueError(f"{lab_name}: {name!r} = {path!r} is written as {kind}: give it a name ending in "
                         f"{' or '.join(suffixes[:2])}")


def write_netcdf(ds, path: str) -> None:
    """Write ``ds`` (an ``xarray.Dataset``, or a run's :class:`~explore.core.result.ResultParts`) to ``path``
    (h5netcdf) through a temporary file in the same folder, renamed into place at the end: a write that
    fails (the old file held open and locked by another process, a full disk) leaves any file already at
    ``path`` as it was, instead of truncating it."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".explore-", suffix=".nc", dir=folder)
    os.close(fd)
    try:
        if hasattr(ds, "write_netcdf"):
            ds.write_netcdf(tmp)
        else:
            ds.to_netcdf(tmp, engine="h5netcdf")
        # the permissions a plain write would give (mkstemp's are owner-only): an old file's, else the umask's
        if os.path.exists(path):
            mode = os.stat(path).st_mode & 0o777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
