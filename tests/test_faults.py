"""Faults, privacy and security in real Chromium: missing backends, a missing WASM binary, a lost WebGL
context, broken model files, the Content-Security-Policy, and no image leaving the page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import (
    CHROMIUM_FLAGS,
    CSP_PROBE_EXPECTED,
    Pyodide,
    app_results,
    chromium_path,
    model_variant_bytes,
)

import pyapp_build
import serve

SAMPLES = pyapp_build.VENDOR / "samples"


def _build_files_only(server_url: str) -> tuple[list[Any], Any]:
    """A request log for a context, and the check on it: from page load to results, every request is a
    same-origin GET of a file of the build; none has a body, none carries the photo."""
    info = json.loads((pyapp_build.VENDOR / "build.json").read_text())
    known = {server_url + f for f in [*info["files"], *info["shell"], "vendor/build.json", "sw.js"]}
    seen: list[Any] = []
    photo = (SAMPLES / "chelsea.png").read_bytes()

    def check() -> None:
        assert seen, "no request was seen"
        for request in seen:
            url = request.url.split("?")[0]
            assert request.method == "GET", (request.method, request.url)
            assert request.post_data_buffer is None, request.url
            assert url.startswith(("blob:", "data:")) or url in known or url == server_url, f"unexpected {request.url}"
            assert photo[:64].hex() not in request.url

    return seen, check


def test_no_image_bytes_leave_the_page(browser: Any, server_url: str) -> None:
    """From page load to results, through the service worker, every request is a same-origin GET of a file
    of the build; none has a body. (Without the service worker: the WebGL test below.)

    (This also caught PyScript preloading its default interpreter from a CDN at boot.)
    """
    context = browser.new_context()
    seen, check = _build_files_only(server_url)
    context.on("request", lambda request: seen.append(request))
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.goto(server_url + "?backend=wasm")
    page.wait_for_selector("body[data-ready='true']")
    page.set_input_files("#file-input", [SAMPLES / "chelsea.png", SAMPLES / "rocket.jpg"])
    page.wait_for_function("() => document.querySelectorAll('#results .result.done').length === 2")
    check()
    context.close()


#: No GPU and no software rasteriser: Chromium then has no WebGL at all (OffscreenCanvas included).
NO_WEBGL = [f for f in CHROMIUM_FLAGS if "swiftshader" not in f] + ["--disable-gpu", "--disable-software-rasterizer"]


def test_webgl_unavailable_falls_back_to_wasm_with_reason(playwright: Any, server_url: str) -> None:
    """Without WebGL, pyapp.init skips it, says why, and runs on WASM."""
    no_gl = playwright.chromium.launch(executable_path=chromium_path(), args=NO_WEBGL)
    try:
        got = Pyodide.boot(no_gl.new_page(), server_url).run(
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
    got = Pyodide.boot(page, server_url).run(
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


# ------------------------------------------------------------------------ the app under faults


def _queue(page: Any, names: list[str]) -> None:
    page.evaluate(
        """async (names) => {
            const files = await Promise.all(names.map(async (n, i) =>
                new File([await (await fetch('vendor/samples/' + n)).blob()], `${i}-${n}`)));
            window.pyapp.add_files(files);
        }""",
        names,
    )


def _python_worker(page: Any) -> Any:
    """The app's Python worker (the one that has TF.js)."""
    for worker in page.workers:
        if worker.evaluate("typeof tf !== 'undefined' && typeof tf.getBackend === 'function'"):
            return worker
    raise AssertionError(f"no worker with TF.js among {[w.url for w in page.workers]}")


def _csp_violations(page: Any) -> list[dict[str, Any]]:
    """The page's Content-Security-Policy reports, as they come."""
    violations: list[dict[str, Any]] = []
    page.expose_function("reportViolation", lambda v: violations.append(v))
    page.add_init_script(
        """document.addEventListener('securitypolicyviolation', e => window.reportViolation({
            directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile}))"""
    )
    return violations


def _open_under_csp(browser: Any, url: str, on_request: Any = None) -> tuple[Any, Any, list[dict[str, Any]]]:
    """A new context and page at ``url``: the response carries the app's CSP, and the page's reports of it
    are collected (``on_request`` sees every request of the context, from the first)."""
    context = browser.new_context()
    if on_request is not None:
        context.on("request", on_request)
    page = context.new_page()
    page.set_default_timeout(300_000)
    violations = _csp_violations(page)
    response = page.goto(url)
    assert response.headers["content-security-policy"] == serve.CONTENT_SECURITY_POLICY
    return context, page, violations


