"""pyapp.live (ImageClassifier.classify_stream) on Chromium's camera showing real images, a second each (a cat
photo, then a logo): results follow the scene, drops are counted, 2,000 frames leave nothing behind, stopping
releases the camera, and the docstrings' page examples print what they say."""

from __future__ import annotations

import itertools
import textwrap
from typing import Any

import numpy as np
import pytest
from harness import Pyodide, run_in_pyodide, unmet_outputs
from session import PAGE_EXAMPLE_MARK, all_examples
from test_playground import readme_examples

from pyapp.live import StreamResult, StreamStats
from pyapp.predictions import Predictions

# One camera browser serves both camera modules: their tests share one xdist worker (tools/test.sh: loadgroup).
pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group("camera")]
LIVE_BACKENDS = ["wasm", "webgl"]


def test_stats_summarise_the_last_results() -> None:
    """The status line an app shows; a result names its top label and confidence."""
    stats = StreamStats(results=3, dropped=7, fps=14.84, latency_ms=61.2, latency_p90_ms=80.9, stopped=None)
    assert stats.summary() == "14.8 fps · 61 ms latency (p90 81) · 7 dropped"
    empty = StreamResult(Predictions(), 0, 0.0, 0.0, 0, "numpy")
    assert (empty.label, empty.confidence) == ("", 0.0)


@run_in_pyodide(timeout=600)
async def _follow_the_scene(pyodide: Pyodide, backend: str) -> dict[str, Any]:
    import itertools

    import testutil

    import pyapp
    from pyapp import browser

    clf = await testutil.classifier(backend)
    backend_path = pyapp.runtime.current().backend_preprocessing
    before = await testutil.leaks()
    camera = await browser.open_camera(width=640, height=480)
    rows = []
    async with clf.classify_stream(camera) as live:
        async for r in live:
            rows.append([r.index, r.label, r.confidence, r.time, r.latency_ms, r.dropped, r.path])
            labels = [row[1] for row in rows]
            if sum(a != b for a, b in itertools.pairwise(labels)) >= 3 or len(rows) == 300:
                break
    stats = live.stats()
    track = str(camera.stream.getVideoTracks()[0].readyState)
    del live, r, camera
    after = await testutil.leaks()
    return {
        "rows": rows,
        "stats": [stats.results, stats.dropped, stats.fps, stats.stopped],
        "track": track,
        "backend_path": backend_path,
        "before": before,
        "after": after,
    }


@pytest.mark.parametrize("backend", LIVE_BACKENDS)
def test_results_follow_the_scene_with_drops_and_latency(camera_page: Pyodide, backend: str) -> None:
    """MobileNetV2 on the camera: each result has its frame's index, time and latency and the preprocessing path
    the runtime picks; the top label changes as the scene does (the cat is Neutral, the logo a Drawing), back and
    forth; the frames that came during a prediction are dropped and counted (the camera is faster than the
    model); leaving ``async with`` stops the camera; no tensor, proxy or JS reference is left."""
    got = _follow_the_scene(camera_page, backend)
    rows = got["rows"]
    index, labels, confidence, time, latency, dropped, path = (list(c) for c in zip(*rows, strict=True))
    assert index == list(range(len(rows)))
    assert {"Neutral", "Drawing"} <= set(labels), labels
    assert sum(a != b for a, b in itertools.pairwise(labels)) >= 3, labels
    assert min(confidence) > 0.5, confidence
    assert all(np.diff(time) > 0), time
    assert min(latency) > 0, latency
    assert max(latency) < 5_000, latency
    assert set(path) == {"backend" if got["backend_path"] else "numpy"}
    assert dropped[0] == 0
    assert sum(dropped) == got["stats"][1]
    assert sum(dropped) > len(rows), "a 60 fps camera outruns MobileNetV2 here: frames must be dropped, not queued"
    assert got["stats"][0] == len(rows)
    assert got["stats"][2] > 0
    assert got["stats"][3] == "closed"
    assert got["track"] == "ended"
    assert got["after"] == got["before"]


#: A MediaStream of a small canvas painted every animation frame with one photo, then the other (a second
#: each): the pipeline of a camera at 60 fps, at a size whose frames cost little to read.
PAINTER = """async (bitmaps, width, height) => {
  const canvas = Object.assign(document.createElement("canvas"), { width, height });
  const ctx = canvas.getContext("2d");
  let n = 0, on = true;
  const paint = () => {
    if (!on) return;
    ctx.drawImage(bitmaps[Math.floor(n++ / 60) % bitmaps.length], 0, 0, width, height);
    requestAnimationFrame(paint);
  };
  paint();
  return { stream: canvas.captureStream(60), stop: () => { on = false; bitmaps.forEach((b) => b.close()); } };
}"""


