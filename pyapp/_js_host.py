"""Stand-ins for ``js`` and ``pyodide.ffi`` under CPython, where no JavaScript runs: importing works, using
one says that this needs Pyodide in a browser. Only :mod:`pyapp._js` imports this.

>>> js.tf
Traceback (most recent call last):
...
pyapp.errors.BackendUnavailable: js.tf: this runs on CPython, not in Pyodide; pyapp's browser features need a browser
"""

from __future__ import annotations

from typing import Any

from pyapp.errors import BackendUnavailable


class JsException(Exception):
    """Never raised on the host: there is no JavaScript to raise it."""


class JsProxy:
    """No value is a JS proxy on the host."""


class _NoJavaScript:
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (doctest, inspect.unwrap) asks for dunders: none here
            raise AttributeError(name)
        raise BackendUnavailable(
            f"js.{name}: this runs on CPython, not in Pyodide; pyapp's browser features need a browser"
        )


js: Any = _NoJavaScript()
pyodide_js: Any = _NoJavaScript()


def to_js(*args: object, **kwargs: object) -> Any:
    """Refuses: there is no JavaScript to convert to."""
    raise BackendUnavailable("to_js: this runs on CPython, not in Pyodide")


def create_proxy(*args: object, **kwargs: object) -> Any:
    """Refuses: there is no JavaScript to hand a proxy to."""
    raise BackendUnavailable("create_proxy: this runs on CPython, not in Pyodide")


def run_js(*args: object, **kwargs: object) -> Any:
    """Refuses: there is no JavaScript to run."""
    raise BackendUnavailable("run_js: this runs on CPython, not in Pyodide")