def _assert_only_pyscripts_eval_was_refused(violations: list[dict[str, Any]]) -> None:
    """The only report is PyScript's own bootstrap asking the page for an eval it does not need (blocked, and
    handled by PyScript): that report is also the proof that the policy is enforced on the page."""
    assert len(violations) == 1, violations
    only = violations[0]
    assert only["directive"] == "script-src", only
    assert only["blocked"] == "eval", only
    assert "/vendor/pyscript/core-" in only["source"], only


def test_app_on_webgl_in_its_worker_survives_a_context_loss_mid_batch(browser: Any, server_url: str) -> None:
    """TF.js WebGL in the Python worker (OffscreenCanvas), under the app's CSP, without the service worker:
    the page says which renderer it is; the GPU context is lost while images are queued, all of them are
    classified, and the page says what happened; no request leaves the build's own files.

    One boot for the four checks: the app on WebGL boots in ~25 s of CPU on SwiftShader here."""
    seen, only_build_files = _build_files_only(server_url)
    context, page, violations = _open_under_csp(
        browser, server_url + "?backend=webgl&nosw", lambda request: seen.append(request)
    )
    page.wait_for_selector("body[data-ready='true']")
    assert page.evaluate("document.body.dataset.backend") == "webgl"
    assert "software renderer" in page.inner_text("#backend-notes")
    names = ["chelsea.png", "coffee.png"] * 2
    _queue(page, names)
    page.wait_for_function("() => document.querySelectorAll('#results .result.done').length >= 1")
    worker = _python_worker(page)
    worker.evaluate("tf.backend().gpgpu.gl.getExtension('WEBGL_lose_context').loseContext()")
    results = app_results(page, len(names))
    assert [r["state"] for r in results] == ["result done"] * len(names), results
    assert {r["top1"] for r in results} == {"Neutral"}
    notes = page.inner_text("#backend-notes")
    assert "webgl was re-created 1× after: the WebGL context was lost" in notes
    assert "no image was dropped" in notes
    assert worker.evaluate("tf.getBackend()") == "webgl"
    _assert_only_pyscripts_eval_was_refused(violations)
    only_build_files()
    context.close()


def _end_python_worker(page: Any) -> float:
    """End the app's Python worker from inside, as a crash or an out-of-memory kill ends it (the page is not
    told); returns the page's clock at that moment."""
    worker = _python_worker(page)
    now = float(page.evaluate("performance.now()"))
    worker.evaluate("setTimeout(() => self.close(), 0)")
    return now