@run_in_pyodide(timeout=300)
async def test_synthetic_camera_streams_on_wasm(pyodide: Pyodide) -> None:
    """Chromium's synthetic camera (its moving test pattern, 20 fps, in the shared page): ten results on wasm,
    each after the previous one, with the backend path and drops that add up; the unnamed stream's ``break``
    ends the camera's track (the shared page's leak check runs after this test)."""
    import itertools

    import testutil

    from pyapp import browser

    clf = await testutil.classifier("wasm")
    camera = await browser.open_camera(width=320, height=240)
    rows = []
    async for result in clf.classify_stream(camera):
        rows.append((result.index, result.time, result.dropped, result.path, result.label))
        if result.index == 9:
            break
    assert [r[0] for r in rows] == list(range(10))
    assert all(b[1] > a[1] for a, b in itertools.pairwise(rows))
    assert {r[3] for r in rows} == {"backend"}
    assert all(r[4] in clf.labels for r in rows)
    assert str(camera.stream.getVideoTracks()[0].readyState) == "ended"
    del camera, result


@run_in_pyodide(timeout=600)
async def _two_thousand_frames(pyodide: Pyodide, backend: str, frames: int, painter_js: str) -> dict[str, Any]:
    import gc

    import js
    import numpy as np
    import testutil

    from pyapp import memory

    await testutil.use_backend(backend)
    clf = testutil.tiny_classifier()
    await clf.classify(np.zeros((32, 32, 3), np.uint8))  # its weights are made on first use
    base = await testutil.settled()
    painter = await js.eval(painter_js)(await testutil.fetch_bitmaps(["chelsea.png", "rocket.jpg"]), 160, 120)
    live = clf.classify_stream(painter.stream)
    async for r in live:  # warm: kernels compiled, first-use caches filled
        if r.index == 59:
            break
    gc.collect()
    warm, held_warm = memory.snapshot(), await testutil.settled()
    labels = set()
    async for r in live:
        labels.add(r.label)
        if r.index == 59 + frames:
            break
    gc.collect()
    end, held_end = memory.snapshot(), await testutil.settled()
    stats = live.stats()
    live.close()
    track = str(painter.stream.getVideoTracks()[0].readyState)
    painter.stop()
    del live, r, painter
    released = await testutil.settled()
    clf.dispose()
    return {
        "labels": sorted(labels),
        "results": stats.results,
        "dropped": stats.dropped,
        "track": track,
        "held": [held_warm, held_end],
        "released": [base, released],
        "tensors": [warm.num_tensors, end.num_tensors, warm.num_bytes, end.num_bytes],
        "python_heap": [warm.python_heap_bytes, end.python_heap_bytes],
        "tf_wasm_heap": [warm.tf_wasm_heap_bytes or 0, end.tf_wasm_heap_bytes or 0],
    }


@pytest.mark.parametrize("backend", LIVE_BACKENDS)
def test_two_thousand_frames_leave_tensors_proxies_and_heaps_as_they_were(camera_page: Pyodide, backend: str) -> None:
    """2,000 frames classified from a 60 fps MediaStream (a 160x120 canvas showing the photos in turn) after 60
    to warm up, by a small model (so that they take ~40 s, not half an hour on SwiftShader): tensors and their
    bytes, live PyProxies and JS references are where they were after the warm-up, and the Python and TF.js WASM
    heaps grow by at most 8 MB; stopping ends the stream's track (a MediaStream given to the stream is stopped
    with it) and gives back every proxy and reference the stream held."""
    got = _two_thousand_frames(camera_page, backend, 2_000, PAINTER)
    assert got["results"] == 2_060
    assert got["tensors"][0] == got["tensors"][1], got["tensors"]
    assert got["tensors"][2] == got["tensors"][3], got["tensors"]
    assert got["held"][0] == got["held"][1], got["held"]
    assert got["released"][0] == got["released"][1], got["released"]
    mb8 = 8 * 1024 * 1024
    assert got["python_heap"][1] - got["python_heap"][0] <= mb8, got["python_heap"]
    assert got["tf_wasm_heap"][1] - got["tf_wasm_heap"][0] <= mb8, got["tf_wasm_heap"]
    assert got["track"] == "ended"


def _run_capturing(handle: Pyodide, code: str) -> str:
    """Run an example at the page's top level (top-level await allowed), returning what it printed."""
    wrapped = (
        "import contextlib as __contextlib, io as __io\n__out = __io.StringIO()\n"
        "with __contextlib.redirect_stdout(__out):\n" + textwrap.indent(code, "    ") + "\n__value__ = __out.getvalue()"
    )
    out: str = handle.run(wrapped, timeout=300)
    return out


def test_page_examples_run_as_written(camera_page: Pyodide) -> None:
    """Every 'Example (in a page)' of pyapp's docstrings and the README's camera example (the camera needs the
    page, so the playground's worker cannot run them) runs in the page and prints what it documents."""
    examples = all_examples(PAGE_EXAMPLE_MARK)
    assert {"pyapp.video", "pyapp.live", "pyapp.classifier.ImageClassifier.classify_stream"} <= set(examples)
    readme = readme_examples(page=True)
    assert len(readme) == 1
    camera_page.run("import testutil\nawait testutil.use_backend('wasm')")  # not SwiftShader's 0.6 s a frame
    for title, code in [*examples.items(), ("README", readme[0])]:
        printed = _run_capturing(camera_page, code)
        missing = unmet_outputs(code, printed)
        assert missing == [], f"page example {title} printed otherwise than documented: {missing}\n{printed}"
