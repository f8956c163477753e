"""Array backends: NumPy (default) and CuPy (optional, GPU).

Numerics receive arrays and find their namespace with ``array_api_compat.array_namespace``;
labs pick the namespace once from their ``backend`` parameter with :func:`get_namespace`.
"""
from __future__ import annotations

import numpy as np

from explore._host import to_host  # noqa: F401  (re-exported: labs and the UI use it from here)

BACKENDS = ("numpy", "cupy")


class BackendUnavailable(ValueError):
    """Asked for a backend that cannot run here (e.g. CuPy without a GPU)."""


def get_namespace(name: str):
    """Array-API namespace for backend ``name`` ('numpy' or 'cupy')."""
    import array_api_compat

    if name == "numpy":
        return array_api_compat.array_namespace(np.zeros(1))
    if name == "cupy":
        try:
            import cupy
        except ImportError as exc:
            raise BackendUnavailable(
                "backend='cupy' needs CuPy: install the GPU extra (pip install -e '.[gpu]' in the checkout) "
                "on a machine with an NVIDIA GPU, or use backend='numpy'."
            ) from exc
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver / no device
            raise BackendUnavailable(
                f"backend='cupy': CuPy is installed but no CUDA device is usable ({exc}); "
                "use backend='numpy'."
            ) from exc
        if n < 1:
            raise BackendUnavailable("backend='cupy': no CUDA device found; use backend='numpy'.")
        return array_api_compat.array_namespace(cupy.zeros(1))
    raise BackendUnavailable(f"backend={name!r} is unknown; choose one of {BACKENDS}.")
