"""The playground: its Python engine on the host, and the page in Chromium (README and docstring examples
run as written, uploads, rich output, Stop, the teach panel)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import assert_images_shown_and_released, unmet_outputs
from session import Session, all_examples, browser_examples, rich_html

import pyapp_build

ROOT = Path(__file__).resolve().parent.parent


def _run(session: Session, code: str) -> Any:
    # On a thread of its own: Playwright's sync API (the browser tests) keeps an event loop
    # running on the main thread, where asyncio.run refuses to start another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, session.run(code)).result()


def test_cells_share_a_namespace_await_at_top_level_and_show_the_last_value() -> None:
    out: list[tuple[str, str]] = []
    session = Session(write=lambda stream, text: out.append((stream, text)))
    first = _run(session, "import asyncio\nx = 20\nawait asyncio.sleep(0)\nx + 1")
    assert first.ok
    assert first.value_text == "21"
    second = _run(session, "y = x * 2\nprint('y is', y)")
    assert second.ok
    assert second.value_html is None, "a cell ending in a statement shows nothing"
    assert "".join(t for s, t in out if s == "stdout") == "y is 40\n"
    assert _run(session, "_").value_text == "21", "_ is the last value shown"
    later = _run(session, "async def f():\n    return 5\nf()")
    assert "coroutine" in later.value_text, "an un-awaited coroutine stays a value, as in Python"
    session.namespace["_"].close()
    assert _run(session, "await f()").value_text == "5"


def test_errors_show_the_users_own_lines_only() -> None:
    session = Session(write=lambda *_: None)
    result = _run(session, "a = 1\nb = 0\na / b")
    assert not result.ok
    assert result.error.startswith("Traceback (most recent call last):")
    assert 'File "<cell 1>", line 3' in result.error
    assert result.error.endswith("ZeroDivisionError: division by zero")
    assert "playground.py" not in result.error, "the runner's own frames are hidden"
    syntax = _run(session, "def broken(:\n    pass")
    assert not syntax.ok
    assert "SyntaxError" in syntax.error
    assert "<cell 2>" in syntax.error
    assert _run(session, "a").value_text == "1", "an error leaves the namespace usable"


def test_stderr_and_display_stream_in_order() -> None:
    out: list[tuple[str, str]] = []
    session = Session(write=lambda stream, text: out.append((stream, text)))
    _run(session, "import sys, numpy as np\nprint('a')\nsys.stderr.write('b')\ndisplay(np.zeros(2))\nprint('c')")
    kinds = [s for s, t in out if t.strip()]
    assert kinds == ["stdout", "stderr", "html", "stdout"]


def _run_interrupted_after(session: Session, code: str, seconds: float, prepare: Any = None) -> Any:
    """Run a cell while the event loop (not the cell) takes a Stop after ``seconds``, as when the page's
    interrupt lands while the cell awaits."""

    async def main() -> Any:
        asyncio.get_running_loop().call_later(seconds, lambda: session.interrupt(sys._getframe()))
        return await session.run(code, prepare=prepare)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def test_stop_inside_the_cells_own_code_raises_there_and_keeps_the_namespace() -> None:
    """A runaway loop takes the interrupt in its own frame: KeyboardInterrupt there, the namespace kept."""
    session = Session(write=lambda *_: None)
    session.namespace["poke"] = lambda: session.interrupt(sys._getframe())
    result = _run(session, "kept = 41\nn = 0\nwhile True:\n    n += 1\n    if n == 1000:\n        poke()")
    assert (result.ok, result.error) == (False, "Interrupted (Stop)")
    assert session.namespace["n"] == 1000
    assert _run(session, "kept + 1").value_text == "42", "the next cell runs as usual"


def test_stop_between_a_cells_steps_cancels_the_cell() -> None:
    """An interrupt that lands in the event loop while the cell awaits ends the cell, not the loop: before,
    Pyodide's KeyboardInterrupt stopped whatever ran there, and the cell ran on."""
    session = Session(write=lambda *_: None)
    result = _run_interrupted_after(session, "import asyncio\nawait asyncio.sleep(3600)\nreached = True", 0.05)
    assert (result.ok, result.error) == (False, "Interrupted (Stop)")
    assert "reached" not in session.namespace
    assert _run(session, "1 + 1").value_text == "2"


def test_stop_while_the_cell_prepares_ends_it_before_its_code_runs() -> None:
    """The playground loads a cell's imports first; a Stop then ends the cell and its code never runs."""
    session = Session(write=lambda *_: None)
    prepared: list[str] = []

    async def prepare(source: str) -> None:
        prepared.append(source)
        await asyncio.sleep(3600)

    result = _run_interrupted_after(session, "ran = True", 0.05, prepare=prepare)
    assert (result.ok, result.error) == (False, "Interrupted (Stop)")
    assert prepared == ["ran = True"]
    assert "ran" not in session.namespace


