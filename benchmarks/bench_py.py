"""Benchmarks that run inside the page (imported as ``bench_py`` in Pyodide).

Every function returns plain numbers (ms) for benchmarks/run.py to summarise;
timing uses the browser's clock via time.perf_counter (performance.now).
"""

from __future__ import annotations

import gc
import time
from typing import Any

import js
import numpy as np
from pyodide.ffi import to_js
from pyodide.http import pyfetch

import pyapp
from pyapp import memory
from pyapp.classifier import ImageClassifier, top_k
from pyapp.images import decode
from pyapp.model import Model
from pyapp.tensors import to_numpy, to_tensor

MANIFEST = "/models/nsfw-mobilenet-v2/manifest.json"
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png", "camera.png")


async def fetch(url: str) -> bytes:
    resp = await pyfetch(url)
    return await resp.bytes()


async def environment(backend: str) -> dict[str, Any]:
    rt = await pyapp.init(backends=(backend,))
    return {
        "backend": rt.backend,
        "cross_origin_isolated": rt.cross_origin_isolated,
        "wasm_simd": rt.wasm_simd,
        "wasm_threads": rt.wasm_threads,
        "tfjs": rt.tfjs_version,
        "user_agent": str(js.navigator.userAgent),
        "hardware_concurrency": int(js.navigator.hardwareConcurrency),
    }


async def _classifier(backend: str, variant: str = "uint8") -> ImageClassifier:
    await pyapp.init(backends=(backend,))
    return await ImageClassifier.load(MANIFEST, variants=[variant])


async def steady(backend: str, n: int, warmup: int) -> dict[str, Any]:
    """Python path vs plain-JS TF.js, alternating, same model files, same input."""
    clf = await _classifier(backend)
    x = clf.prepare(await fetch("/vendor/samples/chelsea.png"))
    await js.jsBaseline.load("/models/nsfw-mobilenet-v2/uint8/model.json")
    js.jsBaseline.setInput(js.Float32Array.new(x.reshape(-1).tolist()), [1, 224, 224, 3])
    py_ms: list[float] = []
    js_ms: list[float] = []
    py_first = js_first = 0.0
    for i in range(warmup + n):
        t0 = time.perf_counter()
        out = await clf.model.predict(x)
        py = (time.perf_counter() - t0) * 1e3
        js_result = await js.jsBaseline.predictOnce()
        jms, js_first = float(js_result[0]), float(js_result[1])
        py_first = float(out[0, 0])
        if i >= warmup:
            py_ms.append(py)
            js_ms.append(jms)
    clf.dispose()
    js.jsBaseline.model.dispose()
    js.jsBaseline.model = None
    return {"py_ms": py_ms, "js_ms": js_ms, "same_output": abs(py_first - js_first) < 1e-4}


async def stages(backend: str, n: int, warmup: int) -> dict[str, list[float]]:
    """Where the Python path spends its time, per classification of an encoded photo."""
    clf = await _classifier(backend)
    photo = await fetch("/vendor/samples/chelsea.png")
    tfm = js.tf
    out: dict[str, list[float]] = {"decode+preprocess": [], "transfer": [], "predict+readback": [], "postprocess": []}
    for i in range(warmup + n):
        t0 = time.perf_counter()
        x = clf.prepare(photo)
        t1 = time.perf_counter()
        t = to_tensor(x)
        t2 = time.perf_counter()
        y = clf.model._js_model.predict(t)
        probs = await to_numpy(y, dispose=True)
        t.dispose()
        t3 = time.perf_counter()
        top_k(probs[0], clf.labels, 5)
        t4 = time.perf_counter()
        if i >= warmup:
            for key, a, b in (
                ("decode+preprocess", t0, t1),
                ("transfer", t1, t2),
                ("predict+readback", t2, t3),
                ("postprocess", t3, t4),
            ):
                out[key].append((b - a) * 1e3)
    assert int(tfm.memory().numTensors) >= 0
    clf.dispose()
    return out


