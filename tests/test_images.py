"""pyapp.images (+ pyapp.browser): safe decoding, TF-exact resizing, the backend path, a malformed-image corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import corpus
import numpy as np
import pytest
from conftest import MODEL_BACKENDS
from harness import run_in_pyodide

import pyapp_build
from pyapp.errors import InvalidImage, InvalidInput
from pyapp.images import center_crop, normalize, preprocess, resize_bilinear, resize_nearest


def _naive_bilinear(img: np.ndarray, oh: int, ow: int, align: bool, half: bool) -> np.ndarray:
    """TF's resize_bilinear kernel written as plain loops (the reference)."""
    ih, iw, c = img.shape
    out = np.zeros((oh, ow, c), np.float64)
    hs = (ih - 1) / (oh - 1) if align and oh > 1 else ih / oh
    ws = (iw - 1) / (ow - 1) if align and ow > 1 else iw / ow
    for y in range(oh):
        sy = (y + 0.5) * hs - 0.5 if half else y * hs
        sy = max(sy, 0.0)
        y0 = min(int(np.floor(sy)), ih - 1)
        y1 = min(y0 + 1, ih - 1)
        dy = sy - y0
        for x in range(ow):
            sx = (x + 0.5) * ws - 0.5 if half else x * ws
            sx = max(sx, 0.0)
            x0 = min(int(np.floor(sx)), iw - 1)
            x1 = min(x0 + 1, iw - 1)
            dx = sx - x0
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * dx
            bot = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * dx
            out[y, x] = top + (bot - top) * dy
    return out


@pytest.mark.parametrize(("align", "half"), [(True, False), (False, False), (False, True)])
@pytest.mark.parametrize(("ih", "iw", "oh", "ow"), [(7, 5, 3, 4), (3, 4, 9, 11), (1, 1, 4, 4), (10, 10, 1, 1)])
def test_bilinear_matches_tf_kernel(align: bool, half: bool, ih: int, iw: int, oh: int, ow: int) -> None:
    img = np.random.default_rng(ih * iw + oh).random((ih, iw, 3)).astype(np.float32) * 255
    got = resize_bilinear(img, (oh, ow), align_corners=align, half_pixel_centers=half)
    want = _naive_bilinear(img.astype(np.float64), oh, ow, align, half)
    assert got.shape == (oh, ow, 3)
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_nearest_and_crop_and_normalize() -> None:
    img = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    assert resize_nearest(img, (2, 2))[..., 0].tolist() == [[0, 2], [8, 10]]
    assert resize_nearest(img, (2, 2), align_corners=True)[..., 0].tolist() == [[0, 3], [12, 15]]
    assert center_crop(np.zeros((10, 6, 3))).shape == (6, 6, 3)
    px = np.array([[[0, 127.5, 255]]], np.float32)
    np.testing.assert_allclose(normalize(px, "unit"), [[[0, 0.5, 1]]])
    np.testing.assert_allclose(normalize(px, "symmetric"), [[[-1, 0, 1]]])
    np.testing.assert_allclose(normalize(px, "imagenet")[0, 0, 0], -0.485 / 0.229, rtol=1e-5)
    with pytest.raises(InvalidInput, match="both be true"):
        resize_bilinear(img, (2, 2), align_corners=True, half_pixel_centers=True)


