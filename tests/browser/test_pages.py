"""Every registered lab in a real page: loads cleanly, streams, pauses/steps/resets, follows the URL,
exports netCDF, survives bad input; 20 sessions at once; closed pages stop their workers."""
from __future__ import annotations

import io
import re
import threading
import time
from urllib.parse import parse_qs, urlparse

import param
import pytest
import xarray as xr

import toy_lab  # noqa: F401  (registers toy_decay before the registry is read)
from conftest import Watched, screenshot
from explore.core import lab_classes, lab_names


#: extra URL query making a lab's run long enough to watch it stream (default: the lab's preset)
STREAM_QUERY = {"toy_decay": "delay=0.02&n_frames=100"}

# a signature of every sample source in the page (changes whenever its data do)
SAMPLES_JS = """() => {
  const out = {};
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (!m.name || !m.name.startsWith('sample:') || !m.data) continue;
    let sig = '';
    for (const [k, v] of Object.entries(m.data)) {
      const a = (v && v.length && typeof v[0] === 'object') ? v[0] : v;   // an image column holds arrays
      let s = 0; const n = a ? a.length : 0;
      for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 500))) { const x = Number(a[i]); if (isFinite(x)) s += x * (i + 1); }
      sig += `${k}:${n}:${s.toPrecision(12)};`;
    }
    out[m.name] = sig;
  }
  return out;
}"""


def run_controls(page, label: str):
    """The Bokeh button labelled ``label`` (a lab's accordion may have a group of the same name)."""
    return page.locator("button.bk-btn").filter(has_text=re.compile(f"^[\\s\u00a0]*{re.escape(label)}[\\s\u00a0]*$")).first


def press(page, label: str) -> None:
    """Press a button from the keyboard (focus + Enter): that is what keyboard users do, and a
    hovered button's tooltip cannot intercept it."""
    button = run_controls(page, label)
    button.focus()
    button.press("Enter")


def samples(page) -> dict:
    return page.evaluate(SAMPLES_JS)


def no_errors(watched) -> None:
    assert watched.errors == [], "\n".join(watched.errors)


def progress_text(page) -> str:
    return page.locator(".markdown").filter(has_text="Ready.").or_(
        page.locator(".markdown").filter(has_text="frame ")).first.inner_text()


def shows_data_of(now: dict, reference: dict) -> bool:
    """Every sample source that holds data in ``reference`` holds data in ``now`` too: a cleared plot
    empties its sources (after a short delay) until the next frame fills them, and that moment is
    not a state of its own."""
    def filled(sig: str) -> bool:
        return any(int(col.split(":")[1]) > 0 for col in sig.split(";") if col)
    return bool(now) and all(filled(now.get(k, "")) for k, sig in reference.items() if filled(sig))


