"""The JavaScript edge. Every other module reaches TF.js and the page through here.

Browser-only: importing this under CPython raises ImportError, which keeps the
host-testable modules honest (they must not import it at module level).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import js
from pyodide.ffi import JsException, JsProxy, to_js

from pyapp.errors import BackendUnavailable, JSError

__all__ = ["JsException", "JsProxy", "error_message", "js", "js_errors", "js_object", "tf", "to_js"]


def tf() -> Any:
    """The page's ``tf`` global (TF.js), or :class:`BackendUnavailable`."""
    module = getattr(js, "tf", None)
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