def test_preprocess_accepts_arrays_and_rejects_bad_ones() -> None:
    out = preprocess(np.zeros((10, 20, 3), np.uint8), 8)
    assert out.shape == (1, 8, 8, 3)
    assert out.dtype == np.float32
    assert preprocess(np.full((4, 4), 255, np.uint8), 4).max() == 1.0  # grey -> 3 channels, 0..1
    assert preprocess(np.full((4, 4, 3), 0.5, np.float32), 4).max() == 0.5  # floats: already normalised
    for bad, msg in [
        (np.zeros((4, 4, 5), np.uint8), "1, 3 or 4 channels"),
        (np.zeros((0, 4, 3), np.uint8), "empty image"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
        (np.zeros((2, 2, 3), np.int64), "must be uint8"),
        (np.zeros((2, 2, 2, 2), np.uint8), "(H, W, C)"),
    ]:
        with pytest.raises(InvalidImage, match=msg.replace("(", r"\(").replace(")", r"\)")):
            preprocess(bad, 4)
    with pytest.raises(InvalidInput, match="unsupported image type"):
        preprocess(12, 4)


@pytest.fixture(scope="module")
def corpus_url(scratch: Path) -> str:
    cases = corpus.build(scratch / "corpus")
    assert len(cases) >= 25
    return "/__scratch__/corpus/"


@pytest.mark.parametrize("corpus_backend", ["wasm", "webgl"])
def test_corpus_each_case_decodes_right_or_fails_right_without_leaks(
    pyodide: Any, corpus_url: str, scratch: Path, corpus_backend: str
) -> None:
    """Every malformed/unusual/hostile image (hostile ICC profiles, the CVE-2023-4863 WebP) on the browser
    path, classified on each backend: the right pixels, or InvalidImage naming the cause; nothing leaked;
    later classifications unaffected."""
    report = pyodide.run(
        f"""
        import io, json
        import numpy as np, testutil
        from pyapp import browser
        from pyapp.errors import InvalidImage
        from pyapp.memory import assert_no_leaks

        base = {corpus_url!r}
        cases = json.loads((await testutil.fetch(base + "cases.json")).decode())
        clf = await testutil.classifier({corpus_backend!r})
        photo = await testutil.fetch("/vendor/samples/coffee.png")
        before = await clf.classify(photo)
        problems = []
        for case in cases:
            data = await testutil.fetch(base + case["file"])
            expected = case["browser_error"]
            try:
                with assert_no_leaks():
                    try:
                        pixels = (await browser.decode(data)).pixels  # the browser's decoders, as the app uses them
                        top = await clf.classify(data)
                    except InvalidImage as exc:
                        if expected is None:
                            problems.append(f"{{case['name']}}: unexpected InvalidImage: {{exc}}")
                        elif expected not in str(exc):
                            problems.append(f"{{case['name']}}: message {{exc!s}} lacks {{expected!r}}")
                        continue
            except Exception as exc:
                problems.append(f"{{case['name']}}: {{type(exc).__name__}}: {{exc}}")
                continue
            if expected is not None:
                problems.append(f"{{case['name']}}: decoded, expected InvalidImage({{expected!r}})")
                continue
            if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
                problems.append(f"{{case['name']}}: bad array {{pixels.dtype}} {{pixels.shape}}")
            if case["shape"] and tuple(pixels.shape) != tuple(case["shape"]):
                problems.append(f"{{case['name']}}: shape {{pixels.shape}} != {{case['shape']}}")
            if case["reference"] and case["browser_reference"]:
                ref = np.load(io.BytesIO(await testutil.fetch(base + case["reference"])))
                if ref.shape != pixels.shape:
                    problems.append(f"{{case['name']}}: shape {{pixels.shape}} vs reference {{ref.shape}}")
                else:
                    diff = float(np.abs(ref.astype(float) - pixels).mean())
                    if diff > case["tolerance"]:
                        problems.append(f"{{case['name']}}: mean |diff| {{diff:.3f}} > {{case['tolerance']}}")
            if len(top) != 5:
                problems.append(f"{{case['name']}}: classify gave {{top}}")
        # Hostile files (the CVE-2023-4863 WebP among them) leave later classifications as they were.
        if await clf.classify(photo) != before:
            problems.append(f"a photo classified before the corpus as {{before}}, after it differently")
        __value__ = {{"n": len(cases), "problems": problems}}
        """,
        timeout=600,
    )
    print("\n".join(report["problems"]))
    assert report["n"] >= 25
    assert report["problems"] == []


@run_in_pyodide
async def test_browser_objects_are_accepted(pyodide: Any) -> None:
    """Bytes, Blob, File, ArrayBuffer, typed arrays, ImageBitmap, <img>, <canvas>, ImageData: the same pixels."""
    import js
    import numpy as np
    import testutil

    from pyapp import browser
    from pyapp.images import decode
    from pyapp.memory import assert_no_leaks

    await testutil.use_backend("wasm")  # the leak check reads tf.memory()
    data = await testutil.fetch("/vendor/samples/chelsea.png")
    u8 = js.Uint8Array.new(len(data))
    u8.assign(data)
    opts = js.Object.fromEntries([["type", "image/png"]])
    blob = js.Blob.new([u8], opts)
    file = js.File.new([u8], "cat.png", opts)
    bitmap = await js.createImageBitmap(blob)
    img = js.document.createElement("img")
    img.src = "/vendor/samples/chelsea.png"
    await img.decode()
    canvas = js.document.createElement("canvas")
    canvas.width, canvas.height = 451, 300
    canvas.getContext("2d").drawImage(bitmap, 0, 0)
    image_data = canvas.getContext("2d").getImageData(0, 0, 451, 300)
    with assert_no_leaks():
        want = browser.read_pixels(img)  # what tf.browser.fromPixels(img) reads
        for name, obj in [
            ("bytes", data),
            ("Blob", blob),
            ("File", file),
            ("ArrayBuffer", u8.buffer),
            ("Uint8Array", u8),
            ("ImageBitmap", bitmap),
            ("HTMLImageElement", img),
            ("HTMLCanvasElement", canvas),
            ("ImageData", image_data),
        ]:
            assert name == "bytes" or browser.js_class(obj) == name
            decoded = await browser.decode(obj)
            assert decoded.decoder == "browser", name
            assert np.array_equal(decoded.pixels, want), name
        # Pillow decodes an sRGB PNG to the same pixels too.
        assert float(np.abs(decode(data).astype(int) - want).mean()) < 1.0
    broken = js.document.createElement("img")
    try:
        await browser.to_array(broken)
    except Exception as exc:
        assert "has not loaded" in str(exc)
    else:
        raise AssertionError("a broken <img> was accepted")
    bitmap.close()


@pytest.mark.parametrize("backend", MODEL_BACKENDS, indirect=True)
@run_in_pyodide
async def test_backend_path_matches_numpy_path(pyodide: Any, backend: str) -> None:
    """tf.browser.fromPixels + resize on the backend gives the numpy path's input and the same top-1."""
    import js
    import numpy as np
    import testutil

    from pyapp.memory import assert_no_leaks
    from pyapp.tensors import to_numpy

    clf = await testutil.classifier(backend)
    img = js.document.createElement("img")
    img.src = "/vendor/samples/coffee.png"
    await img.decode()
    data = await testutil.fetch("/vendor/samples/coffee.png")
    with assert_no_leaks():
        on_backend = await to_numpy(await clf.prepare_any(img, "backend"), dispose=True)
        in_numpy = clf.prepare(data)
        assert on_backend.shape == in_numpy.shape == (1, 224, 224, 3)
        assert float(np.abs(on_backend - in_numpy).max()) < 2e-3
        chosen = await clf.prepare_any(img)  # auto: the measured-faster path for this backend
        assert isinstance(chosen, np.ndarray) == (backend == "webgl"), (backend, type(chosen))  # SwiftShader here
        if not isinstance(chosen, np.ndarray):
            chosen.dispose()
        auto = await clf.classify(img)
        numpy_path = await clf.classify(data)
        assert auto[0][0] == numpy_path[0][0]
        assert max(abs(a - b) for (_, a), (_, b) in zip(auto, numpy_path, strict=True)) < 0.01
        many = await clf.classify_many([img, data, img], batch_size=2)
        assert [m[0][0] for m in many] == [auto[0][0]] * 3


@run_in_pyodide
async def test_numpy_resize_matches_tfjs_resize(pyodide: Any, backend: str) -> None:
    """The numpy bilinear/nearest resizes agree with tf.image.* on this backend, both align_corners."""
    import js
    import numpy as np

    from pyapp.images import resize_bilinear, resize_nearest
    from pyapp.tensors import to_numpy, to_tensor

    img = np.random.default_rng(5).random((37, 53, 3)).astype(np.float32)
    t = to_tensor(img)
    try:
        for align in (True, False):
            ours = resize_bilinear(img, (24, 17), align_corners=align)
            theirs = await to_numpy(js.tf.image.resizeBilinear(t, [24, 17], align), dispose=True)
            assert float(np.abs(ours - theirs).max()) < 1e-3, ("bilinear", align)
            ours = resize_nearest(img, (24, 17), align_corners=align)
            theirs = await to_numpy(js.tf.image.resizeNearestNeighbor(t, [24, 17], align), dispose=True)
            assert float(np.abs(ours - theirs).max()) < 1e-6, ("nearest", align)
    finally:
        t.dispose()


PARITY_PHOTOS = pyapp_build.SAMPLES  # every real photo the build ships


def test_parity_with_nsfwjs_classify(pyodide: Any) -> None:
    """NSFWJS's own classify() on the same page and backend is the reference: same top-1, probs within 0.02.

    Every sample photo, on wasm; on webgl (~1 s a prediction on SwiftShader here) the same comparison runs on
    one file per way the GPU path can differ: test_browser_decode.py::test_every_path_agrees_with_nsfwjs."""
    got = pyodide.run(
        f"""
        import js, testutil
        from pyodide.code import run_js
        await testutil.use_backend("wasm")
        nsfwjs = await run_js("import('/vendor/nsfwjs/core.js')")
        options = js.Object.fromEntries([["size", 224]])
        reference = await nsfwjs.load("/models/nsfw-mobilenet-v2/uint8/model.json", options)
        clf = await testutil.classifier("wasm")
        rows = []
        for name in {PARITY_PHOTOS!r}:
            img = js.document.createElement("img")
            img.src = "/vendor/samples/" + name
            await img.decode()
            theirs = {{r.className: float(r.probability) for r in await reference.classify(img)}}
            ours = dict(await clf.classify(await testutil.fetch("/vendor/samples/" + name), path="numpy"))
            rows.append([name, theirs, ours])
        reference.dispose()
        __value__ = rows
        """,
        timeout=600,
    )
    for name, theirs, ours in got:
        assert max(theirs, key=theirs.get) == max(ours, key=ours.get), (name, theirs, ours)
        worst = max(abs(theirs[k] - ours[k]) for k in theirs)
        assert worst <= 0.02, (name, worst, theirs, ours)
    print(json.dumps(got, indent=1))


# ------------------------------------------------------------------------ fuzzing decode + preprocess


def _fuzz_seeds() -> list[bytes]:
    """Small real photos in every format the decoder takes (small so that each example is quick)."""
    import io

    from PIL import Image

    photo = Image.open(pyapp_build.VENDOR / "samples" / "chelsea.png").convert("RGB").resize((96, 64))
    seeds = []
    for fmt, extra in [
        ("PNG", {}),
        ("JPEG", {"quality": 80}),
        ("JPEG", {"quality": 70, "progressive": True}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {"quality": 70}),
        ("TIFF", {"compression": "tiff_deflate"}),
    ]:
        buf = io.BytesIO()
        photo.save(buf, format=fmt, **extra)
        seeds.append(buf.getvalue())
    buf = io.BytesIO()
    photo.convert("RGBA").save(buf, format="PNG")
    seeds.append(buf.getvalue())
    return seeds


FUZZ_SEEDS = _fuzz_seeds()


def _mutations() -> Any:
    from hypothesis import strategies as st

    offset = st.integers(min_value=0, max_value=1 << 16)
    op = st.one_of(
        st.tuples(st.just("flip"), offset, st.integers(1, 255)),
        st.tuples(st.just("set"), offset, st.sampled_from([0x00, 0xFF, 0x7F, 0x80])),
        st.tuples(st.just("truncate"), offset, st.just(0)),
        st.tuples(st.just("insert"), offset, st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("delete"), offset, st.integers(1, 512)),
        st.tuples(st.just("repeat"), offset, st.integers(1, 2048)),
    )
    return st.tuples(st.integers(0, len(FUZZ_SEEDS) - 1), st.lists(op, min_size=1, max_size=4))


def _mutate(seed: int, ops: list[tuple[str, int, Any]]) -> bytes:
    data = bytearray(FUZZ_SEEDS[seed])
    for kind, pos, arg in ops:
        at = pos % (len(data) + 1) if data else 0
        if kind == "flip" and data:
            data[at % len(data)] ^= arg
        elif kind == "set" and data:
            data[at % len(data)] = arg
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = arg
        elif kind == "delete":
            del data[at : at + arg]
        elif kind == "repeat":
            data[at:at] = data[at : at + arg]
    return bytes(data)


def test_fuzzed_real_images_give_a_result_or_invalid_image_and_leak_nothing(pyodide: Any) -> None:
    """Mutated real photos (flipped, overwritten, cut, spliced, repeated bytes) through decode, preprocessing
    and the model: each gives a valid top-5 or InvalidImage; never another error, a hang or a leak."""
    import base64

    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st

    outcomes: dict[str, int] = {"ok": 0, "InvalidImage": 0}

    @seed(20261125)
    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(_mutations(), min_size=8, max_size=8))
    def check(batch: list[tuple[int, list[tuple[str, int, Any]]]]) -> None:
        payloads = [base64.b64encode(_mutate(s, ops)).decode() for s, ops in batch]
        got = pyodide.run(
            f"""
            import asyncio, base64, gc, math
            import testutil
            from pyapp import memory
            from pyapp.errors import InvalidImage
            clf = await testutil.classifier("wasm")
            gc.collect()
            before = memory.snapshot()
            results = []
            for payload in {payloads!r}:
                data = base64.b64decode(payload)
                try:
                    top = await asyncio.wait_for(clf.classify(data), 60)
                except InvalidImage as exc:
                    results.append(["InvalidImage", str(exc)])
                    continue
                except Exception as exc:
                    results.append([type(exc).__name__, str(exc)])
                    continue
                probs = [p for _, p in top]
                valid = (
                    sorted(label for label, _ in top) == sorted(clf.labels)
                    and all(math.isfinite(p) and 0 <= p <= 1 for p in probs)
                    and abs(sum(probs) - 1) < 1e-3
                    and probs == sorted(probs, reverse=True)
                )
                results.append(["ok" if valid else "bad result", repr(top)])
            gc.collect()
            after = memory.snapshot()
            __value__ = [results, memory.leak_report(before, after)]
            """,
            timeout=600,
        )
        results, leaks = got
        assert leaks == [], leaks
        for (kind, detail), (s, ops) in zip(results, batch, strict=True):
            assert kind in outcomes, f"seed {s} with {ops}: {kind}: {detail}"
            if kind == "InvalidImage":
                assert detail, "InvalidImage must say why"
            outcomes[kind] += 1

    check()
    print("fuzz outcomes:", outcomes)
    # Mutations must have exercised both outcomes, or the test proved little.
    assert outcomes["ok"] > 20, outcomes
    assert outcomes["InvalidImage"] > 20, outcomes
