"""The served app page boots the real stack and classifies a bundled photo (issue 2's promise)."""

from __future__ import annotations

from typing import Any

from harness import run_in_pyodide


def test_index_page_classifies_sample_photo_on_wasm(browser: Any, server_url: str) -> None:
    """The page a visitor gets: Pyodide + numpy + Pillow + TF.js wasm + MobileNetV2 -> a label."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server_url + "?backend=wasm")
    page.wait_for_function("document.body.dataset.top1 !== undefined", timeout=180_000)
    assert page.evaluate("crossOriginIsolated") is True
    assert page.inner_text("#backend").startswith("Backend: wasm")
    # chelsea.png is a photo of a cat: safe content, so "Neutral" must win.
    assert page.evaluate("document.body.dataset.top1") == "Neutral"
    rows = page.locator("#result tr")
    assert rows.count() == 5
    assert errors == []
    context.close()


@run_in_pyodide
def test_numpy_pillow_and_tf_ffi_work_together(pyodide: Any, backend: str) -> None:
    """numpy and Pillow import in Pyodide and TF.js is reachable through the FFI, on each backend."""
    import io

    import js
    import numpy as np
    import PIL
    from PIL import Image

    assert np.__version__ == "2.0.2"
    assert PIL.__version__ == "10.2.0"
    buf = io.BytesIO()
    Image.new("RGB", (4, 2), (10, 20, 30)).save(buf, format="PNG")
    img = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    assert img.shape == (2, 4, 3)
    t = js.tf.tensor(js.Float32Array.new([1, 2, 3]))
    total = t.sum().dataSync()[0]
    t.dispose()
    assert total == 6
    assert js.tf.version.tfjs == "4.22.0"
    assert js.tf.getBackend() == backend
