"""Driving a real browser from the host, for the tests and the benchmarks alike: which Chromium and with
which flags, serve.py's server on a free port, a page opened until it is ready, Python run in a page.

Host-only; nothing here runs in the browser. The tests' own helpers (their harness page, app result
cards) are in tests/harness.py, on top of this.

>>> "--no-sandbox" in CHROMIUM_FLAGS
True
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import threading
from collections.abc import Iterator, Mapping
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


class PyodidePage:
    """A handle on a page that runs Python: one that defines ``runPython(code)`` (the tests' harness page,
    the benchmarks' page), resolving to ``{ok, result}`` or ``{ok: false, error}``."""

    def __init__(self, page: Any) -> None:
        self.page = page

    @classmethod
    def boot(cls, page: Any, url: str, ready: str) -> Any:
        """Open ``url`` in ``page``, wait for the page's ``ready`` promise (a global's name), import pyapp there."""
        page.goto(url)
        page.evaluate(f"() => {ready}")
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
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
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
