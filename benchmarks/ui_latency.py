#!/usr/bin/env python3
"""Latency of the live dashboard: a widget change → new sample data in the browser.

Every registered lab (and the test suite's tiny ``toy_decay`` lab, the floor of the UI machinery
itself) is served in-process (``explore.ui.serve(threaded=True)`` on 127.0.0.1 and a free port) and
opened in headless Chromium (the system one, driven by Playwright). On each page one parameter is
changed from the keyboard ``--changes`` times (default 30, after ``--warmup`` changes that are not
counted): an arrow key on a slider's handle or on a number input, alternating up and down so every
change is a real change. The parameter per lab is in :data:`LAB_PARAMS` (cheap to recompute, valid
both ways, changes the initial state); a lab not listed gets the first slider of its first group.

What is measured, in the page (``performance.now()``):

- **t0**: the keydown event is dispatched (a capturing listener on ``window``);
- **data**: the first Bokeh patch from the server after which a ``sample:*`` data source holds new
  data (a new source, or new values in an existing one). The hook wraps the document's
  ``apply_json_patch``, so this is the moment the patch has been applied to the models, before the
  canvas is painted;
- **paint**: two animation frames after *data* (the plot has been drawn once with the new data).

Between two changes the page is left to settle (no patch for ``SETTLE_MS``). The server's own cost
of the change is mostly the lab's first frame (the view previews the new initial state in a paused
worker); the script also times ``next(lab.frames())`` headless for the same values, so a lab whose
first frame is slow can be told apart from slow UI machinery.

Targets: median ≤ 100 ms, p95 ≤ 250 ms (data latency).

Usage (from the repository root)::

    .venv/bin/python benchmarks/ui_latency.py                      # every lab + toy_decay
    .venv/bin/python benchmarks/ui_latency.py --labs nlse,toy_decay --changes 50

Writes ``benchmarks/results/ui_latency.md`` and ``.json`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # toy_lab (registers toy_decay)

RESULTS = HERE / "results"
TARGET_MEDIAN_MS = 100.0
TARGET_P95_MS = 250.0
#: quiet time (no patch from the server) before the next change
SETTLE_MS = 250
#: the parameter changed on each lab's page: cheap to recompute, valid both ways, changes the samples.
#: (seed of the diffusion lab: every parameter there reruns the whole sampler before the first frame)
LAB_PARAMS = {
    "toy_decay": "a",
    "nlse": "amplitude",
    "kelvin_helmholtz": "velocity",
    "reaction_diffusion": "arms",
    "diffusion": "seed",
}

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# ----------------------------------------------------------------------------- shared helpers
def chromium_path() -> str:
    for candidate in [os.environ.get("EXPLORE_CHROMIUM", "")] + list(CHROMIUM_CANDIDATES):
        if candidate and os.path.exists(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("Chromium not found (apt-get install chromium); never `playwright install`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=10).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) with linear interpolation (numpy's default)."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def open_lab(browser, url: str, viewport=(1400, 1000)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(url)
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000)
    page.locator("button.bk-btn", has_text="Run").first.wait_for(timeout=60_000)
    return page, errors


def quiet_logs() -> None:
    for name in ("bokeh", "tornado", "panel", "param"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import param

        param.parameterized.logger.setLevel(logging.ERROR)
    except Exception:  # noqa: BLE001
        pass


# ----------------------------------------------------------------------------- in-page hooks
# Marks the DOM element that takes the keyboard for the widget titled `title` (a slider's handle or
# a number input) with data-bench-target, opening the accordion card it sits in.
TARGET_JS = """async (title) => {
  const doc = Bokeh.documents[0];
  const widgets = [...doc.all_models].filter(m => (m.type === 'Slider' || m.type === 'Spinner' ||
      /Slider$|Spinner$|Input$/.test(m.type || '')) && m.title === title);
  if (!widgets.length) return {error: `no widget titled ${title}`};
  const model = widgets[0];
  let view = Bokeh.index.find_one(model);
  // open the (collapsed) accordion card that holds it
  for (let v = view; v != null; v = v.parent) {
    if (v.model && v.model.collapsed === true) v.model.collapsed = false;
  }
  for (let i = 0; i < 100 && (view = Bokeh.index.find_one(model)) == null; i++)
    await new Promise(r => setTimeout(r, 50));
  const root = view.shadow_el || view.el;
  let el = root.querySelector('.noUi-handle');
  let kind = 'slider';
  if (el == null) { el = view.input_el || root.querySelector('input'); kind = 'input'; }
  document.querySelectorAll('[data-bench-target]').forEach(e => e.removeAttribute('data-bench-target'));
  el.setAttribute('data-bench-target', '1');
  return {kind, type: model.type, value: model.value, step: model.step, end: model.end ?? model.high ?? null};
}"""

# Installs the latency hook: keydown time, and the first patch after it that gives a sample:* source
# new data (a new source or changed values).
HOOK_JS = """() => {
  if (window.__bench) return true;
  const doc = Bokeh.documents[0];
  const B = window.__bench = {armed: false, t0: null, tData: null, tPaint: null, which: null,
                              baseline: new Map(), lastPatch: performance.now(), patches: 0};
  const sig = (m) => {
    let out = '', total = 0;
    for (const [k, v] of Object.entries(m.data)) {
      const a = (v && v.length && typeof v[0] === 'object') ? v[0] : v;
      let s = 0; const n = a ? a.length : 0; total += n;
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 256))) { const x = Number(a[i]); if (isFinite(x)) s += x * (i + 1); }
      out += `${k}:${n}:${s};`;
    }
    return total ? out : null;
  };
  B.snapshot = () => {
    const out = new Map();
    for (const [id, m] of doc._all_models)
      if (m.name && m.name.startsWith('sample:') && m.data) out.set(id, sig(m));
    return out;
  };
  B.arm = () => { B.baseline = B.snapshot(); B.t0 = null; B.tData = null; B.tPaint = null; B.which = null; B.armed = true; };
  window.addEventListener('keydown', () => { if (B.armed && B.t0 === null) B.t0 = performance.now(); }, true);
  const orig = doc.apply_json_patch.bind(doc);
  doc.apply_json_patch = function (patch, buffers) {
    const r = orig(patch, buffers);
    const now = performance.now();
    B.lastPatch = now; B.patches += 1;
    if (B.armed && B.t0 !== null && B.tData === null) {
      for (const [id, s] of B.snapshot()) {
        if (s !== null && B.baseline.get(id) !== s) {  // (an emptied source is not new data)
          B.tData = now; B.which = doc._all_models.get(id).name; B.armed = false;
          requestAnimationFrame(() => requestAnimationFrame(() => { B.tPaint = performance.now(); }));
          break;
        }
      }
    }
    return r;
  };
  return true;
}"""


def first_frame_ms(cls, name: str, values: list, repeat: int = 5) -> float:
    """Median time of ``next(lab.frames())`` (headless) over the alternating values of ``name``."""
    times = []
    for _ in range(repeat):
        for v in values:
            lab = cls(**{name: v})
            t = time.perf_counter()
            frames = lab.frames()
            next(frames)
            times.append(1e3 * (time.perf_counter() - t))
            frames.close()
    return statistics.median(times)


def pick_param(cls) -> str:
    """The generic choice: the first slider of the lab's first group (else its first number)."""
    from explore.ui.view import LabView

    import panel as pn

    view = LabView(cls(), poll=False)
    widgets = view.widgets
    order = [n for members in cls.groups.values() for n in members] + cls.parameter_names()
    for wanted in (pn.widgets.FloatSlider, pn.widgets.IntSlider, pn.widgets.FloatInput, pn.widgets.IntInput):
        for n in order:
            if n in widgets and isinstance(widgets[n], wanted):
                return n
    raise SystemExit(f"{cls.lab_name}: no slider or number input to change")


