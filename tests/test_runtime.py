"""pyapp.runtime in Chromium: backend choice in order, reasons for rejections, switching, WASM threads."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Pyodide, run_in_pyodide


@run_in_pyodide
async def test_init_skips_unavailable_backends_and_records_why(pyodide: Any) -> None:
    """webgpu is not usable in headless Chromium here: init moves on and says why."""
    import pyapp

    rt = await pyapp.init(backends=("webgpu", "wasm", "cpu"))
    assert rt.backend == "wasm"
    assert list(rt.rejected) == ["webgpu"]
    assert "navigator.gpu" in rt.rejected["webgpu"] or "adapter" in rt.rejected["webgpu"]
    assert pyapp.runtime.current() is rt
    assert rt.tfjs_source == "page", "the harness page loaded TF.js itself: pyapp uses that one"


@run_in_pyodide
async def test_init_fails_with_every_reason_when_nothing_starts(pyodide: Any) -> None:
    import js

    import pyapp
    from pyapp.errors import BackendUnavailable, InvalidInput

    before = str(js.tf.getBackend())
    try:
        await pyapp.init(backends=("webgpu",))
    except BackendUnavailable as exc:
        assert set(exc.reasons) == {"webgpu"}
        assert "webgpu" in str(exc)
    else:
        raise AssertionError("expected BackendUnavailable")
    assert str(js.tf.getBackend()) == before, "a failed init leaves the active backend alone"
    for bad in (("tpu",), ()):
        try:
            await pyapp.init(backends=bad)
        except InvalidInput:
            pass
        else:
            raise AssertionError(f"expected InvalidInput for {bad}")


@pytest.mark.parametrize(("cores", "threads", "binary"), [(2, 1, "simd"), (8, 4, "threaded-simd")])
def test_wasm_binary_is_threaded_only_where_tfjs_runs_threads(
    browser: Any, server_url: str, cores: int, threads: int, binary: str
) -> None:
    """Cross-origin isolated, TF.js would take the threaded SIMD build, whose 8 pthread workers start with the
    backend; with under 4 cores it runs one thread anyway, so pyapp takes the single-threaded SIMD build
    (from vendor/tfjs/). navigator.hardwareConcurrency set through the DevTools protocol."""
    context = browser.new_context()
    try:
        page = context.new_page()
        context.new_cdp_session(page).send("Emulation.setHardwareConcurrencyOverride", {"hardwareConcurrency": cores})
        pyodide = Pyodide.boot(page, server_url)
        got = pyodide.run(
            """
            import js
            import pyapp
            rt = await pyapp.init(backends=("wasm",))
            loaded = [str(e.name) for e in js.performance.getEntriesByType("resource")]
            __value__ = {
                "cores": js.navigator.hardwareConcurrency, "isolated": rt.cross_origin_isolated,
                "simd": rt.wasm_simd, "threads": rt.wasm_threads,
                "wasm": [u.rsplit("/", 1)[1] for u in loaded if u.endswith(".wasm") and "/vendor/tfjs/" in u],
            }
            """
        )
    finally:
        context.close()
    assert got["cores"] == cores
    assert got["isolated"] is True
    assert got["simd"] is True
    assert got["threads"] == threads
    assert got["wasm"] == [f"tfjs-backend-wasm-{binary}.wasm"], got


@run_in_pyodide
async def test_switch_backend_at_run_time_keeps_model_working(pyodide: Any) -> None:
    """A model loaded on one backend still predicts (same numbers) after switching."""
    import numpy as np
    import testutil

    clf = await testutil.classifier("wasm")
    x = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    on_wasm = await clf.model.predict(x)
    rt = await __import__("pyapp").init(backends=("wasm",))
    await rt.switch("cpu")
    assert rt.backend == "cpu"
    assert rt.wasm_threads is None
    on_cpu = await clf.model.predict(x)
    await rt.switch("wasm")
    assert np.abs(on_wasm - on_cpu).max() <= 1e-3


@pytest.mark.parametrize("name", ["wasm", "webgl", "cpu"])
def test_each_test_backend_starts(pyodide: Any, name: str) -> None:
    """The three backends the suite runs on all start in headless Chromium."""
    got = pyodide.run(
        f"import pyapp\nrt = await pyapp.init(backends=({name!r},))\n__value__ = [rt.backend, rt.rejected]"
    )
    assert got == [name, {}]


@run_in_pyodide
async def test_runtime_knows_when_backend_preprocessing_pays(pyodide: Any) -> None:
    """Headless Chromium's WebGL is SwiftShader: detected as software, so auto keeps numpy there."""
    import pyapp

    rt = await pyapp.init(backends=("webgl",))
    assert "SwiftShader" in rt.gl_renderer
    assert rt.software_gl is True
    assert rt.backend_preprocessing is False
    rt = await pyapp.init(backends=("wasm",))
    assert rt.gl_renderer is None
    assert rt.backend_preprocessing is True
    rt = await pyapp.init(backends=("cpu",))
    assert rt.backend_preprocessing is True
    await pyapp.init(backends=("wasm",))


