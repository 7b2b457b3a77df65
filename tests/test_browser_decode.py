"""In the browser: encoded images are decoded by the browser, so one image gives one answer on every path.

Bytes, File, Blob, ArrayBuffer, ``<img>``, ImageBitmap, ``<canvas>``, ImageData and VideoFrame of one photo
give the same pixels and the same classification, on the numpy and the backend path, as NSFWJS's own
``classify()`` of an ``<img>``; Pyodide's vulnerable libwebp never decodes anything; a 12 MP
Display P3 photo is classified in bounded memory.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import corpus
import cve_2023_4863
import iccprofiles
import pytest
from PIL import Image

import pyapp_build

#: On webgl, one file per way the GPU's own work can differ: a JPEG (drawn by the GPU from the <img>), partial
#: transparency (premultiplied on upload), a colour profile, and a large image resized on the GPU, with a
#: sample photo. A MobileNetV2 prediction takes ~1 s on SwiftShader here, so the rest (palettes, 16 bits, full
#: transparency: the browser decodes them before any backend sees a pixel) is compared on wasm only, and their
#: pixels on webgl too by test_every_source_of_one_image_gives_the_same_pixels.
WEBGL_FILES = (
    "chelsea.png",
    "baseline-420.jpg",
    "cut-out.png",
    "display-p3.jpg",
    "upscaled-4x.jpg",
    "face-progressive-444.jpg",
    "mpl-Minduka_Present_Blue_Pack.png",
)


#: The ways in: source/path (numpy: pyapp resizes in numpy; backend: on the TF.js backend; auto: pyapp picks).
PARITY_PATHS = ("bytes/numpy", "bytes/backend", "File/auto", "img/numpy", "img/backend")


@pytest.fixture(scope="module")
def parity_all(scratch: Path) -> list[str]:
    files = corpus.build_parity(scratch / "parity")
    assert set(WEBGL_FILES) <= set(files)
    return files


@pytest.fixture
def parity_files(parity_all: list[str], parity_backend: str) -> list[str]:
    """Every parity file on wasm; the subset above on webgl."""
    return parity_all if parity_backend == "wasm" else [f for f in parity_all if f in WEBGL_FILES]


@pytest.mark.parametrize("parity_backend", ["wasm", "webgl"])
def test_every_source_of_one_image_gives_the_same_pixels(
    pyodide: Any, parity_files: list[str], parity_backend: str
) -> None:
    """Per file: bytes, Blob, File, ArrayBuffer, Uint8Array, ImageBitmap, <canvas>, ImageData, a VideoFrame and
    the <img> itself read the same pixels as tf.browser.fromPixels(<img>); the backend path gets the same input
    from the bytes as from the <img> and a VideoFrame, and the numpy path the same input within float
    rounding."""
    got = pyodide.run(
        f"""
        import js, numpy as np, testutil
        from pyapp import browser
        from pyapp.memory import assert_no_leaks
        from pyapp.tensors import to_numpy

        clf = await testutil.classifier({parity_backend!r})
        rows = {{}}
        for name in {parity_files!r}:
            url = "/__scratch__/parity/" + name
            data = await testutil.fetch(url)
            img = js.document.createElement("img")
            img.src = url
            await img.decode()
            u8 = js.Uint8Array.new(len(data))
            u8.assign(data)
            blob = js.Blob.new([u8])
            bitmap = await js.createImageBitmap(blob)  # a caller's own bitmap, default options
            # A canvas kept in memory, as fromPixels' own is on cpu and wasm: a GPU canvas decodes and
            # converts JPEGs its own way (up to 7 levels apart here; see the webgl rows).
            canvas = js.OffscreenCanvas.new(int(img.naturalWidth), int(img.naturalHeight))
            ctx = canvas.getContext("2d", js.Object.fromEntries([["willReadFrequently", True]]))
            ctx.drawImage(img, 0, 0)
            image_data = ctx.getImageData(0, 0, canvas.width, canvas.height)
            # A VideoFrame, as the live pump hands a camera's frames to Python in a worker: opaque, as a video's
            # frames are (Chromium draws a VideoFrame with alpha unlike an <img> of it).
            opaque = js.Object.fromEntries([["timestamp", 0], ["alpha", "discard"]])
            video_frame = js.VideoFrame.new(canvas, opaque)
            with assert_no_leaks():
                t = js.tf.browser.fromPixels(img, 3)
                from_pixels = await to_numpy(t, dispose=True)
                want = browser.read_pixels(img)
                sources = {{
                    "bytes": data, "Blob": blob, "File": js.File.new([u8], name), "ArrayBuffer": u8.buffer,
                    "Uint8Array": u8, "ImageBitmap": bitmap, "canvas": canvas, "ImageData": image_data,
                    "VideoFrame": video_frame,
                }}
                worst = {{}}
                decoders = set()
                for label, obj in sources.items():
                    decoded = await browser.decode(obj)
                    decoders.add(decoded.decoder)
                    same = decoded.pixels.shape == want.shape
                    worst[label] = int(np.abs(decoded.pixels.astype(int) - want).max()) if same else -1
                on_backend = {{}}
                for label, obj in (("bytes", data), ("img", img), ("VideoFrame", video_frame)):
                    on_backend[label] = await to_numpy(await clf.prepare_any(obj, "backend"), dispose=True)
                in_numpy = await clf.prepare_any(data, "numpy")
            rows[name] = {{
                "fromPixels(img) vs read": int(np.abs(from_pixels.astype(int) - want).max()),
                "sources": worst,
                "decoders": sorted(decoders),
                "backend bytes vs img": float(np.abs(on_backend["bytes"] - on_backend["img"]).max()),
                "backend VideoFrame vs bytes": float(np.abs(on_backend["VideoFrame"] - on_backend["bytes"]).max()),
                "numpy vs backend": float(np.abs(in_numpy - on_backend["bytes"]).max()),
            }}
            video_frame.close()
            bitmap.close()
        __value__ = rows
        """,
        timeout=600,
    )
    print(json.dumps(got, indent=1))
    for name, row in got.items():
        assert row["decoders"] == ["browser"], (name, row)
        assert max(row["sources"].values()) == 0, (name, row)
        assert row["numpy vs backend"] < 2e-3, (name, row)
        assert row["backend VideoFrame vs bytes"] <= 1e-6, (name, row)
        if parity_backend == "wasm":  # fromPixels reads an <img> through a 2D canvas in memory, as read_pixels
            assert row["fromPixels(img) vs read"] == 0, (name, row)
            assert row["backend bytes vs img"] <= 1e-6, (name, row)
        else:  # on webgl, fromPixels draws an <img> on a GPU canvas: JPEGs up to 7 levels apart, measured
            assert row["fromPixels(img) vs read"] <= 8, (name, row)
            assert row["backend bytes vs img"] <= 8 / 255, (name, row)


@pytest.mark.parametrize("parity_backend", ["wasm", "webgl"])
def test_every_path_agrees_with_nsfwjs(pyodide: Any, parity_files: list[str], parity_backend: str) -> None:
    """NSFWJS's classify() of an <img> on the same page and backend is the reference: bytes (numpy and
    backend path), a File, the <img> (both paths): same top-1, every probability within 0.02.

    On webgl (about 1 s a prediction on SwiftShader here) only the paths whose model input differs: the GPU's
    resize from bytes and from the <img>, and the numpy path. Bytes, a File and an <img> give the same
    pixels (test_every_source_of_one_image_gives_the_same_pixels, on webgl too), so the numpy path's input
    from bytes or a File (an encoded image takes the numpy path under "auto") is the one from the <img>."""
    paths_here = PARITY_PATHS if parity_backend == "wasm" else ("bytes/backend", "img/numpy", "img/backend")
    got = pyodide.run(
        f"""
        import js, testutil
        from pyodide.code import run_js
        await testutil.use_backend({parity_backend!r})
        nsfwjs = await run_js("import('/vendor/nsfwjs/core.js')")
        options = js.Object.fromEntries([["size", 224]])
        reference = await nsfwjs.load("/models/nsfw-mobilenet-v2/uint8/model.json", options)
        clf = await testutil.classifier({parity_backend!r})
        rows = []
        for name in {parity_files!r}:
            url = "/__scratch__/parity/" + name
            img = js.document.createElement("img")
            img.src = url
            await img.decode()
            theirs = {{r.className: float(r.probability) for r in await reference.classify(img)}}
            data = await testutil.fetch(url)
            u8 = js.Uint8Array.new(len(data))
            u8.assign(data)
            paths = {{}}
            for label, image, path in [
                ("bytes/numpy", data, "numpy"),
                ("bytes/backend", data, "backend"),
                ("File/auto", js.File.new([u8], name), "auto"),
                ("img/numpy", img, "numpy"),
                ("img/backend", img, "backend"),
            ]:
                if label not in {paths_here!r}:
                    continue
                result = await clf.classify_detailed(image, path=path)
                paths[label] = [dict(result.top), result.decoder]
            rows.append([name, theirs, paths])
        reference.dispose()
        __value__ = rows
        """,
        timeout=600,
    )
    table = []
    for name, theirs, paths in got:
        top1 = max(theirs, key=theirs.get)
        for label, (ours, decoder) in paths.items():
            worst = max(abs(theirs[k] - ours[k]) for k in theirs)
            table.append((name, label, decoder, round(worst, 4), max(ours, key=ours.get) == top1))
    print(f"\nparity on {parity_backend}: image, path, decoder, max |p - NSFWJS|, same top-1")
    for row in table:
        print(*row, sep="\t")
    print("worst:", max(row[3] for row in table))
    assert [row for row in table if row[3] > 0.02 or not row[4]] == []
    assert {row[2] for row in table} == {"browser"}


@pytest.mark.parametrize("cve_backend", ["wasm", "webgl"])
def test_pyodide_pillow_never_decodes_with_its_vulnerable_libwebp(pyodide: Any, cve_backend: str) -> None:
    """Pyodide's Pillow links libwebp 1.2.2: its WebP path refuses, naming CVE-2023-4863; the browser decodes
    WebP instead, and rejects the crafted CVE-2023-4863 file without disturbing later classifications on
    either backend."""
    webp = io.BytesIO()
    Image.open(pyapp_build.VENDOR / "samples" / "coffee.png").convert("RGB").save(webp, "WEBP", quality=90)
    payloads = {"photo": webp.getvalue(), "cve": cve_2023_4863.crafted(), "twin": cve_2023_4863.crafted(valid=True)}
    got = pyodide.run(
        f"""
        import testutil
        from pyapp import decoders
        from pyapp.errors import InvalidImage
        from pyapp.images import decode
        from pyapp.memory import assert_no_leaks
        payloads = {payloads!r}
        out = {{"versions": decoders.library_versions(), "refusals": {{}}}}
        for fmt in ("WEBP", "PNG", "JPEG", "GIF", "TIFF"):
            out["refusals"][fmt] = decoders.refusal(fmt)
        clf = await testutil.classifier({cve_backend!r})
        photo = await testutil.fetch("/vendor/samples/chelsea.png")
        with assert_no_leaks():
            before = await clf.classify(photo)
            for name, data in payloads.items():
                try:
                    decode(data)  # the synchronous Pillow path
                    out[name + "/pillow"] = "decoded"
                except InvalidImage as exc:
                    out[name + "/pillow"] = str(exc)
                try:
                    result = await clf.classify_detailed(data)
                    out[name + "/classify"] = [result.decoder, result.format, result.top[0][0]]
                except InvalidImage as exc:
                    out[name + "/classify"] = str(exc)
            out["unaffected"] = await clf.classify(photo) == before
        __value__ = out
        """,
        timeout=300,
    )
    print(json.dumps(got, indent=1))
    assert got["versions"]["libwebp"] == "1.2.2"  # if Pyodide updates it, the refusal below goes away
    assert "CVE-2023-4863" in got["refusals"]["WEBP"]
    for name in payloads:
        assert "CVE-2023-4863" in got[name + "/pillow"], name
    assert got["photo/classify"][:2] == ["browser", "WEBP"]
    assert got["twin/classify"][:2] == ["browser", "WEBP"]
    assert got["cve/classify"].startswith("corrupt or truncated image: the browser could not decode this WEBP")
    assert got["unaffected"] is True


@pytest.mark.parametrize("p3_backend", ["wasm", "webgl"])
def test_a_12mp_display_p3_photo_is_classified_in_bounded_memory(
    browser: Any, server_url: str, scratch: Path, p3_backend: str
) -> None:
    """Decode (the browser's, with its P3 -> sRGB conversion) and preprocess of a 12 MP phone photo, in a
    fresh page (a WASM heap never shrinks, so the shared page's may already be large), on each backend:
    Python's heap grows by at most 200 MB, and Python allocates at most 16 bytes a decoded pixel."""
    from harness import Pyodide

    photo = Image.open(pyapp_build.VENDOR / "samples" / "chelsea.png").convert("RGB").resize((4000, 3000))
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=85, icc_profile=iccprofiles.display_p3())
    (scratch / f"p3-12mp-{p3_backend}.jpg").write_bytes(buf.getvalue())
    context = browser.new_context()
    try:
        page = Pyodide.boot(context.new_page(), server_url)
        got = page.run(
            f"""
            import gc, time, tracemalloc, testutil
            from pyapp import memory
            clf = await testutil.classifier({p3_backend!r})
            await clf.classify(await testutil.fetch("/vendor/samples/coffee.png"))  # warm: kernels, weights
            data = await testutil.fetch("/__scratch__/p3-12mp-{p3_backend}.jpg")
            out = {{}}
            for path in ("numpy", "backend"):
                gc.collect()
                before = memory.snapshot()
                tracemalloc.start()
                started = time.perf_counter()
                result = await clf.classify_detailed(data, path=path)
                out[path] = {{
                    "ms": (time.perf_counter() - started) * 1e3,
                    "python_peak": tracemalloc.get_traced_memory()[1],
                    "decoder": result.decoder,
                    "top": result.top[0],
                }}
                tracemalloc.stop()
                after = memory.snapshot()
                out[path]["python_heap_grew"] = after.python_heap_bytes - before.python_heap_bytes
                out[path]["tf_heap_grew"] = (after.tf_wasm_heap_bytes or 0) - (before.tf_wasm_heap_bytes or 0)
                out[path]["python_heap"] = after.python_heap_bytes
            __value__ = out
            """,
            timeout=300,
        )
    finally:
        context.close()
    print(json.dumps(got, indent=1))
    pixels = 4000 * 3000
    for path, row in got.items():
        assert row["decoder"] == "browser", path
        assert row["python_heap_grew"] <= 200 << 20, (path, row)
        assert row["python_peak"] <= 16 * pixels, (path, row)
    assert got["numpy"]["top"][0] == got["backend"]["top"][0]