def measure_lab(browser, base: str, name: str, changes: int, warmup: int) -> dict:
    from explore.core import lab_classes
    from explore.ui.view import LabView

    cls = lab_classes()[name]
    pname = LAB_PARAMS.get(name) or pick_param(cls)
    widget = LabView(cls(), poll=False).widgets[pname]
    title = widget.name
    load0 = loadavg()
    page, errors = open_lab(browser, f"{base}/{name}")
    try:
        target = page.evaluate(TARGET_JS, title)
        if "error" in target:
            raise RuntimeError(f"{name}: {target['error']}")
        page.evaluate(HOOK_JS)
        el = page.locator("[data-bench-target]")
        el.wait_for(state="visible", timeout=10_000)
        el.focus()
        keys = ("ArrowRight", "ArrowLeft") if target["kind"] == "slider" else ("ArrowUp", "ArrowDown")
        if target.get("end") is not None and target["value"] + (target.get("step") or 1) > target["end"]:
            keys = keys[::-1]  # at the top of its range: down first
        data, paint, which, timeouts = [], [], set(), 0
        for i in range(warmup + changes):
            page.wait_for_function(f"() => performance.now() - window.__bench.lastPatch > {SETTLE_MS}",
                                   timeout=30_000, polling=25)
            page.evaluate("() => window.__bench.arm()")
            el.press(keys[i % 2])
            try:
                page.wait_for_function("() => window.__bench.tPaint !== null", timeout=30_000, polling=10)
            except Exception:
                timeouts += 1
                continue
            r = page.evaluate("() => ({t0: __bench.t0, tData: __bench.tData, tPaint: __bench.tPaint, which: __bench.which})")
            if i < warmup:
                continue
            data.append(r["tData"] - r["t0"])
            paint.append(r["tPaint"] - r["t0"])
            which.add(r["which"])
        final_value = page.evaluate(f"""() => {{ const m = [...Bokeh.documents[0].all_models].find(
            m => m.title === {json.dumps(title)}); return m ? m.value : null; }}""")
    finally:
        page.close()
    lo = getattr(cls(), pname)
    step = widget.step or 1
    alt = [lo, type(lo)(lo + step) if isinstance(lo, int) else lo + step]
    try:
        ff = first_frame_ms(cls, pname, alt)
    except Exception:  # the value one step up is not valid headless: report the default only
        ff = first_frame_ms(cls, pname, [lo])
    return {
        "lab": name, "param": pname, "widget": type(widget).__name__, "keys": list(keys),
        "changes": len(data), "timeouts": timeouts, "sources": sorted(which),
        "median_ms": statistics.median(data) if data else None,
        "p95_ms": percentile(data, 0.95) if data else None,
        "min_ms": min(data) if data else None, "max_ms": max(data) if data else None,
        "paint_median_ms": statistics.median(paint) if paint else None,
        "paint_p95_ms": percentile(paint, 0.95) if paint else None,
        "first_frame_ms": ff, "final_value": final_value,
        "load_before": load0, "load_after": loadavg(),
        "console_errors": errors[:5],
        "samples_ms": [round(x, 2) for x in data],
    }


