"""Run Python inside Pyodide in a real Chromium page, from pytest (the browser driving itself is
pyapp_build.chromium's, shared with the benchmarks).

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
import re
import textwrap
from collections.abc import Callable
from typing import Any

from pyapp_build.chromium import CHROMIUM_FLAGS, BrowserPythonError, PyodidePage, chromium_path, open_page, serving

__all__ = [
    "CHROMIUM_FLAGS",
    "HARNESS_PAGE",
    "BrowserPythonError",
    "Pyodide",
    "app_results",
    "assert_images_shown_and_released",
    "chromium_path",
    "documented_outputs",
    "model_variant_bytes",
    "open_page",
    "run_in_pyodide",
    "serving",
    "unmet_outputs",
]

#: The page that boots Pyodide, numpy, Pillow, TF.js and pyapp for tests (tests/browser/harness.html).
HARNESS_PAGE = "__tests__/harness.html"


class Pyodide(PyodidePage):
    """A handle on the booted harness page."""

    @classmethod
    def boot(cls, page: Any, server_url: str, ready: str = "harnessReady") -> Pyodide:
        """Open the harness page in ``page``, wait until Pyodide is ready, and import pyapp there."""
        handle: Pyodide = super().boot(page, server_url + HARNESS_PAGE, ready)
        return handle


def app_results(page: Any, count: int) -> list[dict[str, str]]:
    """The app's result cards, once ``count`` of them are done or failed: name, state, top-1 label, text.

    Checked every 100 ms, not every animation frame (Playwright's default): polling on frames keeps the page
    rendering 60 times a second for the wait, work on the main thread the app itself never asks for, and which
    the long-task tests would measure."""
    page.wait_for_function(
        f"() => document.querySelectorAll('#results .result.done, #results .result.failed').length >= {count}",
        polling=100,
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
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = inspect.signature(fn).bind(*args, **kwargs)
            values = [bound.arguments[p] for p in params]
            handle, rest = values[0], values[1:]
            if not isinstance(handle, Pyodide):
                raise TypeError(f"{fn.__name__}: first argument must be the `pyodide` fixture")
            return handle.call(body, fn.__name__, (None, *rest), timeout=timeout)  # type: ignore[no-any-return]

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


def documented_outputs(code: str) -> list[str]:
    r"""What an example says its prints show: the comment after each ``print(...)`` line, in order. A comment
    that begins "e.g." shows one possible output (a backend, a training loss), not a promise, and is left out.

    >>> documented_outputs("x = 1\nprint(x)   # 1\nprint(x)\n    print(x, 2)  # 1 2\nprint(y)  # e.g. webgl")
    ['1', '1 2']
    """
    found = [m.group(1).strip() for m in re.finditer(r"^\s*print\(.*\)\s+#\s?(.*)$", code, re.M)]
    return [want for want in found if not want.startswith("e.g.")]


def unmet_outputs(code: str, output: str) -> list[str]:
    r"""The documented outputs (:func:`documented_outputs`) not found, in order, in the output, each matched as
    doctest matches (``...`` stands for anything, whitespace runs are one space) against a line or a few (a
    printed array spans several).

    >>> unmet_outputs("print(a)  # 0.93...\nprint(b)  # [[3. 3.] [3. 3.]]", "In [1]\n0.9308\n[[3. 3.]\n [3. 3.]]")
    []
    >>> unmet_outputs("print(a)  # 0.93...", "0.5")
    ['0.93...']
    """
    import doctest

    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    lines = output.splitlines()
    missing = []
    at = 0
    for want in documented_outputs(code):
        spans = ((i, n) for i in range(at, len(lines)) for n in range(1, 7))
        found = next((i + n for i, n in spans if checker.check_output(want, "\n".join(lines[i : i + n]), flags)), None)
        if found is None:
            missing.append(want)
        else:
            at = found
    return missing