@run_in_pyodide
async def test_software_webgl_is_passed_over_for_wasm_unless_asked_for(pyodide: Any) -> None:
    """With no real GPU, init prefers wasm to WebGL-on-SwiftShader when both are listed, and says why;
    a caller who insists (or lists nothing faster) gets WebGL."""
    import js

    import pyapp

    rt = await pyapp.init(backends=("webgpu", "webgl", "wasm", "cpu"))
    assert rt.backend == "wasm"
    assert str(js.tf.getBackend()) == "wasm"
    assert rt.rejected["webgl"].startswith("software renderer (ANGLE")
    assert rt.rejected["webgl"].endswith("WASM is faster here")
    assert "webgpu" in rt.rejected
    rt = await pyapp.init(backends=("webgl", "wasm"), avoid_software_gl=False)
    assert rt.backend == "webgl"
    rt = await pyapp.init(backends=("webgl", "cpu"))
    assert rt.backend == "webgl", "the plain-JS cpu backend is slower than software WebGL"
    await pyapp.init(backends=("wasm",))


@run_in_pyodide
def test_js_errors_become_jserror_with_their_message(pyodide: Any) -> None:
    """A JavaScript exception crossing into pyapp keeps its name and message, under the one root."""
    import js

    from pyapp._js import js_errors
    from pyapp.errors import JSError, PyAppError

    try:
        with js_errors("parsing settings"):
            js.JSON.parse("{not json")
    except JSError as exc:
        assert isinstance(exc, PyAppError)
        assert exc.js_name == "SyntaxError"
        assert str(exc).startswith("parsing settings: SyntaxError: ")
        assert "JSON" in str(exc)
    else:
        raise AssertionError("no JSError")


@run_in_pyodide(timeout=600)
async def test_webgl_context_lost_mid_run_is_recovered_without_dropping_requests(pyodide: Any) -> None:
    """WEBGL_lose_context while requests are in flight: the runtime notices, re-creates the backend,
    the model reloads its weights, and every request completes with the answer it had before.

    Without the loss watch the in-flight readback waits forever (the harness times out).
    """
    import asyncio

    import js
    import numpy as np
    import testutil

    import pyapp
    from pyapp import runtime
    from pyapp.classifier import ImageClassifier
    from pyapp.errors import BackendLost
    from pyapp.tensors import to_numpy, to_tensor

    await testutil.use_backend("webgl")
    rt = runtime.current()
    assert rt is not None
    generation, recoveries = runtime.generation(), len(rt.recoveries)
    clf = await ImageClassifier.load(testutil.MANIFEST)
    photos = [await testutil.fetch(f"/vendor/samples/{n}") for n in ("chelsea.png", "coffee.png", "astronaut.png")]
    expected = [await clf.classify(p, path="numpy") for p in photos]
    tensors_before = int(js.tf.memory().numTensors)
    own = to_tensor(np.ones((2, 2), np.float32))  # the caller's own tensor, on the backend about to be lost
    own.add(1).dispose()  # make it live on the GPU

    async def lose_soon() -> None:
        await asyncio.sleep(0.05)
        js.tf.backend().gpgpu.gl.getExtension("WEBGL_lose_context").loseContext()

    loser = asyncio.ensure_future(lose_soon())
    results = [await asyncio.wait_for(clf.classify(p, path="numpy"), 120) for p in photos * 2]
    await loser
    assert results == expected * 2, "every request answered, as before the loss"
    assert runtime.generation() == generation + 1
    assert len(rt.recoveries) == recoveries + 1
    assert "webglcontextlost" in rt.recoveries[-1]
    assert clf.model.recoveries == [rt.recoveries[-1]]
    assert rt.backend == "webgl"
    assert not js.tf.backend().gpgpu.gl.isContextLost()
    # The caller's tensor died with the old context: reading it says so instead of hanging.
    try:
        await asyncio.wait_for(to_numpy(own), 30)
    except BackendLost as exc:
        assert "lost and re-created" in str(exc)
    else:
        raise AssertionError("a tensor of the lost backend was read")
    own.dispose()
    assert int(js.tf.memory().numTensors) == tensors_before, "the old weights were released"
    # Other models loaded before the loss (the shared test classifier) reload on their next call.
    shared = await testutil.classifier("webgl")
    assert (await shared.classify(photos[0], path="numpy"))[0] == expected[0][0]
    clf.dispose()
    await pyapp.init(backends=("wasm",))


