"""Run Python inside Pyodide in a real Chromium page, from pytest.

Modelled on pytest-pyodide's ``run_in_pyodide``: a test function decorated
with :func:`run_in_pyodide` is not run on the host; its source is sent to the
page and run there (sync or async), its arguments and return value travel as
JSON, and a Python exception in the browser fails the test with the browser's
own traceback.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import shutil
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # WebGL through SwiftShader: real GL on machines without a GPU.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    # A synthetic camera, granted without a prompt, for the app's camera capture.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def chromium_path(*, shell: bool = True) -> str:
    """The Chromium to drive: $PYAPP_CHROMIUM, else Debian's ``chromium-headless-shell`` (``shell``), else
    ``chromium`` on PATH.

    The tests prefer the headless shell: the same Blink, V8, SwiftShader and service workers as the full
    browser (it is what Playwright itself runs headless), without the browser UI's compositor. Measured here,
    one run of each side by side: an app boot 20% less CPU, the whole suite 6% less CPU and 8% less wall
    time (smaller than the spread between fresh-clone CI runs on this machine). The benchmarks and the
    main-thread timing test measure what a visitor runs, so they ask for the full browser (``shell=False``).
    """
    candidates = ["chromium-headless-shell"] if shell else []
    path = os.environ.get("PYAPP_CHROMIUM") or next(
        (found for name in (*candidates, "chromium", "chromium-browser") if (found := shutil.which(name))), None
    )
    if not path:
        raise RuntimeError(
            "no Chromium found: install Debian's `chromium-headless-shell` or `chromium`, "
            "or set PYAPP_CHROMIUM=/path/to/chrome"
        )
    return path


class BrowserPythonError(AssertionError):
    """A Python exception raised inside Pyodide; the message is the browser-side traceback."""


_PRELUDE = """from __future__ import annotations
import json as __json
def __default(o):
    import numpy as np
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    raise TypeError(f"cannot send {type(o).__name__} back to pytest")
"""


#: The page that boots Pyodide, numpy, Pillow, TF.js and pyapp for tests (tests/browser/harness.html).
HARNESS_PAGE = "__tests__/harness.html"


class Pyodide:
    """A handle on the booted harness page."""

    def __init__(self, page: Any) -> None:
        self.page = page

    @classmethod
    def boot(cls, page: Any, server_url: str) -> Pyodide:
        """Open the harness page in ``page``, wait until Pyodide is ready, and import pyapp there."""
        page.goto(server_url + HARNESS_PAGE)
        page.evaluate("() => harnessReady")
        handle = cls(page)
        handle.run("import pyapp")
        return handle

    def run(self, code: str, timeout: float = 300.0) -> Any:
        """Run ``code`` (top-level await allowed); returns ``__result__`` decoded from JSON."""
        wrapped = (
            _PRELUDE
            + textwrap.dedent(code)
            + "\n__result__ = __json.dumps(globals().get('__value__'), default=__default)\n"
        )
        self.page.set_default_timeout(timeout * 1000)
        # page.evaluate has no timeout of its own: a promise that never settles would hold the test (and
        # its pytest-xdist worker) forever. The race turns it into a failure that names the limit.
        out = self.page.evaluate(
            """([code, ms]) => Promise.race([
                runPython(code),
                new Promise(resolve => setTimeout(
                    () => resolve({ ok: false, error: `no answer from Python within ${ms / 1000} s` }), ms)),
            ])""",
            [wrapped, timeout * 1000],
        )
        if not out["ok"]:
            raise BrowserPythonError("Python in the browser raised:\n" + out["error"])
        return json.loads(out["result"])

    def call(self, source: str, name: str, args: tuple[Any, ...], timeout: float = 300.0) -> Any:
        code = (
            f"{source}\n"
            f"__args = __json.loads({json.dumps(json.dumps(args))})\n"
            f"__value__ = {name}(*__args)\n"
            "import inspect as __inspect\n"
            "if __inspect.isawaitable(__value__):\n"
            "    __value__ = await __value__\n"
        )
        return self.run(code, timeout=timeout)


@contextmanager
def serving(mounts: Mapping[str, Path], csp_exempt: tuple[str, ...] = ()) -> Iterator[str]:
    """serve.py's server (the site's headers) on a free port, in a thread, while the block runs; its base URL."""
    import serve

    server = serve.make_server("127.0.0.1", 0, dict(mounts), quiet=True, csp_exempt=csp_exempt)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def open_page(
    browser: Any, url: str, ready: str, *, viewport: dict[str, int] | None = None, timeout_ms: float = 180_000
) -> tuple[Any, Any]:
    """A new context and page at ``url``, once the ``ready`` selector matches.

    ``page.errors`` lists the page's uncaught errors, for tests to assert there are none.
    """
    context = browser.new_context(viewport=viewport) if viewport else browser.new_context()
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector(ready)
    page.errors = errors
    return context, page


def app_results(page: Any, count: int) -> list[dict[str, str]]:
    """The app's result cards, once ``count`` of them are done or failed: name, state, top-1 label, text."""
    page.wait_for_function(
        f"() => document.querySelectorAll('#results .result.done, #results .result.failed').length >= {count}"
    )
    return page.evaluate(
        """() => [...document.querySelectorAll('#results .result')].map(li => ({
            name: li.querySelector('.name').textContent,
            state: li.className,
            top1: li.dataset.top1 || '',
            text: li.innerText,
        }))"""
    )


