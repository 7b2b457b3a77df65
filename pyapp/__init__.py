"""pyapp: browser machine learning in Python (Pyodide + TensorFlow.js).

Importing ``pyapp`` is cheap and needs only the standard library; the browser
modules load on first use.

Example (in the browser)::

    import pyapp
    runtime = await pyapp.init(backends=("webgl", "wasm", "cpu"))
    photo = await pyapp.fetch.fetch_bytes("vendor/samples/chelsea.png")
    async with await pyapp.ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json") as clf:
        print(await clf.classify(photo))         # [('Neutral', 0.93...), ...]
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
    from pyapp.training import Sequential, TrainableModel
    from pyapp.transfer import TransferClassifier

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
    "Sequential",
    "TrainableModel",
    "TransferClassifier",
    "__version__",
    "init",
]

_LAZY = {
    "ImageClassifier": "pyapp.classifier",
    "Model": "pyapp.model",
    "ModelManifest": "pyapp.manifest",
    "Runtime": "pyapp.runtime",
    "Sequential": "pyapp.training",
    "TrainableModel": "pyapp.training",
    "TransferClassifier": "pyapp.transfer",
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


#: Submodules reachable as attributes after ``import pyapp`` (``pyapp.fetch.fetch_bytes``...).
_SUBMODULES = frozenset(
    {
        "artifacts",
        "browser",
        "classifier",
        "datasets",
        "errors",
        "fetch",
        "images",
        "kernels",
        "layers",
        "manifest",
        "memory",
        "model",
        "notebook",
        "playground",
        "progress",
        "quantize",
        "runtime",
        "saving",
        "tensors",
        "training",
        "transfer",
        "ui",
    }
)


def __getattr__(name: str) -> Any:
    # Lazy so that host tools (serve.py, the asset build) import pyapp without numpy.
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"pyapp.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyapp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
