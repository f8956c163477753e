"""Whole-process measurements for the side-by-side benchmarks: one helper for every script.

``run_measured`` runs a command in a fresh process and returns its wall time, CPU time (user +
system) and peak resident memory from ``os.wait4``: the child's own resource usage, with no GNU
``time`` needed (neither the GPU host nor a fresh machine need have it).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

#: ru_maxrss is in bytes on macOS and in KiB on Linux
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


def run_measured(cmd, cwd=None, env=None, timeout: float | None = None, tail: int = 3000) -> dict:
    """Run ``cmd``: ``wall_s``, ``cpu_s`` (user + system), ``rss_mib`` (peak), ``rc`` (exit status) and
    the last ``tail`` characters of ``stdout`` and ``stderr``. Raises ``subprocess.TimeoutExpired``
    (after killing the process) past ``timeout`` seconds."""
    argv = [str(c) for c in cmd]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, 0 if timeout is None else os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.02)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss * _RSS_UNIT / 2**20,
            "rc": proc.returncode, "stdout": stdout[-tail:], "stderr": stderr[-tail:]}
