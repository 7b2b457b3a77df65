"""pyapp: browser machine learning in Python (Pyodide + TensorFlow.js).

Importing ``pyapp`` is cheap and needs only the standard library; the browser
modules load on first use.

Example (in Pyodide, on a page that loaded TF.js)::

    import pyapp
    runtime = await pyapp.init(backends=("webgl", "wasm", "cpu"))
    async with await pyapp.ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json") as clf:
        print(await clf.classify(open("cat.png", "rb").read()))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyapp._version import __version__

if TYPE_CHECKING:
    from pyapp.classifier import ImageClassifier
    from pyapp.errors import (
        BackendUnavailable,
        DisposedError,
        InvalidImage,
        InvalidInput,
        JSError,
        ModelIntegrityError,
        ModelLoadError,
        PyAppError,
    )
    from pyapp.manifest import ModelManifest
    from pyapp.model import Model
    from pyapp.runtime import Runtime, init

__all__ = [
    "BackendUnavailable",
    "DisposedError",
    "ImageClassifier",
    "InvalidImage",
    "InvalidInput",
    "JSError",
    "Model",
    "ModelIntegrityError",
    "ModelLoadError",
    "ModelManifest",
    "PyAppError",
    "Runtime",
    "__version__",
    "init",
]

_LAZY = {
    "ImageClassifier": "pyapp.classifier",
    "Model": "pyapp.model",
    "ModelManifest": "pyapp.manifest",
    "Runtime": "pyapp.runtime",
    "init": "pyapp.runtime",
    "BackendUnavailable": "pyapp.errors",
    "DisposedError": "pyapp.errors",
    "InvalidImage": "pyapp.errors",
    "InvalidInput": "pyapp.errors",
    "JSError": "pyapp.errors",
    "ModelIntegrityError": "pyapp.errors",
    "ModelLoadError": "pyapp.errors",
    "PyAppError": "pyapp.errors",
}


def __getattr__(name: str) -> Any:
    # Lazy so that host tools (serve.py, the asset build) import pyapp without numpy.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyapp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
