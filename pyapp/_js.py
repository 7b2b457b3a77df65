"""The JavaScript edge. Every other module reaches TF.js and the page through here.

Host or browser is decided here, once, at import (as micropip's ``_compat`` does): in Pyodide these
are the real ``js`` module and ``pyodide.ffi``'s names; under CPython, stand-ins that say so when used,
so that every module can import them at its top and the pure parts stay host-testable.

>>> import sys
>>> IN_BROWSER == (sys.platform == "emscripten")
True
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pyapp.errors import BackendUnavailable, JSError

#: Whether this is Pyodide in a browser (or a worker, or Node), where ``js`` is the JavaScript global scope.
IN_BROWSER = sys.platform == "emscripten"

if TYPE_CHECKING or IN_BROWSER:
    import js
    import pyodide_js  # type: ignore[import-not-found]  # Pyodide's own JS API (loadPackage)
    from pyodide.code import run_js  # type: ignore[import-not-found]
    from pyodide.ffi import JsException, JsProxy, create_proxy, to_js
else:
    from pyapp._js_host import JsException, JsProxy, create_proxy, js, pyodide_js, run_js, to_js

__all__ = [
    "IN_BROWSER",
    "JsException",
    "JsProxy",
    "create_proxy",
    "error_message",
    "js",
    "js_errors",
    "js_object",
    "pyodide_js",
    "run_js",
    "tf",
    "to_js",
]


def tf() -> js.TF:
    """The page's ``tf`` global (TF.js), or :class:`BackendUnavailable`."""
    module: js.TF | None = getattr(js, "tf", None)
    if module is None:
        raise BackendUnavailable("TensorFlow.js is not loaded on this page (globalThis.tf is undefined)")
    return module


def js_object(value: dict[str, Any]) -> Any:
    """A plain JS object (not a Map, not a PyProxy) from a Python dict."""
    return to_js(value, dict_converter=js.Object.fromEntries)


def error_message(exc: BaseException) -> str:
    """The JS error's own message, without Pyodide's wrapping."""
    message = getattr(exc, "message", None)
    return str(message) if message else str(exc)


@contextmanager
def js_errors(context: str) -> Iterator[None]:
    """Turn a JS exception raised inside the block into :class:`JSError`."""
    try:
        yield
    except JsException as exc:
        name = str(getattr(exc, "name", "Error"))
        raise JSError(f"{context}: {name}: {error_message(exc)}", js_name=name) from None