def write_report(rows: list[dict], meta: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "labs": rows}, indent=2))

    def f(x):
        return "–" if x is None else f"{x:.0f}"

    lines = [
        "# UI latency: widget change → new sample data in the browser",
        "",
        f"{meta['date']} · load average {meta['load_before']} → {meta['load_after']} · {meta['cpus']} CPUs · "
        f"Chromium headless, server in-process (threaded) · {meta['changes']} changes per lab after "
        f"{meta['warmup']} warm-up",
        "",
        f"Targets: median ≤ {TARGET_MEDIAN_MS:.0f} ms, p95 ≤ {TARGET_P95_MS:.0f} ms (data).",
        "",
        "| lab | parameter (widget, keys) | n | data median (ms) | data p95 (ms) | min–max (ms) | paint median / p95 (ms) | first frame headless (ms) | target | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = (r["median_ms"] is not None and r["median_ms"] <= TARGET_MEDIAN_MS and r["p95_ms"] <= TARGET_P95_MS)
        lines.append(
            f"| {r['lab']} | {r['param']} ({r['widget']}, {'/'.join(r['keys'])}) | {r['changes']}"
            f"{' (' + str(r['timeouts']) + ' timed out)' if r['timeouts'] else ''} | {f(r['median_ms'])} | "
            f"{f(r['p95_ms'])} | {f(r['min_ms'])}–{f(r['max_ms'])} | {f(r['paint_median_ms'])} / "
            f"{f(r['paint_p95_ms'])} | {r['first_frame_ms']:.1f} | {'met' if ok else 'MISSED'} | "
            f"{r['load_before'][0]} → {r['load_after'][0]} |")
    lines += [
        "",
        "- **data**: from the keydown event (in-page `performance.now()`) to the first patch from the server "
        "after which a `sample:*` Bokeh data source holds new data (hook on `apply_json_patch`).",
        "- **paint**: two animation frames after that (the canvas has been drawn with the new data).",
        "- **first frame headless**: `next(lab.frames())` for the same values, no UI: the part of the latency "
        "that is the lab's own computation (the view previews the new initial state).",
        "- toy_decay (tests/toy_lab.py) is the floor of the UI machinery itself.",
    ]
    errs = [(r["lab"], e) for r in rows for e in r["console_errors"]]
    if errs:
        lines += ["", "Console errors:", *[f"- {lab}: {e}" for lab, e in errs]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--labs", default="", help="comma-separated lab names (default: every lab + toy_decay)")
    ap.add_argument("--changes", type=int, default=30, help="measured widget changes per lab (≥ 30)")
    ap.add_argument("--warmup", type=int, default=3, help="changes per lab before measuring")
    ap.add_argument("--out", default=str(RESULTS / "ui_latency"), help="report path without suffix")
    args = ap.parse_args(argv)

    quiet_logs()
    import toy_lab  # noqa: F401  (registers toy_decay)

    import explore.labs  # noqa: F401
    from explore.core import lab_names
    from explore.ui import serve
    from playwright.sync_api import sync_playwright

    quiet_logs()  # (again: importing HoloViews sets param's logging up)
    names = [n for n in args.labs.split(",") if n] or [n for n in lab_names() if n != "toy_decay"] + ["toy_decay"]
    port = free_port()
    thread = serve(port=port, threaded=True, verbose=False, labs=names)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + f"/{names[0]}")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_before": loadavg(), "cpus": os.cpu_count(),
            "changes": args.changes, "warmup": args.warmup}
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            try:
                for name in names:
                    r = measure_lab(browser, base, name, args.changes, args.warmup)
                    rows.append(r)
                    print(f"{name:20s} {r['param']:10s} n={r['changes']:3d} median {r['median_ms']:7.1f} ms  "
                          f"p95 {r['p95_ms']:7.1f} ms  paint {r['paint_median_ms']:7.1f} ms  first frame "
                          f"{r['first_frame_ms']:6.1f} ms  load {r['load_after']}", flush=True)
            finally:
                browser.close()
    finally:
        thread.stop()
    meta["load_after"] = loadavg()
    out = Path(args.out)
    if not out.is_absolute():  # relative paths are taken under benchmarks/ (as the other benchmarks do)
        out = HERE / out
    write_report(rows, meta, out)
    print(f"wrote {out.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