async def batch(backend: str, count: int, batch_size: int) -> dict[str, Any]:
    """count images: one classify() each vs classify_many() in batches of batch_size."""
    clf = await _classifier(backend)
    photos = [decode(await fetch(f"/vendor/samples/{p}")) for p in PHOTOS]
    images = [photos[i % len(photos)] for i in range(count)]
    await clf.classify(images[0])
    t0 = time.perf_counter()
    for img in images:
        await clf.classify(img)
    t1 = time.perf_counter()
    await clf.classify_many(images, batch_size=batch_size)
    t2 = time.perf_counter()
    clf.dispose()
    return {"one_by_one_ms": (t1 - t0) * 1e3, "batched_ms": (t2 - t1) * 1e3, "count": count, "batch_size": batch_size}


async def soak(backend: str, n: int, every: int) -> dict[str, Any]:
    """n classifications with memory sampled every `every`; growth reported."""
    clf = await _classifier(backend)
    photo = decode(await fetch("/vendor/samples/chelsea.png"))
    await clf.classify(photo)
    gc.collect()
    samples = []
    t0 = time.perf_counter()
    for i in range(n + 1):
        if i % every == 0:
            gc.collect()
            samples.append({"i": i, "t_s": time.perf_counter() - t0, **memory.snapshot().as_dict()})
        if i < n:
            await clf.classify(photo)
    clf.dispose()
    return {"samples": samples, "n": n}


async def variants(backend: str, n: int) -> dict[str, Any]:
    """Per variant: bytes, load time, per-prediction time, agreement with float32 on real photos."""
    await pyapp.init(backends=(backend,))
    photos = [await fetch(f"/vendor/samples/{p}") for p in PHOTOS]
    result: dict[str, Any] = {}
    reference: list[np.ndarray] = []
    for variant in ("float32", "float16", "uint8"):
        t0 = time.perf_counter()
        model = await Model.load(MANIFEST, variants=[variant], warmup=False)
        load_ms = (time.perf_counter() - t0) * 1e3
        clf = ImageClassifier(model)
        inputs = [clf.prepare(p) for p in photos]
        probs = [await model.predict(x) for x in inputs]
        times = []
        for _ in range(n):
            t1 = time.perf_counter()
            await model.predict(inputs[0])
            times.append((time.perf_counter() - t1) * 1e3)
        if variant == "float32":
            reference = probs
        agree = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(probs, reference, strict=True))
        result[variant] = {
            "bytes": model.load_info.bytes,
            "load_ms": load_ms,
            "predict_ms": times,
            "top1_agreement": f"{agree}/{len(photos)}",
            "max_prob_diff": float(max(np.abs(a - b).max() for a, b in zip(probs, reference, strict=True))),
        }
        model.dispose()
    return result


async def preprocess(backend: str, n: int) -> dict[str, Any]:
    """~1 MP photo -> (1, 224, 224, 3) float32: numpy in WASM vs pyapp's backend path (fromPixels + resize)."""
    from pyapp.browser import preprocess_on_backend
    from pyapp.images import preprocess as np_preprocess

    await pyapp.init(backends=(backend,))
    data = await fetch("/vendor/samples/astronaut.png")  # 512x512; upscaled below to ~1 MP
    from io import BytesIO

    from PIL import Image

    big = Image.open(BytesIO(data)).convert("RGB").resize((1152, 864))
    buf = BytesIO()
    big.save(buf, format="PNG")
    png = buf.getvalue()
    blob = js.Blob.new(js.Array.of(to_js(png)), js.Object.fromEntries([["type", "image/png"]]))
    bitmap = await js.createImageBitmap(blob)
    arr = np.asarray(big)
    from pyapp.browser import read_pixels

    numpy_ms, gpu_ms, decode_ms, bitmap_ms = [], [], [], []
    for i in range(n + 3):
        t0 = time.perf_counter()
        np_preprocess(arr, 224)
        t1 = time.perf_counter()
        t = preprocess_on_backend(bitmap, 224)
        await t.data()  # wait for the backend to finish, as the numpy path is finished
        t.dispose()
        t2 = time.perf_counter()
        np_preprocess(png, 224)
        t3 = time.perf_counter()
        # The other way `path="auto"` can go for a browser image: to the same end, a tensor on the backend.
        to_tensor(np_preprocess(read_pixels(bitmap), 224)).dispose()
        t4 = time.perf_counter()
        if i >= 3:
            decode_ms.append((t3 - t2) * 1e3)
            bitmap_ms.append((t4 - t3) * 1e3)
            numpy_ms.append((t1 - t0) * 1e3)
            gpu_ms.append((t2 - t1) * 1e3)
    bitmap.close()
    return {
        "numpy_ms": numpy_ms,
        "gpu_ms": gpu_ms,
        "numpy_with_decode_ms": decode_ms,
        "numpy_from_bitmap_ms": bitmap_ms,
        "pixels": 1152 * 864,
        "decode": {label: await _decode_paths(big, size, n) for label, size in (("1 MP", 1), ("12 MP", 12))},
    }


