"""Faults and privacy in real Chromium: missing backends, a missing WASM binary, and no image leaving the page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import CHROMIUM_FLAGS, Pyodide, chromium_path

from pyapp import assets

SAMPLES = assets.VENDOR / "samples"


@pytest.mark.parametrize("use_sw", [True, False], ids=["service-worker", "no-service-worker"])
def test_no_image_bytes_leave_the_page(browser: Any, server_url: str, use_sw: bool) -> None:
    """From page load to results, every request is a same-origin GET of a file of the build; none has a body.

    (This also caught PyScript preloading its default interpreter from a CDN at boot.)
    """
    info = json.loads((assets.VENDOR / "build.json").read_text())
    known = {server_url + f for f in [*info["files"], *info["shell"], "vendor/build.json", "sw.js"]}
    context = browser.new_context()
    seen: list[Any] = []
    context.on("request", lambda request: seen.append(request))
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.goto(server_url + ("?backend=wasm" if use_sw else "?backend=wasm&nosw"))
    page.wait_for_selector("body[data-ready='true']")
    page.set_input_files("#file-input", [SAMPLES / "chelsea.png", SAMPLES / "rocket.jpg"])
    page.wait_for_function("document.querySelectorAll('#results .result.done').length === 2")
    photo = (SAMPLES / "chelsea.png").read_bytes()
    for request in seen:
        url = request.url.split("?")[0]
        assert request.method == "GET", (request.method, request.url)
        assert request.post_data_buffer is None, request.url
        assert url.startswith(("blob:", "data:")) or url in known or url == server_url, f"unexpected {request.url}"
        assert photo[:64].hex() not in request.url
    context.close()


#: No GPU and no software rasteriser: Chromium then has no WebGL at all (OffscreenCanvas included).
NO_WEBGL = [f for f in CHROMIUM_FLAGS if "swiftshader" not in f] + ["--disable-gpu", "--disable-software-rasterizer"]


def test_webgl_unavailable_falls_back_to_wasm_with_reason(playwright: Any, server_url: str) -> None:
    """Without WebGL, pyapp.init skips it, says why, and runs on WASM."""
    no_gl = playwright.chromium.launch(executable_path=chromium_path(), args=NO_WEBGL)
    try:
        page = no_gl.new_page()
        page.goto(server_url + "__tests__/harness.html")
        page.evaluate("() => harnessReady")
        got = Pyodide(page).run(
            """
            import pyapp
            rt = await pyapp.init(backends=("webgl", "wasm", "cpu"))
            __value__ = [rt.backend, rt.rejected]
            """
        )
        assert got[0] == "wasm"
        assert got[1]["webgl"] == "WebGL is unavailable (no WebGL context could be created)"
    finally:
        no_gl.close()


def test_app_without_webgl_shows_why_and_classifies(playwright: Any, server_url: str) -> None:
    """The app asked for WebGL in a browser without it: its worker starts on WASM and the page says why."""
    no_gl = playwright.chromium.launch(executable_path=chromium_path(), args=NO_WEBGL)
    try:
        page = no_gl.new_page()
        page.set_default_timeout(180_000)
        page.goto(server_url + "?backend=webgl")
        page.wait_for_selector("body[data-ready='true']")
        assert page.evaluate("document.body.dataset.backend") == "wasm"
        assert "webgl: WebGL is unavailable" in page.inner_text("#backend-notes")
        page.set_input_files("#file-input", [SAMPLES / "chelsea.png"])
        page.wait_for_selector("#results .result.done")
    finally:
        no_gl.close()


def test_missing_wasm_binary_falls_through_to_next_backend(browser: Any, server_url: str) -> None:
    """The TF.js WASM binaries answer 404: init reports the WASM failure and starts the next backend."""
    context = browser.new_context()
    page = context.new_page()
    page.route(
        "**/*.wasm",
        lambda route: (
            route.fulfill(status=404, body="gone") if "/vendor/tfjs/" in route.request.url else route.continue_()
        ),
    )
    page.goto(server_url + "__tests__/harness.html")
    page.evaluate("() => harnessReady")
    got = Pyodide(page).run(
        """
        import pyapp
        rt = await pyapp.init(backends=("wasm", "cpu"))
        __value__ = [rt.backend, rt.rejected]
        """
    )
    assert got[0] == "cpu"
    assert "wasm" in got[1]
    assert got[1]["wasm"]
    context.close()