def assert_images_shown_and_released(page: Any, selector: str) -> int:
    """Every image matching ``selector`` has loaded and shows its picture, and its blob URL is revoked (a
    fetch of it fails): thumbnails must not keep their file's bytes alive. Returns how many there are."""
    page.wait_for_function(
        "(sel) => [...document.querySelectorAll(sel)].every((i) => i.complete && !i.hasAttribute('data-release'))",
        arg=selector,
    )
    states = page.evaluate(
        """async (sel) => Promise.all([...document.querySelectorAll(sel)].map(async (img) => {
            let fetched = true;
            try { await fetch(img.src); } catch { fetched = false; }
            return { src: img.src.slice(0, 5), width: img.naturalWidth, fetched };
        }))""",
        selector,
    )
    for state in states:
        assert state["src"] == "blob:", state
        assert state["width"] > 0, f"an image shows nothing: {state}"
        assert not state["fetched"], f"a blob URL was not revoked: {state}"
    return len(states)


def run_in_pyodide(func: Callable[..., Any] | None = None, *, timeout: float = 300.0) -> Any:
    """Run the decorated test's body in the browser.

    The first parameter must be ``selenium``-style: here it is the ``pyodide``
    fixture (a :class:`Pyodide`); the others are passed as JSON. The function
    body sees none of the host's globals: import what it needs inside it.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        source = textwrap.dedent(inspect.getsource(fn))
        # Drop decorator lines: the browser runs the bare function.
        lines = source.splitlines()
        while lines and lines[0].lstrip().startswith("@"):
            lines.pop(0)
        body = "\n".join(lines)
        params = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            bound = inspect.signature(fn).bind(*args, **kwargs)
            values = [bound.arguments[p] for p in params]
            handle, rest = values[0], values[1:]
            if not isinstance(handle, Pyodide):
                raise TypeError(f"{fn.__name__}: first argument must be the `pyodide` fixture")
            handle.call(body, fn.__name__, (None, *rest), timeout=timeout)

        return wrapper

    return decorate(func) if func is not None else decorate


#: What tests/browser/probe/csp.js reports under the app's Content-Security-Policy, on every engine.
CSP_PROBE_EXPECTED = {
    "eval": "blocked",
    "function": "blocked",
    "string-timer": "blocked",
    "inline-script": "blocked",
    "other-origin-fetch": "blocked",
    "wasm": "allowed",
}


def model_variant_bytes(name: str) -> int:
    """The bytes of one variant's files of the app's model, as its manifest lists them."""
    import pyapp_build

    folder = pyapp_build.MODELS / "nsfw-mobilenet-v2"
    manifest = json.loads((folder / "manifest.json").read_text())
    (variant,) = [v for v in manifest["variants"] if v["name"] == name]
    return sum((folder / rel).stat().st_size for rel in variant["files"])