@run_in_pyodide(timeout=600)
async def test_five_webgl_context_losses_in_one_batch_drop_nothing_and_leak_nothing(pyodide: Any) -> None:
    """Five WEBGL_lose_context in one batch of requests, each once the previous loss is over: every loss is
    noticed and recovered, every request gets the answer it had before, and afterwards the tensor count is
    at its baseline and the heaps (Pyodide's, the page's JS heap, the GPU's) grew by at most 50 MB."""
    import asyncio
    import gc

    import js
    import testutil

    import pyapp
    from pyapp import memory, runtime
    from pyapp.classifier import ImageClassifier

    mb50 = 50 * 1024 * 1024
    await testutil.use_backend("webgl")
    rt = runtime.current()
    assert rt is not None
    clf = await ImageClassifier.load(testutil.MANIFEST)
    photos = [await testutil.fetch(f"/vendor/samples/{n}") for n in ("chelsea.png", "coffee.png", "rocket.jpg")]
    expected = [await clf.classify(p, path="numpy") for p in photos]
    gc.collect()
    before, js_before = memory.snapshot(), int(js.performance.memory.usedJSHeapSize)
    recoveries = len(rt.recoveries)
    results: list[object] = []

    async def lose_five() -> None:
        for k in range(5):
            # Each loss on a context in use: the previous loss noticed and recovered (the loss event comes
            # later than loseContext(), and a request can still finish on the lost context meanwhile), then
            # a request answered on the new context.
            while len(rt.recoveries) < recoveries + k:
                await asyncio.sleep(0.02)
            answered = len(results)
            while len(results) == answered:
                await asyncio.sleep(0.02)
            js.tf.backend().gpgpu.gl.getExtension("WEBGL_lose_context").loseContext()

    loser = asyncio.ensure_future(lose_five())
    while not loser.done() or len(rt.recoveries) < recoveries + 5 or len(results) % 3:
        assert len(results) < 60, "the five losses did not happen within 60 requests"
        photo = photos[len(results) % 3]
        results.append(await asyncio.wait_for(clf.classify(photo, path="numpy"), 120))
    await loser
    assert results == expected * (len(results) // 3), "every request answered, as before the losses"
    assert len(rt.recoveries) == recoveries + 5
    # Each loss is noticed by its webglcontextlost event, or, when a request reaches the context before the event
    # is delivered (a busy machine: a fresh-clone CI run saw it once), by isContextLost(): either way, the loss.
    assert all(why.startswith("the WebGL context was lost (") for why in rt.recoveries[-5:]), rt.recoveries
    assert not js.tf.backend().gpgpu.gl.isContextLost()
    gc.collect()
    after, js_after = memory.snapshot(), int(js.performance.memory.usedJSHeapSize)
    assert after.num_tensors == before.num_tensors, (before, after)
    assert after.num_bytes == before.num_bytes, (before, after)
    assert (after.python_heap_bytes or 0) - (before.python_heap_bytes or 0) <= mb50, (before, after)
    assert (after.gpu_bytes or 0) - (before.gpu_bytes or 0) <= mb50, (before, after)
    assert js_after - js_before <= mb50, (js_before, js_after)
    clf.dispose()
    await pyapp.init(backends=("wasm",))
