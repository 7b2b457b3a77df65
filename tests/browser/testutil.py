"""Helpers importable inside the browser during tests (``import testutil``).

Loading a model is the slow part of a browser test, so one classifier per
backend is loaded once and shared.
"""

from __future__ import annotations

from typing import Any

import pyapp
from pyapp.classifier import ImageClassifier

MANIFEST = "/models/nsfw-mobilenet-v2/manifest.json"
_classifiers: dict[str, ImageClassifier] = {}


async def use_backend(name: str) -> None:
    """Make ``name`` the active backend (no-op when it already is)."""
    import js

    if str(js.tf.getBackend()) != name:
        await pyapp.init(backends=(name,))


async def classifier(backend: str) -> ImageClassifier:
    """The shared classifier for ``backend`` (loaded on first use, with that backend active)."""
    await use_backend(backend)
    clf = _classifiers.get(backend)
    if clf is None or clf.model.state.value != "ready":
        clf = await ImageClassifier.load(MANIFEST)
        _classifiers[backend] = clf
    return clf


async def fetch(url: str) -> bytes:
    from pyodide.http import pyfetch

    resp = await pyfetch(url)
    assert resp.ok, f"{url}: HTTP {resp.status}"
    return await resp.bytes()


def tf_memory() -> dict[str, Any]:
    import js

    return dict(js.tf.memory().to_py())