def test_app_restarts_a_python_worker_that_ends_and_loses_no_image(browser: Any, server_url: str) -> None:
    """The Python worker ends mid-batch: within 5 s the page says so, starts Python again and hands it every
    image without a result; each image gets exactly one result. Then, with one restart allowed, the worker
    ends twice: images that waited through both ends are marked failed (not retried: they may be what ends
    it), and the page stops restarting and offers Reload."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(server_url + "?backend=wasm&nosw")
    page.wait_for_selector("body[data-ready='true']")
    names = ["chelsea.png", "coffee.png", "rocket.jpg"] * 3
    _queue(page, names)
    page.wait_for_function("() => document.querySelectorAll('#results .result.done').length >= 1")
    ended_at = _end_python_worker(page)
    page.wait_for_selector("body[data-worker-notice='restarted']")
    assert float(page.evaluate("document.body.dataset.workerLostAt")) - ended_at < 5_000, "noticed within 5 s"
    results = app_results(page, len(names))
    assert len(results) == len(names), "one result per image: none lost, none twice"
    assert sorted(r["name"] for r in results) == sorted(f"{i}-{n}" for i, n in enumerate(names))
    expected = {"chelsea.png": "Neutral", "coffee.png": "Neutral", "rocket.jpg": "Drawing"}
    assert all(r["state"] == "result done" and r["top1"] == expected[r["name"].split("-", 1)[1]] for r in results)
    notice = page.inner_text("#worker-notice")
    assert "Python stopped unexpectedly and was restarted" in notice, notice
    assert page.is_hidden("#worker-reload")
    context.close()

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(server_url + "?backend=wasm&nosw&max_restarts=1")
    page.wait_for_selector("body[data-ready='true']")
    names = ["chelsea.png", "coffee.png"] * 6
    _queue(page, names)
    page.wait_for_function("() => document.querySelectorAll('#results .result.done').length >= 1")
    _end_python_worker(page)
    page.wait_for_selector("body[data-worker-notice='restarted']")
    _end_python_worker(page)  # at once: most of the images are still waiting
    page.wait_for_selector("body[data-worker-notice='given-up']")
    assert "Reload the page" in page.inner_text("#worker-notice")
    assert page.is_visible("#worker-reload")
    results = page.evaluate(
        "() => [...document.querySelectorAll('#results .result')].map(li => [li.className, li.innerText])"
    )
    assert len(results) == len(names)
    not_retried = [text for state, text in results if "Not tried again" in text]
    assert not_retried, results
    assert all(state in ("result done", "result failed") for state, _ in results), results
    context.close()


#: model files of the uint8 variant (the one the app loads first)
UINT8_SHARD = "**/models/nsfw-mobilenet-v2/uint8/group1-shard1of1.bin"


#: One fault the network gives and one the bytes give: each kind of damage (missing, flipped, truncated,
#: garbled model.json) is tested at the library level in test_model.py, in the shared page, in a second each;
#: here, what the app shows for the two ways a variant is skipped.
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("404", "HTTP 404"),
        ("wrong-bytes", "does not match the manifest"),
    ],
)
def test_app_falls_back_to_the_next_model_variant(browser: Any, server_url: str, fault: str, reason: str) -> None:
    """A broken quantized variant on the server: the app loads float16 instead, says why, and classifies.

    Damaged files fail their manifest sha256 before anything parses them; what the content checks
    catch when the hash was updated with the damage is tested in test_model.py."""
    model_dir = pyapp_build.MODELS / "nsfw-mobilenet-v2" / "uint8"
    shard = (model_dir / "group1-shard1of1.bin").read_bytes()
    context = browser.new_context()
    body = {"404": None, "wrong-bytes": shard[::-1]}[fault]
    context.route(UINT8_SHARD, lambda r: r.fulfill(status=404, body=b"") if body is None else r.fulfill(body=body))
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(server_url + "?backend=wasm&nosw")
    page.wait_for_selector("#app[data-model='ready']")
    status = page.inner_text("#model-status")
    assert status.startswith("Model: float16 weights"), status
    assert "uint8 skipped:" in status
    # The model's download bar counts the variant that loaded, not the one skipped.
    float16 = model_variant_bytes("float16")
    assert page.locator("[data-group='Model'] progress").evaluate("b => [b.value, b.max]") == [float16, float16]
    assert page.inner_text("[data-group='Model'] .detail").endswith("(float16 weights)")
    assert reason in status
    page.set_input_files("#file-input", [SAMPLES / "chelsea.png"])
    assert app_results(page, 1)[0]["top1"] == "Neutral"
    context.close()


def test_app_without_any_loadable_model_says_why_and_recovers_on_retry(browser: Any, server_url: str) -> None:
    """Every variant's weights fail: one clear error and a retry button; images picked meanwhile wait, then run."""
    context = browser.new_context()
    broken = "**/models/nsfw-mobilenet-v2/*/group1-shard*"
    context.route(broken, lambda r: r.fulfill(status=503, body=b"unavailable"))
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(server_url + "?backend=wasm&nosw")
    page.wait_for_selector("#app[data-model='failed']")
    alert = page.get_by_role("alert").filter(has_text="The model could not be loaded")
    assert alert.count() == 1
    text = alert.inner_text()
    assert "no variant could be loaded" in text
    for variant in ("uint8", "float16", "float32"):
        assert f"{variant}: cannot fetch" in text
    assert text.count("HTTP 503") == 3
    # The page stays usable: a photo picked now waits for the model instead of being lost.
    page.set_input_files("#file-input", [SAMPLES / "coffee.png"])
    page.wait_for_selector("#results .result.pending")
    context.unroute(broken)
    page.click("#retry-model")
    page.wait_for_selector("#app[data-model='ready']")
    assert app_results(page, 1)[0]["top1"] == "Neutral"
    assert page.locator("#model-error").is_hidden()
    context.close()


def test_csp_blocks_eval_and_inline_script_but_not_wasm(browser: Any, server_url: str) -> None:
    """A probe page under the served policy: eval, new Function, string timers and inline script are refused,
    off-origin fetches are refused, WebAssembly compiles. Without the header every line would flip."""
    page = browser.new_page()
    response = page.goto(server_url + "__probe__/csp.html")
    assert response.headers["content-security-policy"] == serve.CONTENT_SECURITY_POLICY
    page.wait_for_selector("body[data-done='true']", state="attached")
    got = page.evaluate("window.probe")
    assert got == CSP_PROBE_EXPECTED, got
    page.close()


def test_app_works_under_its_csp(browser: Any, server_url: str) -> None:
    """The app boots and classifies on wasm under the CSP the server sends (on webgl: the context-loss test
    above, under the same policy)."""
    context, page, violations = _open_under_csp(browser, server_url + "?backend=wasm&nosw")
    page.wait_for_selector("#app[data-model='ready']")
    page.set_input_files("#file-input", [SAMPLES / "chelsea.png"])
    assert app_results(page, 1)[0]["top1"] == "Neutral"
    assert page.evaluate("document.body.dataset.backend") == "wasm"
    _assert_only_pyscripts_eval_was_refused(violations)
    context.close()
