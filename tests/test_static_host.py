"""The exported site (``serve.py build --out``) on a plain static host that sends no special headers:
the service worker makes the page cross-origin isolated (one reload, never a loop); without it the app and
the playground run in the compatibility mode (no SharedArrayBuffer); a boot stage that breaks or stalls is
named on the page with its cause, and Retry recovers."""

from __future__ import annotations

import http.server
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import app_results, assert_images_shown_and_released

import pyapp_build
import serve

READY = "body[data-ready='true'], body[data-failed='true']"


@pytest.fixture(scope="module")
def site(built: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static site, exported by the command a user runs."""
    out = tmp_path_factory.mktemp("static") / "site"
    assert serve.main(["build", "--out", str(out)]) == 0
    assert (out / "index.html").is_file()
    return out


#: The paths the plain hosts were asked for (GET), in order; a test clears it first.
REQUESTS: list[str] = []


class PlainHandler(http.server.SimpleHTTPRequestHandler):
    """Python's own static file server, as a user would start it: no COOP, COEP, CSP or CORP headers.

    ``stall`` names paths that are answered never (a stalled download).
    """

    stall: frozenset[str] = frozenset()

    def do_GET(self) -> None:
        REQUESTS.append(self.path.split("?")[0])
        if self.path.split("?")[0] in self.stall:
            time.sleep(60)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class PlainServer(http.server.ThreadingHTTPServer):
    """``http.server``'s threading server; a browser that drops a connection mid-file (a test closing its page)
    is not printed as a server error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _serve(directory: Path, stall: frozenset[str] = frozenset()) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = type("Handler", (PlainHandler,), {"stall": stall})
    server = PlainServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(directory)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"


@pytest.fixture(scope="module")
def plain_host(site: Path) -> Iterator[str]:
    server, url = _serve(site)
    yield url
    server.shutdown()
    server.server_close()


def _open(browser: Any, url: str) -> tuple[Any, Any, list[str], list[str]]:
    """A fresh context at ``url``; returns it, the page, its uncaught errors and its main-frame navigations."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(180_000)
    errors: list[str] = []
    navigations: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url))
    page.goto(url)
    page.wait_for_selector(READY)
    return context, page, errors, navigations


def test_headerless_host_gets_isolation_from_the_service_worker_with_one_reload(browser: Any, plain_host: str) -> None:
    """First visit: one reload, then crossOriginIsolated (threads) and the samples classified; a repeat visit
    reloads no more. The host compresses nothing, so the service worker fetches the build's own copies
    (written by ``build --out``) and decodes them itself: ``X.br`` for files of 512 KB and more (with the
    brotli decoder, itself fetched as its gzip copy), ``X.gz`` for the rest."""
    REQUESTS.clear()
    context, page, errors, navigations = _open(browser, plain_host + "?backend=wasm")
    assert page.evaluate("document.body.dataset.failed") is None, page.inner_text("#boot")
    assert len(navigations) == 2, navigations  # the first load, and the one reload
    assert page.evaluate("crossOriginIsolated && typeof SharedArrayBuffer === 'function'") is True
    assert page.evaluate("document.body.dataset.mode") == "isolated"
    assert "Cross-origin isolated" in page.inner_text("#mode")
    page.click("#sample-button")
    results = app_results(page, 5)
    assert all("done" in r["state"] for r in results), results
    assert {r["name"]: r["top1"] for r in results}["chelsea.png"] == "Neutral"
    for rel, copy in (
        ("vendor/pyodide/pyodide.asm.wasm", ".br"),
        ("vendor/pyodide/python_stdlib.zip", ".br"),
        ("vendor/tfjs/tf.min.js", ".br"),
        ("vendor/brotli/brotli_dec_wasm_bg.wasm", ".gz"),
        ("models/nsfw-mobilenet-v2/uint8/model.json", ".gz"),
        ("vendor/tfjs/tf-backend-wasm.min.js", ".gz"),
        (f"vendor/wheels/{pyapp_build.wheel_name()}", ".br"),  # stored: sources and bytecode, compressed whole
    ):
        got = [r for r in REQUESTS if r.startswith(f"/{rel}")]
        assert got == [f"/{rel}{copy}"], (rel, got)
    # A file with no copies (build.json's no_copies: a deflated wheel) is asked for as it is, without a 404 for a
    # copy first. The boot needs none of them, so the page asks for one, as the playground does for its packages.
    no_copy = page.evaluate("fetch('vendor/build.json').then((r) => r.json()).then((info) => info.no_copies[0])")
    assert no_copy.endswith(".whl"), no_copy
    assert page.evaluate("async (rel) => (await fetch(rel)).status", no_copy) == 200
    assert [r for r in REQUESTS if r.startswith(f"/{no_copy}")] == [f"/{no_copy}"], REQUESTS
    navigations.clear()
    page.goto(plain_host + "?backend=wasm")
    page.wait_for_selector(READY)
    assert len(navigations) == 1, navigations
    assert page.evaluate("crossOriginIsolated") is True
    assert errors == []
    context.close()


def test_without_isolation_the_app_runs_in_the_compatibility_mode(browser: Any, plain_host: str) -> None:
    """No service worker and no headers: no SharedArrayBuffer at all; the app says so and still classifies."""
    context, page, errors, navigations = _open(browser, plain_host + "?nosw&backend=wasm")
    assert page.evaluate("document.body.dataset.failed") is None, page.inner_text("#boot")
    assert len(navigations) == 1
    assert page.evaluate("crossOriginIsolated") is False
    assert page.evaluate("document.body.dataset.mode") == "compat"
    assert "Compatibility mode" in page.inner_text("#mode")
    assert "?nosw" in page.inner_text("#mode")
    page.click("#sample-button")
    results = app_results(page, 5)
    assert all("done" in r["state"] for r in results), results
    assert {r["name"]: r["top1"] for r in results}["chelsea.png"] == "Neutral"
    assert assert_images_shown_and_released(page, "#results img.thumb") == 5, "blob URLs revoked here too"
    assert errors == []
    context.close()


@pytest.mark.parametrize("query", ["", "?nosw"], ids=["isolated-by-service-worker", "compatibility"])
def test_playground_runs_a_cell_on_a_headerless_host(browser: Any, plain_host: str, query: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(180_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if not query:
        # The app page installs the service worker (first visit, one reload); the playground then is under it.
        page.goto(plain_host + "?backend=wasm")
        page.wait_for_selector(READY)
    page.goto(plain_host + "playground.html" + query)
    page.wait_for_selector("body[data-ready='true'], body[data-failed='true']")
    assert page.evaluate("document.body.dataset.failed") is None, page.inner_text("#env-status")
    assert page.evaluate("document.body.dataset.mode") == ("compat" if query else "isolated")
    page.fill("#editor", "import numpy as np\nprint('sum', int(np.arange(5).sum()))\nnp.ones((2, 2)).shape")
    page.click("#run")
    page.wait_for_selector("#output .cell[data-state='ok']")
    text = page.inner_text("#output .cell")
    assert "sum 10" in text
    assert "(2, 2)" in text
    assert errors == []
    context.close()


def test_a_compressed_copy_that_does_not_decode_to_its_file_is_dropped_for_the_next(
    browser: Any, site: Path, tmp_path: Path
) -> None:
    """The service worker checks what it decodes against build.json's sha256: a truncated brotli copy (a
    decode error) and another file's brotli copy (decodes, to the wrong bytes) are dropped for the gzip
    copy; a broken gzip copy too, for the file itself. The app boots and classifies as if nothing happened."""
    dest = _broken_copy(site, tmp_path / "site")
    wasm, stdlib, tf = "vendor/pyodide/pyodide.asm.wasm", "vendor/pyodide/python_stdlib.zip", "vendor/tfjs/tf.min.js"
    _rewrite(dest / f"{wasm}.br", (site / f"{wasm}.br").read_bytes()[:-5000])
    _rewrite(dest / f"{stdlib}.br", (site / f"{tf}.br").read_bytes())
    _rewrite(dest / f"{tf}.br", b"not brotli")
    _rewrite(dest / f"{tf}.gz", b"not gzip either")
    server, url = _serve(dest)
    REQUESTS.clear()
    try:
        context, page, errors, _ = _open(browser, url + "?backend=wasm")
        assert page.evaluate("document.body.dataset.failed") is None, page.inner_text("#boot")
        page.click("#sample-button")
        results = app_results(page, 5)
        assert all("done" in r["state"] for r in results), results
        assert errors == []
        context.close()
    finally:
        server.shutdown()
        server.server_close()
    for rel, asked in (
        (wasm, [".br", ".gz"]),
        (stdlib, [".br", ".gz"]),
        (tf, [".br", ".gz", ""]),
    ):
        got = [r.removeprefix(f"/{rel}") for r in REQUESTS if r.startswith(f"/{rel}")]
        assert got == asked, (rel, got)


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()  # a hard link to the exported site's file
    path.write_bytes(data)


# --------------------------------------------------------------------------- broken boot stages


def _broken_copy(site: Path, dest: Path, remove: tuple[str, ...] = (), replace: dict[str, str] | None = None) -> Path:
    """A copy of the site (hard links: cheap) with files removed or replaced."""
    shutil.copytree(site, dest, copy_function=os.link)
    for rel in remove:
        (dest / rel).unlink()
        for sibling in (dest / f"{rel}.br", dest / f"{rel}.gz"):
            sibling.unlink(missing_ok=True)
    for rel, text in (replace or {}).items():
        (dest / rel).unlink()
        (dest / rel).write_text(text)
    return dest


def _boot_error(page: Any) -> tuple[str, str]:
    page.wait_for_selector("body[data-failed='true']")
    assert page.is_visible("#boot-error")
    assert page.is_visible("#boot-retry")
    return page.evaluate("document.body.dataset.failedStage"), page.inner_text("#boot-error-message")


@pytest.mark.parametrize(
    ("remove", "replace", "stage", "cause"),
    [
        (("vendor/build.json",), {}, "Build information", "HTTP 404"),
        # Named by the worker as it happens (Pyodide itself never settles), not by the page's stall bound.
        (("vendor/pyodide/pyodide.asm.wasm",), {}, "Python runtime", "Pyodide's pyodide.asm.wasm answered HTTP 404"),
        ((), {"js/tfjs.js": "throw new Error('tfjs.js is broken on purpose');"}, "Python runtime", "on purpose"),
        ((), {"app.py": "raise RuntimeError('app.py is broken on purpose')"}, "Python runtime", "app.py stopped"),
    ],
    ids=["no-build-info", "no-pyodide-wasm", "throwing-script", "throwing-python"],
)
def test_a_broken_boot_stage_is_named_with_its_cause(
    browser: Any,
    site: Path,
    tmp_path: Path,
    remove: tuple[str, ...],
    replace: dict[str, str],
    stage: str,
    cause: str,
) -> None:
    broken = _broken_copy(site, tmp_path / "site", remove, replace)
    server, url = _serve(broken)
    try:
        context, page, _, _ = _open(browser, url + "?nosw&backend=wasm&stall_ms=15000")
        got_stage, message = _boot_error(page)
        assert got_stage.startswith(stage), (got_stage, message)
        assert cause in message, message
        assert message.startswith(got_stage + " failed: ")
        context.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_blocked_worker_is_named(browser: Any, plain_host: str) -> None:
    """A browser that refuses to start workers (policy, extension): the Python stage fails with the reason."""
    context = browser.new_context()
    context.add_init_script(
        "globalThis.Worker = class { constructor() { "
        "throw new DOMException('workers are blocked', 'SecurityError'); } };"
    )
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(plain_host + "?nosw&backend=wasm")
    stage, message = _boot_error(page)
    assert stage.startswith("Python runtime"), (stage, message)
    assert "worker" in message.lower(), message
    context.close()


def test_a_stalled_download_is_named(browser: Any, site: Path) -> None:
    """pyodide.asm.wasm is never answered: after the stall limit the stage is named, not left spinning."""
    server, url = _serve(site, stall=frozenset({"/vendor/pyodide/pyodide.asm.wasm"}))
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(url + "?nosw&backend=wasm&stall_ms=5000")
        stage, message = _boot_error(page)
        assert stage.startswith("Python runtime"), (stage, message)
        assert "no progress for 5 s" in message
    finally:
        context.close()
        server.shutdown()
        server.server_close()


def test_retry_boots_once_the_host_is_fixed(browser: Any, site: Path, tmp_path: Path) -> None:
    broken = _broken_copy(site, tmp_path / "site", remove=("vendor/pyodide/pyodide.asm.wasm",))
    server, url = _serve(broken)
    try:
        context, page, _, _ = _open(browser, url + "?nosw&backend=wasm&stall_ms=15000")
        _boot_error(page)
        os.link(site / "vendor/pyodide/pyodide.asm.wasm", broken / "vendor/pyodide/pyodide.asm.wasm")
        page.click("#boot-retry")
        page.wait_for_selector("body[data-ready='true']")
        page.set_input_files("#file-input", [site / "vendor/samples/chelsea.png"])
        assert app_results(page, 1)[0]["top1"] == "Neutral"
        context.close()
    finally:
        server.shutdown()
        server.server_close()