def test_a_stop_before_the_cell_stops_it_a_late_one_is_dropped_and_a_cancelled_caller_is_no_stop() -> None:
    """A Stop that reaches Python before the cell does (clicked as Run was) stops that cell before its code
    runs; one that arrives after the run is over (forget_stop) reaches nothing; cancelling the caller
    cancels, and is not mistaken for a Stop."""
    session = Session(write=lambda *_: None)
    session.interrupt(sys._getframe())
    early = _run(session, "x = 1")
    assert (early.ok, early.error) == (False, "Interrupted (Stop)")
    assert "x" not in session.namespace
    assert _run(session, "x = 1").ok, "the early Stop was spent on one cell"
    session.interrupt(sys._getframe())
    session.forget_stop()
    assert _run(session, "x + 1").value_text == "2"

    async def cancel_the_caller() -> bool:
        caller = asyncio.ensure_future(session.run("import asyncio\nawait asyncio.sleep(3600)"))
        await asyncio.sleep(0.05)
        caller.cancel()
        try:
            await caller
        except asyncio.CancelledError:
            return True
        return False

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, cancel_the_caller()).result()


def test_rich_html_for_arrays_predictions_tables_and_images_escapes_everything() -> None:
    array = rich_html(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert "ndarray (2, 3) float32" in array
    assert "max 5" in array
    bars = rich_html([("Neutral", 0.93), ("<b>x</b>", 0.07)])
    assert bars.count("<meter") == 2
    assert "&lt;b&gt;x&lt;/b&gt;" in bars
    assert "<b>x</b>" not in bars
    assert "<script>" not in rich_html("<script>alert(1)</script>")
    assert "&lt;script&gt;" in rich_html({"k": "<script>"})
    from PIL import Image

    image = rich_html(Image.new("RGB", (4, 3), "red"))
    assert "src='data:image/png;base64," in image
    assert "RGB 4×3" in image


def test_browser_examples_are_found_in_every_browser_module() -> None:
    doc = "Intro.\n\nExample (in the browser)::\n\n    x = 1\n\n        y = 2\n\nAfter.\n"
    assert browser_examples(doc) == ["x = 1\n\n    y = 2"]
    examples = all_examples()
    modules = {title.split(" (")[0] for title in examples}
    for module in ("pyapp.runtime", "pyapp.model", "pyapp.classifier", "pyapp.training", "pyapp.transfer"):
        assert module in modules
    assert all(code.strip() for code in examples.values())


def readme_examples(page: bool = False) -> list[str]:
    """The README's ```python blocks: those the playground runs, or (``page``) those that need the page itself
    (a camera), which tests/test_live.py runs."""
    text = (ROOT / "README.md").read_text()
    blocks = [m.group(1) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]
    return [b for b in blocks if ("open_camera(" in b) == page]


def test_readme_has_python_examples() -> None:
    blocks = readme_examples()
    assert len(blocks) >= 4
    assert any("await model.fit(" in b for b in blocks)


# ------------------------------------------------------------------------ the page, in Chromium


def _run_cell(page: Any, code: str, *, keyboard: bool = False) -> dict[str, str]:
    """Type code into the editor, run it, return the new cell's state and text."""
    before = page.locator("#output .cell").count()
    page.fill("#editor", code)
    if keyboard:
        page.focus("#editor")
        page.keyboard.press("Control+Enter")
    else:
        page.click("#run")
    page.wait_for_function(
        """(n) => document.querySelectorAll('#output .cell').length > n
            && document.querySelector('#output .cell').dataset.state !== 'running'""",
        arg=before,
    )
    cell = page.locator("#output .cell").first
    return {"state": cell.get_attribute("data-state") or "", "text": cell.inner_text(), "html": cell.inner_html()}


def test_readme_examples_run_as_written(playground: Any) -> None:
    """Every ```python block of the README, each in a fresh namespace, runs without error (those that read
    files added under Files run in the tests that add them: tests/test_convert.py)."""
    for block in readme_examples():
        if "uploads[" in block:
            continue
        playground.click("#reset")
        cell = _run_cell(playground, block)
        assert cell["state"] == "ok", f"README example failed:\n{block}\n---\n{cell['text']}"
    assert playground.errors == []


def test_docstring_examples_run_as_written(playground: Any) -> None:
    """Every 'Example (in the browser)' of pyapp's docstrings, picked from the Examples menu and run; what each
    documents its prints to show (the comment after a ``print(...)``) is what they show."""
    titles = playground.eval_on_selector_all("#examples option", "os => os.map(o => o.value).filter(Boolean)")
    assert len(titles) == len(all_examples())
    for title in titles:
        playground.click("#reset")
        playground.select_option("#examples", title)
        playground.wait_for_function(
            "(t) => document.getElementById('editor').value.length > 0 && document.activeElement.id === 'editor'",
            arg=title,
        )
        code = playground.input_value("#editor")
        assert code == all_examples()[title]
        cell = _run_cell(playground, code)
        assert cell["state"] == "ok", f"docstring example {title} failed:\n{code}\n---\n{cell['text']}"
        missing = unmet_outputs(code, cell["text"])
        assert missing == [], f"docstring example {title} printed otherwise than documented: {missing}\n{cell['text']}"
    assert playground.errors == []


def test_uploads_rich_values_keyboard_and_errors(playground: Any) -> None:
    """A developer adds a photo, classifies it, looks at a tensor as numpy and at memory, and makes a mistake."""
    playground.set_input_files("#upload-input", [pyapp_build.VENDOR / "samples" / "chelsea.png"])
    playground.wait_for_selector("#uploads li:has-text('chelsea.png')")
    cell = _run_cell(
        playground,
        'clf = await pyapp.ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")\n'
        'await clf.classify(uploads["chelsea.png"])',
        keyboard=True,
    )
    assert cell["state"] == "ok"
    assert cell["html"].count("<meter") == 5
    assert '<li class="bar top"><span class="label">Neutral</span>' in cell["html"]
    # prepare() is synchronous, so it decodes bytes with Pillow, which the playground loads for a cell that
    # imports it (an earlier test may have loaded it already: this test does not count on one).
    cell = _run_cell(playground, 'import PIL\nx = clf.prepare(uploads["chelsea.png"])\nx[0, :2, :2, 0]')
    assert "ndarray (2, 2) float32" in cell["text"]
    cell = _run_cell(playground, "from pyapp import memory\nclf.dispose()\nmemory.snapshot()")
    assert "Memory snapshot" in cell["text"]
    assert "num_tensors" in cell["text"]
    cell = _run_cell(playground, "print('before')\nclf.classify(None)\n")
    assert cell["state"] == "ok", "an un-awaited coroutine is a value, not an error"
    cell = _run_cell(playground, "print('before')\nawait clf.classify(uploads['chelsea.png'])")
    assert cell["state"] == "error"
    assert "before" in cell["text"]
    assert "DisposedError" in cell["text"]
    assert "<cell" in cell["text"]
    memory_panel = playground.inner_text("#pg-memory")
    assert "Tensors" in memory_panel


def test_stop_interrupts_a_runaway_cell_and_keeps_the_namespace(playground: Any) -> None:
    def run(code: str) -> int:
        """Click Run on ``code``; how many cells there were before (the new one is the first)."""
        before: int = playground.locator("#output .cell").count()
        playground.fill("#editor", code)
        playground.click("#run")
        return before

    def newest_becomes(state: str, before: int) -> str:
        """Wait for the cell that Run added (not an earlier one) to reach ``state``; its text."""
        playground.wait_for_function(
            """([state, before]) => document.querySelectorAll('#output .cell').length > before
                && document.querySelector('#output .cell').dataset.state === state""",
            arg=[state, before],
        )
        text: str = playground.locator("#output .cell").first.inner_text()
        return text

    _run_cell(playground, "kept = 41")
    before = run("n = 0\nwhile True:\n    n += 1\n    if n % 200_000 == 0:\n        print('looping')")
    # Its output shows that the loop itself runs: the interrupt lands in the cell's own code.
    playground.wait_for_function("() => document.querySelector('#output .cell pre')?.textContent.includes('looping')")
    playground.click("#stop")
    assert "Interrupted" in newest_becomes("error", before)
    cell = _run_cell(playground, "kept + 1, n > 0")
    assert cell["state"] == "ok"
    assert "(42, True)" in cell["text"]
    # A cell that awaits takes the interrupt in the event loop, not in its own code: Stop cancels it there.
    before = run("import asyncio\nawait asyncio.sleep(3600)\nslept = True")
    newest_becomes("running", before)
    playground.wait_for_timeout(500)
    playground.click("#stop")
    assert "Interrupted" in newest_becomes("error", before)
    # Stop clicked as Run is: wherever Python then is (the run not begun, the imports loading, the loop),
    # the cell ends.
    before = run("early = True\nwhile True:\n    pass")
    playground.click("#stop")
    assert "Interrupted" in newest_becomes("error", before)
    cell = _run_cell(playground, "'slept' in dir(), kept")
    assert cell["state"] == "ok", "a Stop reaches only its own run"
    assert "(False, 41)" in cell["text"], "the namespace is intact"


@pytest.fixture
def face_files(tmp_path: Path, built: None) -> dict[str, list[Path]]:
    """Real photos from the LFW subset as PNG files: 8 faces and 8 non-faces to teach, one of each to try."""
    from PIL import Image

    from pyapp.datasets import parse_faces

    images, labels = parse_faces((pyapp_build.VENDOR / "data" / "lfw_subset.npy").read_bytes())
    files: dict[str, list[Path]] = {"face": [], "not a face": []}
    for label, name in ((1, "face"), (0, "not a face")):
        for n, index in enumerate(np.flatnonzero(labels == label)[:9]):
            path = tmp_path / f"{name.replace(' ', '-')}-{n}.png"
            Image.fromarray(images[index]).resize((100, 100)).save(path)
            files[name].append(path)
    return files


def test_teach_panel_trains_tries_saves_downloads_and_reloads(
    playground: Any, face_files: dict[str, list[Path]], tmp_path: Path
) -> None:
    """A visitor names two classes, adds photos to each, trains, tries unseen photos, saves in the browser,
    downloads the files, reloads the page and loads the saved classifier back."""
    page = playground
    for index, name in enumerate(("not a face", "face")):
        page.fill(f"#class-name-{index}", name)
        page.dispatch_event(f"#class-name-{index}", "change")
        page.set_input_files(f"#class-files-{index}", face_files[name][:8])
        page.wait_for_function(
            "(i) => document.querySelector(`[data-class='${i}'] .count`).textContent === '8 examples'", arg=index
        )
    assert page.locator(".class-card .thumbs img").count() == 16
    page.fill("#epochs", "40")
    page.click("#train")
    page.wait_for_function("() => document.getElementById('train-status').textContent.startsWith('Trained on 16')")
    assert page.evaluate("document.getElementById('train-progress').value") == 40

    def try_photo(path: Path) -> str:
        page.evaluate("delete document.getElementById('try-result').dataset.top1")
        page.set_input_files("#try-input", [path])
        page.wait_for_function("() => document.getElementById('try-result').dataset.top1 !== undefined")
        return str(page.evaluate("document.getElementById('try-result').dataset.top1"))

    assert try_photo(face_files["face"][8]) == "face"
    assert try_photo(face_files["not a face"][8]) == "not a face"
    # 16 examples and the last photo tried: each shown, its blob URL revoked once loaded.
    assert assert_images_shown_and_released(page, ".class-card .thumbs img, #try-result img") == 17
    page.fill("#save-name", "pytest-teach")
    page.click("#save")
    page.wait_for_function("() => document.getElementById('save-status').textContent.startsWith('Saved')")
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    page.click("#download")
    page.wait_for_function("() => document.getElementById('save-status').textContent.startsWith('Downloaded')")
    page.wait_for_timeout(500)
    assert sorted(d.suggested_filename for d in downloads) == ["pytest-teach.json", "pytest-teach.weights.bin"]

    # The reverse direction: the trained head as a .keras file, written in the page, read by Keras 3 on the host.
    downloads.clear()
    page.click("#download-keras")
    page.wait_for_function("() => document.getElementById('save-status').textContent.includes('.keras')")
    page.wait_for_timeout(500)
    assert [d.suggested_filename for d in downloads] == ["pytest-teach.keras"]
    keras_file = tmp_path / "pytest-teach.keras"
    downloads[0].save_as(keras_file)
    cell = _run_cell(
        page,
        "import json, numpy as np\n"
        "head = await pyapp.training.load('indexeddb://pytest-teach')\n"
        "x = np.random.default_rng(0).normal(0, 1, (8, 1280)).astype(np.float32)\n"
        "print('JSON' + json.dumps((await head.predict(x)).tolist()))\n"
        "head.dispose()",
    )
    assert cell["state"] == "ok", cell["text"]
    tfjs = np.asarray(json.loads(cell["text"].split("JSON", 1)[1].strip()), np.float32)
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    keras = pytest.importorskip("keras")
    model = keras.saving.load_model(keras_file)
    x = np.random.default_rng(0).normal(0, 1, (8, 1280)).astype(np.float32)
    diff = float(np.abs(np.asarray(model.predict(x, verbose=0)) - tfjs).max())
    print(f"\nteach head: Keras predict on the exported .keras vs TF.js in the page, max abs diff {diff:.2e}")
    assert diff <= 1e-5

    page.reload()
    page.wait_for_selector("#playground[data-ready='true']")
    page.select_option("#saved", "indexeddb://pytest-teach")
    page.click("#load")
    page.wait_for_function("() => document.getElementById('save-status').textContent.startsWith('Loaded')")
    assert page.input_value("#class-name-1") == "face"
    assert try_photo(face_files["face"][8]) == "face"
    cell = _run_cell(page, 'await pyapp.saving.remove_saved("indexeddb://pytest-teach")')
    assert cell["state"] == "ok"
    assert page.errors == []