def wait_samples_change(page, before: dict, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = samples(page)
        if now and now != before:
            return now
        page.wait_for_timeout(50)
    raise AssertionError(f"the samples did not change (still {before})")


@pytest.mark.parametrize("name", lab_names())
def test_lab_page_loads_and_streams(open_page, name):
    """The page of every lab loads without console errors, and Run streams frames into its plots."""
    watched = open_page(f"/{name}?{STREAM_QUERY.get(name, '')}")
    page = watched.page
    seen = [samples(page)]
    press(page, "Run")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(seen) < 4 and not page.get_by_text("done in").count():
        now = samples(page)
        if now and now != seen[-1]:
            seen.append(now)
        page.wait_for_timeout(20)
    press(page, "Pause")
    assert len(seen) >= 3 or page.get_by_text("done in").count(), \
        f"only {len(seen) - 1} updates of the samples reached the page"
    screenshot(page, f"{name}-streaming")
    no_errors(watched)


@pytest.mark.parametrize("name", lab_names())
def test_lab_page_streams_pauses_steps_resets_and_exports(open_page, name):
    cls = lab_classes()[name]
    watched = open_page(f"/{name}?{STREAM_QUERY.get(name, '')}")
    page = watched.page
    # the page opens on its initial state (it showed empty plots until a parameter changed)
    initial = wait_samples_change(page, {})
    # (its line: next tick; the diffusion lab's frames count NFE)
    page.get_by_text(re.compile(rf"^frame \d+ · {cls.time_symbol()} = ")).wait_for(timeout=30_000)

    # Step from the initial state: one frame, the run waits paused
    press(page, "Step")
    first = wait_samples_change(page, initial)
    press(page, "Step")
    second = wait_samples_change(page, first)
    page.wait_for_timeout(300)
    assert samples(page) == second  # paused: nothing more arrives

    # Run streams: the samples' data change several times (then Pause: long runs need not finish)
    seen = [second]
    press(page, "Run")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(seen) < 5 and not page.get_by_text("done in").count():
        now = samples(page)
        if now != seen[-1]:
            seen.append(now)
        page.wait_for_timeout(20)
    press(page, "Pause")
    assert len(seen) >= 4 or page.get_by_text("done in").count(), \
        f"only {len(seen) - 1} updates of the samples reached the page in 30 s"
    screenshot(page, f"{name}-after-run")

    # export: a readable netCDF file of this run, the plots as one PNG, the code on the clipboard
    with page.expect_download(timeout=30_000) as info:
        press(page, "netCDF")
    assert info.value.suggested_filename == f"{name}.nc"
    ds = xr.open_dataset(io.BytesIO(open(info.value.path(), "rb").read()), engine="h5netcdf")
    assert ds.attrs["lab"] == name and ds.sizes["step"] >= 3
    with page.expect_download(timeout=30_000) as info:
        press(page, "PNG")
    png = open(info.value.path(), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    press(page, "Copy code")
    page.get_by_text("Copied to the clipboard.").wait_for(timeout=5_000)
    code = page.evaluate("() => navigator.clipboard.readText()")
    assert f"{cls.__name__}(" in code and "lab.run()" in code

    # Reset returns to the preset and shows its initial state again
    paused = samples(page)
    press(page, "Reset")  # (the preset's values: not the link's, so not the state the page opened on)
    deadline = time.monotonic() + 20
    reset = samples(page)
    while time.monotonic() < deadline and (reset == paused or not shows_data_of(reset, initial)):
        page.wait_for_timeout(50)
        reset = samples(page)
    assert reset != paused and set(initial) <= set(reset) and shows_data_of(reset, initial), reset
    page.wait_for_timeout(500)
    assert samples(page) == reset  # its initial state, still: nothing runs
    no_errors(watched)


@pytest.mark.parametrize("name", [n for n in lab_names() if len(lab_classes()[n].presets) >= 2])
def test_preset_from_url_and_url_follows_widgets(open_page, name):
    cls = lab_classes()[name]
    presets = list(cls.presets)
    target = presets[-1]
    watched = open_page(f"/{name}?preset={target}")
    page = watched.page
    select = page.locator("select").first
    assert select.input_value() == target
    # the page's values are the preset's: the URL carries no other parameter
    query = parse_qs(urlparse(page.url).query)
    assert query.get("preset") == [target] and len(query) == 1, page.url

    # a widget change re-renders and is written to the URL
    select.select_option(presets[0])
    page.wait_for_function(f"() => window.location.search.includes('preset={presets[0]}')", timeout=10_000)
    press(page, "Step")
    wait_samples_change(page, {})
    no_errors(watched)


def _bounded_number(cls) -> tuple[str, float] | None:
    for p in cls.parameter_names():
        par = cls.param[p]
        if isinstance(par, param.Number) and not isinstance(par, param.Integer) and par.bounds \
                and par.bounds[1] is not None:
            return p, par.bounds[1] * 10 + 1
    return None


@pytest.mark.parametrize("name", lab_names())
def test_bad_value_in_link_shows_alert_and_server_serves_on(open_page, name):
    bad = _bounded_number(lab_classes()[name])
    if bad is None:
        pytest.skip(f"{name} has no bounded number")
    p, value = bad
    watched = open_page(f"/{name}?{p}={value}")
    alert = watched.page.get_by_text("could not be applied")
    alert.wait_for(timeout=10_000)
    assert p in alert.inner_text()
    # the link is rewritten to what the page shows: the ignored value leaves the address bar
    watched.page.wait_for_function(f"() => !new URLSearchParams(window.location.search).has('{p}')",
                                   timeout=10_000)
    other = open_page(f"/{name}")  # the same server keeps serving
    assert other.page.get_by_text("could not be applied").count() == 0
    no_errors(other)


#: marks the text input of the number widget titled ``title`` (opening its accordion card) with
#: data-explore-target; returns the widget's value
NUMBER_INPUT_JS = """async (title) => {
  const model = [...Bokeh.documents[0].all_models].find(m => /Input$|Spinner$/.test(m.type || '') && m.title === title);
  if (!model) return null;
  let view = Bokeh.index.find_one(model);
  for (let v = view; v != null; v = v.parent) if (v.model && v.model.collapsed === true) v.model.collapsed = false;
  for (let i = 0; i < 100 && (view = Bokeh.index.find_one(model)) == null; i++) await new Promise(r => setTimeout(r, 50));
  const el = view.input_el || (view.shadow_el || view.el).querySelector('input');
  el.setAttribute('data-explore-target', '1');
  return model.value;
}"""


def test_a_typed_value_that_its_parameter_refuses_is_named_and_undone(open_page):
    """dt = 0 typed into its input (dt must be > 0) raised while Panel applied the edit: the error went to
    the server's log only, and the input went on showing a value the lab did not have (a run used the
    old one). The page now says why, and the input shows the lab's value again."""
    watched = open_page("/reaction_diffusion?N=32")
    page = watched.page
    before = page.evaluate(NUMBER_INPUT_JS, "Dt")
    assert before == 0.1
    target = page.locator("[data-explore-target]")
    target.fill("0")
    target.press("Enter")
    page.get_by_text("Invalid parameters").wait_for(timeout=10_000)
    message = page.get_by_text(re.compile(r"must be greater than 0.*not applied")).inner_text()
    assert "ReactionDiffusionLab.dt" in message
    page.wait_for_function("""() => [...Bokeh.documents[0].all_models].find(
        m => /Input$|Spinner$/.test(m.type || '') && m.title === 'Dt').value === 0.1""", timeout=10_000)
    assert target.input_value() in ("0.1", "0.10")
    # a negative value: the input's own lower limit kept -0.5 in the box while the lab kept 0.1, unsaid
    target.fill("-0.5")
    target.press("Enter")
    page.get_by_text(re.compile(r"not -0\.5.*not applied")).wait_for(timeout=10_000)
    page.wait_for_function("""() => [...Bokeh.documents[0].all_models].find(
        m => /Input$|Spinner$/.test(m.type || '') && m.title === 'Dt').value === 0.1""", timeout=10_000)
    page.wait_for_function("(el) => el.value.startsWith('0.1')", arg=target.element_handle(), timeout=10_000)
    press(page, "Step")  # the page still runs, with the lab's value
    wait_samples_change(page, {})
    no_errors(watched)


def test_a_cleared_number_box_shows_the_labs_value_or_nothing_never_nan(open_page):
    """A cleared number box read "NaN" (Panel sends an empty value to the browser as NaN): KH's
    density_thickness, which may be None, and a box of a parameter that needs a number, which refused the
    empty value. The first now shows an empty box (its placeholder); the second the lab's value again, with
    the alert naming the parameter."""
    watched = open_page("/kelvin_helmholtz?N=32")
    page = watched.page
    assert page.evaluate(NUMBER_INPUT_JS, "Density thickness") is None
    box = page.locator("[data-explore-target]")
    box.fill("0.05")
    box.press("Enter")
    # (the address follows the lab's values after the server has sent the box's: it says the edit was handled)
    page.wait_for_function("() => new URLSearchParams(window.location.search).get('density_thickness') === '0.05'",
                           timeout=10_000)
    box.fill("")
    box.press("Enter")
    page.wait_for_function("() => !new URLSearchParams(window.location.search).has('density_thickness')",
                           timeout=10_000)
    box.blur()
    assert box.input_value() == ""  # (it read "NaN")
    page.evaluate("(el) => el.removeAttribute('data-explore-target')", box.element_handle())
    dt = page.evaluate(NUMBER_INPUT_JS, "Dt")
    box = page.locator("[data-explore-target]")
    box.fill("")
    box.press("Enter")
    page.get_by_text(re.compile(r"dt needs a number; it stays")).wait_for(timeout=10_000)
    page.wait_for_function(f"(el) => el.value !== '' && Number(el.value) === {dt!r}", arg=box.element_handle(),
                           timeout=10_000)
    box.blur()
    assert "NaN" not in box.input_value() and float(box.input_value()) == dt
    no_errors(watched)


def test_a_crafted_link_injects_nothing_and_writes_no_file(open_page, tmp_path):
    """Values from a link are text in the page, never markup: an <img onerror> in a value ran its script
    (which could press Run), and a link could name the checkpoint file the run then overwrote. File
    names are not taken from links; a value true for a number, or an unknown theme, no longer kills the
    page with a traceback."""
    from urllib.parse import quote

    victim = tmp_path / "precious.txt"
    victim.write_text("user data")
    script = "<img src=x onerror=\"window.__injected=1\">"
    watched = open_page(f"/reaction_diffusion?N=32&seed={quote(script)}&checkpoint_file={quote(str(victim))}"
                        f"&d1=true&theme={quote(script)}")
    page = watched.page
    alert = page.get_by_text("could not be applied")
    alert.wait_for(timeout=10_000)
    text = alert.inner_text()
    assert "checkpoint_file ignored: file names are not taken from links" in text and "d1=True ignored" in text
    assert "<img" in text  # shown as text
    assert page.evaluate("() => window.__injected") is None
    assert page.locator(".bk-panel-models-markup-HTML img, .markdown img").count() == 0 or \
        page.evaluate("() => [...document.querySelectorAll('img')].every(i => !i.getAttribute('onerror'))")
    press(page, "Run")
    page.get_by_text("done in").wait_for(timeout=60_000)
    assert victim.read_text() == "user data"
    for path in ("/?theme=foo", f"/nlse?theme={quote(script)}"):
        other = open_page(path, ready="Run" if path.startswith("/nlse") else None)
        other.page.wait_for_timeout(500)
        assert other.page.get_by_text("Traceback").count() == 0 and other.page.get_by_text("KeyError").count() == 0
        assert other.page.evaluate("() => window.__injected") is None


def test_diverging_run_shows_alert(open_page):
    watched = open_page("/toy_decay?preset=blowup")
    page = watched.page
    press(page, "Run")
    page.get_by_text("The solver diverged").wait_for(timeout=15_000)
    press(page, "Reset")
    no_errors(watched)


def test_pause_keeps_state_and_a_parameter_change_stops_the_run(open_page):
    watched = open_page("/toy_decay?delay=0.05&n_frames=200&t_end=2.0")
    page = watched.page
    press(page, "Run")
    first = wait_samples_change(page, {})
    wait_samples_change(page, first)
    press(page, "Pause")
    page.wait_for_timeout(400)
    paused = samples(page)
    page.wait_for_timeout(500)
    assert samples(page) == paused
    press(page, "Run")  # resumes where it was
    wait_samples_change(page, paused)
    # a parameter changed from the keyboard during the run stops it, says so, and previews the new state
    handle = page.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.get_by_text("the run was stopped").wait_for(timeout=10_000)
    page.wait_for_function("() => new URLSearchParams(window.location.search).has('a')", timeout=10_000)
    page.get_by_text(re.compile(r"^frame 1 · t = 0.01 ")).wait_for(timeout=10_000)  # the new initial state
    shown = samples(page)
    page.wait_for_timeout(800)
    assert samples(page) == shown  # nothing streams any more
    no_errors(watched)


def test_dark_browser_gets_the_dark_theme(chromium, server):
    ctx = chromium.new_context(color_scheme="dark", viewport={"width": 1200, "height": 900})
    try:
        page = ctx.new_page()
        watched = Watched(page)
        page.goto(f"{server}/toy_decay")
        page.wait_for_function("() => window.location.search.includes('theme=dark')", timeout=30_000)
        run_controls(page, "Run").wait_for(timeout=30_000)
        rgb = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in re.findall(r"\d+", rgb)[:3]]
        assert sum(channels) / 3 < 80, f"the page background is {rgb} in a dark browser"
        screenshot(page, "toy_decay-dark")
        no_errors(watched)
    finally:
        ctx.close()


def test_gallery_lists_every_lab_with_thumbnails(open_page):
    watched = open_page("/", ready=None)
    page = watched.page
    for name, cls in lab_classes().items():
        page.get_by_role("link", name=cls.title or name, exact=True).wait_for(timeout=10_000)
    assert page.locator("svg[role=img]").count() >= 1
    screenshot(page, "gallery")
    no_errors(watched)


def _workers() -> int:
    return sum(t.name.startswith("explore-") and t.is_alive() for t in threading.enumerate())


#: seconds for every page of the sessions test to start its run and show it
SESSIONS_WAIT_S = 240
HAS_SAMPLE_JS = "() => Bokeh.documents.some(d => d.get_model_by_name('sample:u'))"


@pytest.mark.parametrize("sessions", [3, pytest.param(20, marks=pytest.mark.slow)])  # (20: 92 s, a load study)
def test_sessions_keep_their_own_runs_and_closing_stops_workers(chromium, server, sessions):
    """``sessions`` pages at once on one server: each runs with its own parameter, and closing the
    pages stops every worker thread within a few seconds (the server paces the streaming pages, so
    the clicks of the last pages still get through while the first ones stream)."""
    deadline = time.monotonic() + 15  # the pages of earlier tests are closed: their workers end
    while _workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    baseline = _workers()
    assert baseline == 0, "the closed pages of earlier tests left worker threads running"
    ctx = chromium.new_context(viewport={"width": 1200, "height": 900})
    pages = []
    try:
        for i in range(sessions):
            page = ctx.new_page()
            # long runs (~5 min): they must still be running when the last page has been opened and run
            page.goto(f"{server}/toy_decay?a={1 + i / 10:g}&delay=0.3&n_frames=1000&t_end=10.0")
            pages.append(page)
        for page in pages:
            run_controls(page, "Run").wait_for(timeout=60_000)
            press(page, "Run")
        # one deadline for all: on a loaded 2-core host 20 pages' first figures take minutes to build
        deadline = time.monotonic() + SESSIONS_WAIT_S
        while _workers() < baseline + sessions and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _workers() == baseline + sessions
        for i, page in enumerate(pages):  # each page keeps its own parameter ...
            assert parse_qs(urlparse(page.url).query)["a"] == [f"{1 + i / 10:g}"]
        waiting = set(range(sessions))  # ... and shows its own run
        while waiting and time.monotonic() < deadline:
            waiting -= {i for i in waiting if pages[i].evaluate(HAS_SAMPLE_JS)}
            time.sleep(0.5)
        assert not waiting, f"pages {sorted(waiting)} showed no frame of their runs in {SESSIONS_WAIT_S} s"
    finally:
        ctx.close()
    deadline = time.monotonic() + 8
    while _workers() > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _workers() == baseline, "closed pages left worker threads running"


# the frame (pixels) and ranges of the figure drawing each named data source, and its pixel aspect:
# pixels per unit of y over pixels per unit of x (1 when a unit of each is equally long on screen)
ASPECT_JS = """(names) => {
  const out = {};
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (!m.renderers || !m.x_range || !('inner_width' in m)) continue;
    for (const r of m.renderers) {
      const name = r.data_source && r.data_source.name;
      if (!names.includes(name)) continue;
      const xs = m.x_range.end - m.x_range.start, ys = m.y_range.end - m.y_range.start;
      out[name] = {frame: [m.inner_width, m.inner_height], span: [xs, ys],
                   pixel_aspect: (m.inner_height / ys) / (m.inner_width / xs)};
    }
  }
  return out;
}"""

#: samples drawn at their data's aspect, with the width / height of the field's domain (None: a cloud)
EQUAL_ASPECT = {
    "kelvin_helmholtz": {"sample:vorticity": 2.0, "sample:density": 2.0},  # the 2 × 1 box
    "reaction_diffusion": {"sample:u": 1.0, "sample:v": 1.0, "sample:phase_portrait": None},
}


@pytest.mark.parametrize("name", list(EQUAL_ASPECT))
def test_fields_and_phase_portraits_keep_their_datas_aspect(open_page, name):
    """A 2 × 1 field looks 2 × 1 and a square one square, filling its frame; the (u, v) phase portrait
    has equal axes, so a circle-like limit cycle is a circle. So on the first frame (HoloViews draws it)
    and after streaming (the data and ranges go straight into Bokeh)."""
    expected = EQUAL_ASPECT[name]
    watched = open_page(f"/{name}")
    page = watched.page
    press(page, "Step")
    shown = wait_samples_change(page, {})
    for stage in ("first frame", "streamed"):
        if stage == "streamed":
            press(page, "Run")
            shown = wait_samples_change(page, wait_samples_change(page, shown))
            press(page, "Pause")
            page.wait_for_timeout(500)
        measured = page.evaluate(ASPECT_JS, list(expected))
        assert set(measured) == set(expected), measured
        for source, domain in expected.items():
            m = measured[source]
            assert m["pixel_aspect"] == pytest.approx(1.0, rel=0.02), (stage, source, m)
            if domain is not None:  # the image fills its frame: the frame has the domain's shape
                assert m["frame"][0] / m["frame"][1] == pytest.approx(domain, rel=0.02), (stage, source, m)
                assert m["span"][0] / m["span"][1] == pytest.approx(domain, rel=0.02), (stage, source, m)
    screenshot(page, f"{name}-aspect")
    no_errors(watched)


DIAGNOSTICS_JS = """() => {
  const out = {};
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (!m.name || !m.name.startsWith('diagnostics:') || !m.data) continue;
    const v = Array.from(m.data.value || []);
    const finite = v.filter(Number.isFinite);
    out[m.name.slice(12)] = {rows: v.length, max_abs: finite.length ? Math.max(...finite.map(Math.abs)) : null,
                             min: finite.length ? Math.min(...finite) : null};
  }
  for (const doc of Bokeh.documents) for (const m of doc.all_models)
    if (m.renderers && m.title && m.title.text === 'Diagnostics')
      out['__scale__'] = m.y_scale.type;
  return out;
}"""


def _diagnostics(page) -> dict:
    return page.evaluate(DIAGNOSTICS_JS)


# the curves of the Diagnostics figure on screen (a replaced figure's models stay in the document)
SHOWN_DIAGNOSTICS_JS = """() => { const out = new Set();
  for (const doc of Bokeh.documents) for (const m of doc.all_models)
    if (m.renderers && m.title && m.title.text === 'Diagnostics' && Bokeh.index.find_one(m) != null)
      for (const r of m.renderers) { const name = r.data_source && r.data_source.name;
        if (name && name.startsWith('diagnostics:')) out.add(name.slice(12)); }
  return [...out].sort(); }"""

# the legend entries of the Diagnostics figure on screen
SHOWN_LEGEND_JS = """() => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
    if (m.renderers && m.title && m.title.text === 'Diagnostics' && Bokeh.index.find_one(m) != null)
      for (const side of [m.right, m.left, m.above, m.below, m.center])
        for (const l of side) if (l.items) return l.items.map(i => i.label.value);
  return null; }"""


def test_regime_is_named_and_the_diagnostics_y_axis_can_be_switched(open_page):
    """Reaction–diffusion (pattern decay): the regime is read by name as it changes and is not a curve;
    the Diagnostics y axis switches to each curve ÷ its largest |value| while the run streams (the rows
    keep coming, every curve peaks at 1) and to |value| on a log axis after it; a curve hidden from the
    legend stays hidden across the switch; the "moments" group shows those curves alone."""
    watched = open_page("/reaction_diffusion?preset=pattern_decay&t_end=300")
    page = watched.page
    press(page, "Run")
    page.get_by_text("regime: transient").wait_for(timeout=30_000)
    page.wait_for_function("() => Bokeh.documents.some(d => d.get_model_by_name('diagnostics:u_mean'))",
                           timeout=30_000)
    before = _diagnostics(page)
    assert "regime" not in before and {"u_mean", "u_kurtosis", "mutual_information"} <= set(before)
    assert before["__scale__"] == "LinearScale"

    page.get_by_role("button", name="÷ max |value|").click()
    assert not page.get_by_text("done in").count(), "the run ended before the switch: make it longer"
    page.get_by_text("regime: homogeneous_oscillation").wait_for(timeout=60_000)  # (pattern decay's end)
    page.get_by_text("done in").wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    after = _diagnostics(page)
    assert "regime" not in after
    rows = {k: v["rows"] for k, v in after.items() if k != "__scale__"}
    assert set(rows.values()) == {301}, rows  # every frame of the run, streamed after the switch too
    for key, v in after.items():
        if key != "__scale__" and v["max_abs"]:
            assert v["max_abs"] == pytest.approx(1.0, rel=1e-9), (key, v)

    # hide a curve as its legend entry does, then switch after the run
    page.evaluate("""() => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.data_source && m.data_source.name === 'diagnostics:u_kurtosis') m.visible = false; }""")
    page.wait_for_timeout(300)
    page.get_by_role("button", name="log |value|").click()
    page.wait_for_function("""() => Bokeh.documents.some(d => [...d.all_models].some(m => m.renderers && m.title
        && m.title.text === 'Diagnostics' && m.y_scale.type === 'LogScale'))""", timeout=10_000)
    page.wait_for_timeout(500)
    logged = _diagnostics(page)
    assert all(v["min"] is None or v["min"] > 0 for k, v in logged.items() if k != "__scale__"), logged
    assert logged["u_kurtosis"]["rows"] == 301
    hidden = page.evaluate("""() => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.data_source && m.data_source.name === 'diagnostics:u_kurtosis') return m.visible; }""")
    assert hidden is False
    assert "u_kurtosis" in page.evaluate(SHOWN_LEGEND_JS)  # (greyed: a click brings it back)
    screenshot(page, "reaction_diffusion-diagnostics-log")

    # one group of diagnostics alone, then all again
    assert page.evaluate(SHOWN_DIAGNOSTICS_JS) == sorted(k for k in logged if k != "__scale__")
    page.get_by_role("button", name="moments").click()
    moments = sorted(["u_mean", "u_variance", "u_kurtosis", "v_mean", "v_variance", "v_kurtosis"])
    page.wait_for_function(f"() => ({SHOWN_DIAGNOSTICS_JS})().join() === {','.join(moments)!r}", timeout=10_000)
    assert _diagnostics(page)["v_mean"]["rows"] == 301
    assert page.evaluate(SHOWN_LEGEND_JS) == ["u_mean", "u_variance", "u_kurtosis", "v_mean", "v_variance",
                                              "v_kurtosis"]
    page.mouse.move(0, 0)  # (no tooltip over the controls)
    screenshot(page, "reaction_diffusion-diagnostics-moments")
    page.get_by_role("button", name="all", exact=True).click()
    page.wait_for_function(f"() => ({SHOWN_DIAGNOSTICS_JS})().includes('mutual_information')", timeout=10_000)
    no_errors(watched)


# for each curve with a marker renderer for its isolated points: how many it draws, and whether shown
MARKERS_JS = """() => { const out = {};
  for (const doc of Bokeh.documents) for (const m of doc.all_models)
    if (m.name && m.name.startsWith('isolated:') && m.view && m.data_source.name)
      out[m.data_source.name] = {drawn: m.view.indices.count, rows: m.data_source.get_length(), visible: m.visible};
  return out; }"""


def test_a_value_without_neighbours_is_drawn_and_hides_with_its_curve(open_page):
    """A line cannot draw a point that has no finite neighbour: the diffusion lab's side-by-side errors
    exist at the last frame only, and were legend entries without a mark. They get a marker, shown
    and hidden with their curve; curves of many points get none."""
    watched = open_page("/diffusion?compare=euler&steps=6")
    page = watched.page
    press(page, "Run")
    page.get_by_text("done in").wait_for(timeout=60_000)
    page.wait_for_function("() => Bokeh.documents.some(d => d.get_model_by_name("
                           "'isolated:' + [...d.all_models].find(m => m.data_source && m.data_source.name "
                           "=== 'convergence:error_euler' && m.glyph && m.glyph.type === 'Line').id))",
                           timeout=10_000)
    markers = page.evaluate(MARKERS_JS)
    assert markers["convergence:error_euler"] == {"drawn": 1, "rows": 8, "visible": True}, markers
    assert markers["convergence:error"]["drawn"] == 0 and markers["convergence:error"]["rows"] == 8, markers
    page.evaluate("""() => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.data_source && m.data_source.name === 'convergence:error_euler' && m.glyph
            && m.glyph.type === 'Line') m.visible = false; }""")  # what its legend entry does
    page.wait_for_timeout(200)
    assert page.evaluate(MARKERS_JS)["convergence:error_euler"]["visible"] is False
    # the log axis has Explore's ticks (below)
    assert page.evaluate("""() => Bokeh.documents.some(d => [...d.all_models].some(m => m.title
        && m.title.text === 'Convergence' && m.left[0].ticker.type === 'CustomJSTicker'))""")
    no_errors(watched)


def test_log_axes_get_ticks_and_labels_over_any_span(context):
    """Bokeh's LogTicker puts linear ticks on a log axis spanning under two decades (1e-3 to 2e-2 had
    labels 0.005 ... 0.02 only), and its formatter labels a non-power by its rounded exponent. Explore's
    ticks: powers of ten over decades, 1-2-5 (or finer) within them, even steps on a short span; labels
    10⁻⁵ for powers, plain numbers otherwise."""
    from explore.ui.plots import LOG_TICK_LABELS_JS, LOG_TICKS_JS

    page = context.new_page()
    ticks = page.evaluate(f"""(spans) => spans.map(([start, end]) => {{
        const major = new Function('cb_data', {LOG_TICKS_JS!r})({{start, end}});
        const label = new Function('tick', 'index', 'ticks', {LOG_TICK_LABELS_JS!r});
        return [major, major.map((t, i) => label(t, i, major))]; }})""",
                          [[1e-3, 2e-2], [0.3, 1.2], [0.98, 1.02], [1e-14, 1e2], [2e-2, 1e-3], [-1, 1]])
    assert ticks[0] == [[1e-3, 2e-3, 5e-3, 1e-2, 2e-2], ["0.001", "0.002", "0.005", "0.01", "0.02"]]
    assert ticks[1] == [[0.3, 0.5, 0.7, 1], ["0.3", "0.5", "0.7", "1"]]
    assert ticks[2][0] == [0.98, 0.99, 1, 1.01, 1.02]
    assert ticks[3][0] == [10.0 ** e for e in range(-14, 3, 2)]
    assert ticks[3][1][:2] == ["10\u207b\u00b9\u2074", "10\u207b\u00b9\u00b2"] and ticks[3][1][-2:] == ["1", "10\u00b2"]
    assert ticks[4] == ticks[0]  # a reversed axis
    assert ticks[5] == [[], []]  # no log ticks on a range through zero
    page.close()