async def _decode_paths(photo: Any, megapixels: int, n: int) -> dict[str, Any]:
    """A JPEG of ``megapixels`` MP -> (1, 224, 224, 3): the ways encoded bytes can go, side by side.

    browser decode (createImageBitmap) + numpy, browser decode + backend (fromPixels), Pillow decode + numpy.
    """
    from io import BytesIO

    from pyapp import browser
    from pyapp.images import preprocess as np_preprocess

    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    buf = BytesIO()
    photo.resize((width, width * 3 // 4)).save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    times: dict[str, list[float]] = {"browser_numpy_ms": [], "browser_backend_ms": [], "pillow_numpy_ms": []}
    runs = n if megapixels == 1 else max(3, n // 10)  # 12 MP through Pillow takes seconds a run
    for i in range(runs + 1):  # the first run warms up
        t0 = time.perf_counter()
        async with await browser.open_image(jpeg) as opened:
            np_preprocess(opened.pixels(), 224)
        t1 = time.perf_counter()
        async with await browser.open_image(jpeg) as opened:
            t = browser.preprocess_on_backend(opened.source, 224)
            await t.data()  # wait for the backend to finish, as the numpy path is finished
            t.dispose()
        t2 = time.perf_counter()
        np_preprocess(decode(jpeg), 224)
        t3 = time.perf_counter()
        if i:
            times["browser_numpy_ms"].append((t1 - t0) * 1e3)
            times["browser_backend_ms"].append((t2 - t1) * 1e3)
            times["pillow_numpy_ms"].append((t3 - t2) * 1e3)
        gc.collect()
    return {**times, "pixels": width * (width * 3 // 4), "jpeg_bytes": len(jpeg)}


def _rate(times: list[float]) -> float:
    """Results per second over a run (from the first result to the last)."""
    return (len(times) - 1) * 1000 / (times[-1] - times[0]) if len(times) > 1 else 0.0


async def live(backend: str, seconds: float, rounds: int) -> dict[str, Any]:
    """The Python stream (``classify_stream``) against the plain-JS rVFC + predict loop, on the same camera
    (a 640x480, 60 fps file camera: the app's sample photos), model object and backend, alternating."""
    from pyapp import browser

    clf = await _classifier(backend)
    camera = await browser.open_camera()
    out: dict[str, Any] = {"python": [], "plain_js": [], "python_latency_ms": [], "plain_js_latency_ms": []}
    paths: set[str] = set()
    dropped = 0
    try:
        for _ in range(rounds):
            got = await js.jsLive(camera.video, clf.model._js_model, clf.manifest.input.size, seconds)
            out["plain_js"].append(_rate(list(got.times)))
            out["plain_js_latency_ms"] += list(got.latencies)
            times: list[float] = []
            until = time.perf_counter() + seconds
            async with clf.classify_stream(camera, release=False) as stream:
                async for result in stream:
                    times.append(time.perf_counter() * 1e3)
                    out["python_latency_ms"].append(result.latency_ms)
                    paths.add(result.path)
                    dropped += result.dropped
                    if time.perf_counter() >= until:
                        break
            out["python"].append(_rate(times))
    finally:
        camera.dispose()
        clf.dispose()
    return {**out, "path": sorted(paths), "python_dropped": dropped}
