"""Real-browser fixtures: headless Debian Chromium driven by Playwright, and a server on 127.0.0.1.

The browser is the system one (``apt-get install chromium``; never ``playwright install``). Without
it the browser tests skip with the reason, except in CI (``CI=true``), where they fail instead.
Screenshots go to ``test-artifacts/`` (or ``$EXPLORE_ARTIFACTS``).
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # toy_lab

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("EXPLORE_ARTIFACTS", ROOT / "test-artifacts"))


def chromium_path() -> str | None:
    env = os.environ.get("EXPLORE_CHROMIUM")
    for candidate in ([env] if env else []) + list(CHROMIUM_CANDIDATES):
        if candidate and os.path.exists(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    return found


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but the browser tests cannot run: {reason}")
    pytest.skip(reason)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium (Playwright ``Browser``) for the whole session."""
    path = chromium_path()
    if path is None:
        _unavailable("Chromium is not installed (apt-get install chromium); browser tests skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    """``explore.ui.serve`` in a thread of this process on 127.0.0.1; yields its base URL."""
    import urllib.request

    import toy_lab  # noqa: F401  (registers toy_decay)
    from explore.ui import serve

    port = free_port()
    thread = serve(port=port, threaded=True, verbose=False)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=10).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield url
    thread.stop()
    thread.join(10)


class Watched:
    """A page plus the console errors and page errors it produced."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))


@pytest.fixture
def context(chromium):
    ctx = chromium.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True,
                               permissions=["clipboard-read", "clipboard-write"])
    yield ctx
    ctx.close()


@pytest.fixture
def open_page(context, server):
    """``open_page(path)`` → a :class:`Watched` page loaded and connected (Bokeh document ready)."""
    def open_(path: str, ready: str | None = "Run") -> Watched:
        page = context.new_page()
        watched = Watched(page)
        page.goto(server + path)
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=30_000)
        if ready:
            page.locator("button.bk-btn", has_text=ready).first.wait_for(timeout=30_000)
        return watched
    return open_


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
