#!/usr/bin/env python3
"""Streaming throughput and memory of the live dashboard, on a synthetic lab.

The lab ``bench_stream`` (defined and registered here, nowhere else) yields frames as fast as it can
(or at ``rate`` frames per second) with one sample that changes every frame:

- ``sample=field``: one 256×256 :class:`~explore.core.Field` (an image; a rolling pattern);
- ``sample=points``: one 10 000-point :class:`~explore.core.Points` cloud (a turning spiral);

plus one convergence scalar. The server (``explore.ui.serve`` for this lab alone, on 127.0.0.1 and a
free port) runs in a child process (this script with ``--serve``), so its resident memory is its own
and the browser's driver does not share its interpreter.

**Throughput** (each case, once per ``--rates`` value: the lab making frames as fast as it can — its
worker thread then takes one of the machine's two cores — and at 60 frames/s, three times the
target, as a solver with real work between frames does): open the page in headless Chromium, press
Run (keyboard), wait
``--warmup`` seconds, then count for ``--seconds`` (default 20) in the page the distinct updates of the
``sample:*`` Bokeh data source: a hook on the document's ``apply_json_patch`` notes each patch after
which the source's data column is a new array with new values. fps = updates / window. Target ≥ 20 fps.
The page also records the main thread's long tasks (busy share) and the server child its drain and
push costs, so a miss can be placed (server, wire or browser).

**Memory**: a fresh server child (without the instrumentation; the heap freed after the full-speed
cases would hide growth) and a fresh page stream the field case at ``--memory-rate`` frames/s
(default 30, about the page's update rate) for ``--minutes`` (default 10); the server's RSS
(``VmRSS`` of ``/proc/<pid>/status``) is sampled every 10 s. Reported: start (after 30 s of warm-up), end, max and
growth = (end − start) / start. Target ≤ 10 %. The view keeps every frame's scalars of a run (for the
convergence plot and the export), so part of any growth is that history, by design; the report gives
the number of frames received.

Usage (from the repository root)::

    .venv/bin/python benchmarks/ui_streaming.py                   # both cases + the 10-minute memory run
    .venv/bin/python benchmarks/ui_streaming.py --minutes 1       # a shorter memory run
    .venv/bin/python benchmarks/ui_streaming.py --minutes 0       # throughput only

Writes ``benchmarks/results/ui_streaming.md`` and ``.json`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import param

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from explore.core import Field, Frame, Lab, Points, register_lab  # noqa: E402

RESULTS = HERE / "results"
TARGET_FPS = 20.0
TARGET_GROWTH = 0.10
LAB = "bench_stream"


@register_lab
class BenchStream(Lab):
    lab_name = LAB
    title = "Streaming benchmark"
    description = "A synthetic lab for benchmarks/ui_streaming.py: one sample that changes every frame."
    groups = {"Stream": ["sample", "size", "n_points", "rate", "n_frames"]}

    sample = param.Selector(default="field", objects=["field", "points"], doc="The sample streamed.")
    size = param.Integer(default=256, bounds=(2, 512), doc="Pixels per side of the field.")
    n_points = param.Integer(default=10_000, bounds=(1, 10_000), doc="Points of the point cloud.")
    rate = param.Number(default=0.0, bounds=(0.0, 1000.0), doc="Frames per second (0: as fast as possible).")
    n_frames = param.Integer(default=10**9, bounds=(1, 10**9), doc="Frames of a run.")

    def _frames(self, xp):
        n = self.size
        x = np.linspace(0.0, 1.0, n)
        y = np.linspace(0.0, 1.0, n)
        base = np.sin(2 * np.pi * 3 * x)[None, :] * np.cos(2 * np.pi * 2 * y)[:, None]
        rng = np.random.default_rng(self.seed)
        r = np.sqrt(rng.random(self.n_points))
        theta = 6 * np.pi * r + 0.3 * rng.standard_normal(self.n_points)
        period = 1.0 / self.rate if self.rate else 0.0
        t_next = time.monotonic()
        for i in range(1, self.n_frames + 1):
            if self.sample == "field":
                values = np.roll(base, i % n, axis=1) * (1.0 + 0.25 * np.sin(0.1 * i))
                sample = Field(x, y, values, "x", "y", "value")
            else:
                angle = theta + 0.02 * i
                sample = Points(r * np.cos(angle), r * np.sin(angle), "x", "y")
            if period:
                t_next += period
                delay = t_next - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    t_next = time.monotonic()
            yield Frame(step=i, time=float(i), progress=i / self.n_frames,
                        convergence={"residual": 1.0 / i + 1e-3}, samples={"s": sample})


# ----------------------------------------------------------------------------- server child
def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def serve_child(port: int, stats_path: str | None) -> None:
    """The server (child process): this lab alone, plus a light record of the server's own costs."""
    from ui_latency import quiet_logs

    quiet_logs()
    from bokeh.protocol import Protocol

    from explore.ui import plots, view
    from explore.ui.pacing import PACER
    from explore.ui.serve import serve

    if not stats_path:  # the memory run: nothing added to the server
        serve(port=port, labs=[LAB], verbose=False, threaded=False)
        return

    stats = {"drain_s": [], "drain_frames": 0, "send_s": [], "serialise_s": [], "sample_sends": 0}

    def timed(cls, name, key):
        orig = getattr(cls, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                stats[key].append(time.perf_counter() - t)
        setattr(cls, name, wrapper)

    orig_drain = view.LabView._drain

    def drain(self):
        t = time.perf_counter()
        n = orig_drain(self)
        stats["drain_s"].append(time.perf_counter() - t)
        stats["drain_frames"] += n
        return n
    view.LabView._drain = drain
    timed(plots.LivePlot, "_send", "send_s")
    orig_send = plots.LivePlot._send

    def send(self, obj):
        if (self.name or "").startswith("sample:"):
            stats["sample_sends"] += 1
        return orig_send(self, obj)
    plots.LivePlot._send = send
    timed(Protocol, "create", "serialise_s")

    def dump():
        while True:
            time.sleep(1.0)
            out = {"t": time.time(), "pacer_cost_s": PACER.cost, "drain_frames": stats["drain_frames"],
                   "sample_sends": stats["sample_sends"]}
            for key in ("drain_s", "send_s", "serialise_s"):
                v = list(stats[key])
                stats[key].clear()
                out[key] = [len(v), sum(v), max(v) if v else 0.0]
            with open(stats_path, "a") as f:
                f.write(json.dumps(out) + "\n")
    threading.Thread(target=dump, daemon=True).start()
    serve(port=port, labs=[LAB], verbose=False, threaded=False)


class Server:
    """The server child (this script with ``--serve``) on a free port, for a ``with`` block."""

    def __init__(self, log: Path, stats: Path | None):
        from ui_latency import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log_path, self._stats = log, stats

    def __enter__(self) -> Server:
        from ui_latency import wait_http

        self._log = open(self._log_path, "w")
        cmd = [sys.executable, __file__, "--serve", str(self.port)]
        if self._stats is not None:
            cmd += ["--stats", str(self._stats)]
        self.child = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.child.pid
        try:
            wait_http(f"{self.base}/{LAB}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.child.terminate()
        try:
            self.child.wait(10)
        except subprocess.TimeoutExpired:
            self.child.kill()
        self._log.close()


# ----------------------------------------------------------------------------- page side
COUNT_JS = """() => {
  const doc = Bokeh.documents[0];
  if (window.__stream) return true;
  const S = window.__stream = {updates: [], applyMs: 0, patches: 0, busy: [], counting: false};
  let last = null;
  const column = (m) => { const d = m.data; return d.image !== undefined ? d.image : (d.x !== undefined ? d.x : Object.values(d)[0]); };
  const sig = (c) => { const a = (c && c.length && typeof c[0] === 'object') ? c[0] : c; if (!a || !a.length) return null;
    let s = 0; for (let i = 0; i < a.length; i += Math.max(1, Math.floor(a.length / 64))) s += Number(a[i]) * (i + 1); return `${a.length}:${s}`; };
  const orig = doc.apply_json_patch.bind(doc);
  doc.apply_json_patch = function (patch, buffers) {
    const t0 = performance.now();
    const r = orig(patch, buffers);
    const t1 = performance.now();
    S.patches += 1; S.applyMs += t1 - t0;
    for (const [id, m] of doc._all_models) {
      if (!m.name || !m.name.startsWith('sample:') || !m.data) continue;
      const c = column(m);
      const s = sig(c);
      if (s !== null && (last === null || c !== last.c) && (last === null || s !== last.s)) {
        if (S.counting) S.updates.push(t1);
        last = {c, s};
      }
      break;
    }
    return r;
  };
  new PerformanceObserver(list => { for (const e of list.getEntries()) if (S.counting) S.busy.push([e.startTime, e.duration]); })
    .observe({entryTypes: ['longtask']});
  return true;
}"""


def press(page, label: str) -> None:
    import re

    button = page.locator("button.bk-btn").filter(
        has_text=re.compile(f"^[\\s\u00a0]*{re.escape(label)}[\\s\u00a0]*$")).first
    button.focus()
    button.press("Enter")


def read_stats(path: Path, since: float, until: float) -> dict:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if since <= row["t"] <= until + 1.0:
                rows.append(row)
    out = {}
    for key in ("drain_s", "send_s", "serialise_s"):
        n = sum(r[key][0] for r in rows)
        total = sum(r[key][1] for r in rows)
        out[key.replace("_s", "")] = {"calls": n, "mean_ms": 1e3 * total / n if n else None,
                                      "max_ms": 1e3 * max((r[key][2] for r in rows), default=0.0),
                                      "share_of_wall": total / max(until - since, 1e-9)}
    if rows:
        out["frames_drained_per_s"] = (rows[-1]["drain_frames"] - rows[0]["drain_frames"]) / max(
            rows[-1]["t"] - rows[0]["t"], 1e-9)
        out["pacer_cost_ms"] = 1e3 * rows[-1]["pacer_cost_s"]
        out["sample_pushes_per_s"] = (rows[-1]["sample_sends"] - rows[0]["sample_sends"]) / max(
            rows[-1]["t"] - rows[0]["t"], 1e-9)
    return out


def measure_fps(browser, base: str, case: str, seconds: float, warmup: float, stats_path: Path,
                rate: float = 0.0) -> dict:
    from ui_latency import loadavg, open_lab

    load0 = loadavg()
    page, errors = open_lab(browser, f"{base}/{LAB}?sample={case}&rate={rate:g}")
    try:
        page.evaluate(COUNT_JS)
        press(page, "Run")
        page.wait_for_function("() => window.__stream.patches > 0", timeout=60_000)
        page.wait_for_timeout(int(warmup * 1000))
        t_start = time.time()
        page.evaluate("() => { window.__stream.counting = true; window.__stream.t0 = performance.now(); "
                      "window.__stream.applyMs = 0; window.__stream.patches = 0; }")
        page.wait_for_timeout(int(seconds * 1000))
        r = page.evaluate("""() => { const S = window.__stream; S.counting = false;
            return {updates: S.updates, t0: S.t0, t1: performance.now(), applyMs: S.applyMs, patches: S.patches,
                    busy: S.busy.filter(b => b[0] >= S.t0).reduce((a, b) => a + b[1], 0),
                    heap: performance.memory ? performance.memory.usedJSHeapSize : null}; }""")
        t_end = time.time()
        press(page, "Pause")
    finally:
        page.close()
    window_s = (r["t1"] - r["t0"]) / 1000
    ups = r["updates"]
    gaps = [b - a for a, b in zip(ups, ups[1:])]
    return {
        "case": case, "rate": rate, "seconds": round(window_s, 2), "updates": len(ups),
        "fps": len(ups) / window_s,
        "interval_median_ms": statistics.median(gaps) if gaps else None,
        "interval_p95_ms": sorted(gaps)[int(0.95 * (len(gaps) - 1))] if gaps else None,
        "patches": r["patches"], "apply_ms_per_patch": r["applyMs"] / max(r["patches"], 1),
        "browser_busy_share": r["busy"] / (window_s * 1000),
        "server": read_stats(stats_path, t_start, t_end),
        "load_before": load0, "load_after": loadavg(), "console_errors": errors[:5],
    }


def memory_run(browser, base: str, pid: int, minutes: float, rate: float, case: str, every: float = 10.0,
               warmup: float = 30.0) -> dict:
    from ui_latency import loadavg, open_lab

    load0 = loadavg()
    page, errors = open_lab(browser, f"{base}/{LAB}?sample={case}&rate={rate:g}")
    samples = []
    try:
        page.evaluate(COUNT_JS)
        page.evaluate("() => { window.__stream.counting = true; window.__stream.t0 = performance.now(); }")
        t0 = time.monotonic()
        press(page, "Run")
        samples.append((0.0, rss_kib(pid), None))
        deadline = t0 + 60 * minutes
        while time.monotonic() < deadline:
            page.wait_for_timeout(int(1000 * min(every, max(0.0, deadline - time.monotonic()))))
            heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
            samples.append((time.monotonic() - t0, rss_kib(pid), heap))
            print(f"   memory t = {samples[-1][0]:6.0f} s  RSS {samples[-1][1] / 1024:7.1f} MiB  "
                  f"JS heap {heap / 2**20 if heap else float('nan'):6.1f} MiB  load {loadavg()}", flush=True)
        r = page.evaluate("""() => { const S = window.__stream; S.counting = false;
            const t1 = performance.now(); return {n: S.updates.length, s: (t1 - S.t0) / 1000}; }""")
        steps = page.evaluate("""() => { for (const m of Bokeh.documents[0].all_models) {
            const t = typeof m.text === 'string' ? m.text : ''; const k = t.match(/step (\\d+)/);
            if (k) return Number(k[1]); } return null; }""")
        press(page, "Pause")
    finally:
        page.close()
    after = [s for s in samples if s[0] >= warmup]
    start = after[0] if after else samples[0]
    end = samples[-1]
    rss = [s[1] for s in after] or [end[1]]
    heaps = [s[2] for s in after if s[2]]
    return {
        "case": case, "rate": rate, "minutes": minutes, "warmup_s": warmup,
        "start_mib": start[1] / 1024, "end_mib": end[1] / 1024, "max_mib": max(rss) / 1024,
        "growth": (end[1] - start[1]) / start[1],
        "js_heap_start_mib": heaps[0] / 2**20 if heaps else None,
        "js_heap_end_mib": heaps[-1] / 2**20 if heaps else None,
        "updates": r["n"], "fps": r["n"] / r["s"] if r["s"] else None, "frames": steps,
        "samples": [(round(t, 1), kib, heap) for t, kib, heap in samples],
        "load_before": load0, "load_after": loadavg(), "console_errors": errors[:5],
    }


def write_report(meta: dict, cases: list[dict], memory: dict | None, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "fps": cases, "memory": memory}, indent=2))

    def f(x, fmt=".1f"):
        return "–" if x is None else format(x, fmt)

    lines = [
        "# UI streaming: updates per second and server memory",
        "",
        f"{meta['date']} · load average {meta['load_before']} → {meta['load_after']} · {meta['cpus']} CPUs · "
        "Chromium headless, server in a child process",
        "",
        f"## Throughput (target ≥ {TARGET_FPS:.0f} fps)",
        "",
        "| case | lab frames/s | fps | updates / window (s) | interval median / p95 (ms) | browser: apply per patch (ms), main thread busy | "
        "server: frames drained/s, drain mean (ms), push (`_send`) mean (ms), serialise mean (ms), pacer cost (ms) | target | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        s = c["server"]
        lines.append(
            f"| {c['case']} | {c.get('rate') or 'max'} | **{c['fps']:.1f}** | {c['updates']} / {c['seconds']:.1f} | "
            f"{f(c['interval_median_ms'], '.0f')} / {f(c['interval_p95_ms'], '.0f')} | "
            f"{c['apply_ms_per_patch']:.1f}, {100 * c['browser_busy_share']:.0f} % | "
            f"{f(s.get('frames_drained_per_s'), '.0f')}, {f(s.get('drain', {}).get('mean_ms'))}, "
            f"{f(s.get('send', {}).get('mean_ms'))}, {f(s.get('serialise', {}).get('mean_ms'))}, "
            f"{f(s.get('pacer_cost_ms'))} | {'met' if c['fps'] >= TARGET_FPS else 'MISSED'} | "
            f"{c['load_before'][0]} → {c['load_after'][0]} |")
    lines += [
        "",
        "- **fps**: distinct updates of the `sample:s` data source in the page (new array, new values) per "
        "second of the window, counted by a hook on the document's `apply_json_patch`.",
        "- **lab frames/s**: how fast the synthetic lab makes frames (`max`: as fast as it can, its worker "
        "thread taking a whole core of the two from the server and the browser).",
        "- browser **busy**: share of the window spent in long tasks (> 50 ms) of the page's main thread.",
        "- server figures come from the server child (wrapped `LabView._drain`, `LivePlot._send`, "
        "`Protocol.create`).",
    ]
    if memory:
        m = memory
        lines += [
            "",
            f"## Memory (target growth ≤ {100 * TARGET_GROWTH:.0f} %)",
            "",
            f"{m['case']} case at {m['rate']:g} frames/s for {m['minutes']:g} min; server RSS (VmRSS) every 10 s, "
            f"start after {m['warmup_s']:.0f} s.",
            "",
            "| start (MiB) | end (MiB) | max (MiB) | growth | page updates (fps) | frames of the run | JS heap start → end (MiB) | target | load |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {m['start_mib']:.1f} | {m['end_mib']:.1f} | {m['max_mib']:.1f} | **{100 * m['growth']:+.1f} %** | "
            f"{m['updates']} ({f(m['fps'])}) | {m['frames'] or '–'} | {f(m['js_heap_start_mib'])} → "
            f"{f(m['js_heap_end_mib'])} | {'met' if m['growth'] <= TARGET_GROWTH else 'MISSED'} | "
            f"{m['load_before'][0]} → {m['load_after'][0]} |",
            "",
            "RSS samples (s, MiB): " + ", ".join(f"{t:.0f}: {kib / 1024:.1f}" for t, kib, _ in m["samples"]),
        ]
    errs = [e for c in cases for e in c["console_errors"]] + (memory["console_errors"] if memory else [])
    if errs:
        lines += ["", "Console errors:", *[f"- {e}" for e in errs]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="field,points")
    ap.add_argument("--rates", default="0,60",
                    help="frames/s the lab makes in the throughput cases, comma-separated (0: as fast as it can)")
    ap.add_argument("--seconds", type=float, default=20.0, help="counting window per case")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of streaming before counting")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the memory run (0: none)")
    ap.add_argument("--memory-rate", type=float, default=30.0, help="frames/s of the lab in the memory run (0: max)")
    ap.add_argument("--memory-case", default="field")
    ap.add_argument("--out", default=str(RESULTS / "ui_streaming"), help="report path without suffix")
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--stats", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve is not None:
        serve_child(args.serve, args.stats)
        return 0

    from playwright.sync_api import sync_playwright
    from ui_latency import CHROMIUM_ARGS, chromium_path, loadavg

    out = Path(args.out)
    if not out.is_absolute():  # relative paths are taken under benchmarks/ (as the other benchmarks do)
        out = HERE / out
    out.parent.mkdir(parents=True, exist_ok=True)
    stats_path = out.parent / (out.name + "_server_stats.jsonl")
    stats_path.unlink(missing_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_before": loadavg(), "cpus": os.cpu_count(),
            "seconds": args.seconds, "warmup": args.warmup}
    cases, memory = [], None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            with Server(out.parent / (out.name + "_server.log"), stats_path) as server:
                for case, rate in [(c, float(r)) for c in args.cases.split(",") if c
                                   for r in args.rates.split(",") if r]:
                    r = measure_fps(browser, server.base, case, args.seconds, args.warmup, stats_path, rate)
                    cases.append(r)
                    s = r["server"]
                    print(f"{case:7s} lab {rate or 'max':>4} frames/s: {r['fps']:5.1f} fps ({r['updates']} updates / {r['seconds']:.1f} s), "
                          f"interval median {r['interval_median_ms']:.0f} ms, server pushes "
                          f"{s.get('sample_pushes_per_s', float('nan')):.1f}/s, browser apply "
                          f"{r['apply_ms_per_patch']:.1f} ms/patch, busy {100 * r['browser_busy_share']:.0f} %, "
                          f"load {r['load_after']}", flush=True)
            if args.minutes > 0:
                # a fresh server: memory freed after the full-speed cases would hide growth in its heap
                with Server(out.parent / (out.name + "_memory_server.log"), None) as server:
                    memory = memory_run(browser, server.base, server.pid, args.minutes, args.memory_rate,
                                        args.memory_case)
                print(f"memory: start {memory['start_mib']:.1f} MiB, end {memory['end_mib']:.1f} MiB, max "
                      f"{memory['max_mib']:.1f} MiB, growth {100 * memory['growth']:+.1f} %, "
                      f"{memory['fps']:.1f} fps in the page", flush=True)
        finally:
            browser.close()
    meta["load_after"] = loadavg()
    write_report(meta, cases, memory, out)
    print(f"wrote {out.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
