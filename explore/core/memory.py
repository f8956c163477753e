"""How much memory a run may take: the host's available memory, or the GPU's free memory.

A lab estimates what a run will take (:meth:`explore.core.lab.Lab.memory_estimate`) and refuses one that
cannot fit before it allocates anything: on a shared server one run that outgrows the machine would
otherwise bring the out-of-memory killer to the whole server (every session), not just stop itself.
"""
from __future__ import annotations

import math
import os


class RunTooLarge(ValueError):
    """A run needs more memory than its backend has free (raised before it starts)."""


#: the cgroup (container) memory limit and use: v2, then v1
_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # ("max": no limit)


def _host_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (Linux; else psutil's, where installed), less than that when a
    container's cgroup limit leaves less; ``None`` where neither is known."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            import psutil

            available = int(psutil.virtual_memory().available)
        except Exception:  # noqa: BLE001 - not installed, or no such figure on this system
            return None
    for limit_file, usage_file in _CGROUP_FILES:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # (v1 writes "no limit" as ~2^63)
            available = min(available, max(limit - usage, 0))
            break
    return available


def _device_available() -> int | None:
    """The current CUDA device's free memory plus what CuPy's pool holds unused (it reuses that first)."""
    try:
        import cupy

        free, _total = cupy.cuda.runtime.memGetInfo()
        return int(free) + int(cupy.get_default_memory_pool().free_bytes())
    except Exception:  # noqa: BLE001 - no CuPy or no device: the backend's own check says so
        return None


def available_bytes(backend: str) -> int | None:
    """Memory a new run on ``backend`` can take now, in bytes (``None``: unknown, so not checked).

    ``EXPLORE_MEMORY_BYTES`` in the environment overrides it (a limit of one's own, or a test's): bytes
    (``3e9``) or with a unit (``4GB``, ``512 MiB``); anything else is refused, naming the variable (a
    limit that is silently ignored is no limit)."""
    override = os.environ.get("EXPLORE_MEMORY_BYTES", "").strip()
    if override:
        return parse_bytes(override, "EXPLORE_MEMORY_BYTES")
    return _device_available() if backend == "cupy" else _host_available()


#: the units :func:`parse_bytes` reads (decimal and binary)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str, name: str) -> int:
    """``text`` as a number of bytes: ``3e9``, ``4GB``, ``512 MiB``; ``ValueError`` naming ``name`` otherwise."""
    s = text.strip().lower()
    number = s.rstrip("kmgtib").strip()
    unit = s[len(s.rstrip("kmgtib")):].strip()
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} = {text!r} is not an amount of memory: give bytes (3e9) or a size with its unit "
                         "(4GB, 512MiB)")
    return int(value)


def format_bytes(n: float) -> str:
    """``n`` bytes as a short figure: 950 MB, 7.2 GB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            value = n / size
            return f"{value:.2g} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n / 1e3:.0f} kB"
