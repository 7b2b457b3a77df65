"""Helpers importable inside the browser during tests (``import testutil``).

Loading a model is the slow part of a browser test, so one classifier per
backend is loaded once and shared. What such shared objects hold (tensors,
PyProxies, JS references) is counted in :data:`owned`, so that the leak check
run after every browser test (tests/conftest.py) can tell them from a leak.
"""

from __future__ import annotations

import gc
from typing import Any

import pyapp
from pyapp.classifier import ImageClassifier

MANIFEST = "/models/nsfw-mobilenet-v2/manifest.json"
_classifiers: dict[str, ImageClassifier] = {}
#: What each shared object holds on purpose, by key ("classifier:wasm", "backend:webgl"...).
owned: dict[str, dict[str, int]] = {}


def held() -> dict[str, int]:
    """Live tensors, PyProxies and JS references (Pyodide's hiwire table), after a garbage collection."""
    import js
    import pyodide_js

    gc.collect()
    engine = js.tf.engine()
    ready = getattr(engine, "backendInstance", None) is not None and getattr(engine, "pendingBackendInit", None) is None
    module = pyodide_js._module
    return {
        "tensors": int(js.tf.memory().numTensors) if ready else 0,
        "proxies": int(module.pyproxy_alloc_map.size),
        "js_refs": int(module._hiwire_num_refs()),
    }


async def settled() -> dict[str, int]:
    """:func:`held`, read in the same state every time.

    Pyodide keeps the value of the last JS promise awaited until the next await replaces it (one
    JS reference when that value is a JS object, e.g. a tensor's data): an await of ``undefined``
    first puts that slot in the same state for every reading.
    """
    import js

    await js.Promise.resolve(None)
    return held()


async def leaks() -> dict[str, int]:
    """:func:`settled` less what the shared objects own: what a test must leave as it found it."""
    for backend, clf in _classifiers.items():
        if clf.model.state.value != "ready":  # disposed by a test: it holds nothing any more
            owned.pop(f"classifier:{backend}", None)
    now = await settled()
    for share in owned.values():
        for key, value in share.items():
            now[key] -= value
    return now


async def _own(key: str, before: dict[str, int]) -> None:
    after = await settled()
    share = owned.setdefault(key, {k: 0 for k in after})
    for k in after:
        share[k] += after[k] - before[k]


async def use_backend(name: str) -> None:
    """Make ``name`` the active backend (no-op when it already is).

    The first start of a backend may keep something for the backend's life (WebGL's
    context-loss listener); that is owned, not leaked.
    """
    import js

    if str(js.tf.getBackend()) == name:
        return
    first = f"backend:{name}" not in owned
    before = await settled()
    await pyapp.init(backends=(name,))
    if first:  # later switches keep nothing more
        await _own(f"backend:{name}", before)


async def classifier(backend: str) -> ImageClassifier:
    """The shared classifier for ``backend`` (loaded on first use, with that backend active)."""
    await use_backend(backend)
    clf = _classifiers.get(backend)
    if clf is None or clf.model.state.value != "ready":
        if clf is not None:
            clf.dispose()
        owned.pop(f"classifier:{backend}", None)  # a disposed one holds nothing any more
        before = await settled()
        clf = await ImageClassifier.load(MANIFEST)
        _classifiers[backend] = clf
        await _own(f"classifier:{backend}", before)
    return clf


async def fetch(url: str) -> bytes:
    from pyodide.http import pyfetch

    resp = await pyfetch(url)
    assert resp.ok, f"{url}: HTTP {resp.status}"
    return await resp.bytes()


def tf_memory() -> dict[str, Any]:
    import js

    return dict(js.tf.memory().to_py())


async def raises(awaitable: Any, error: type[BaseException], match: str) -> BaseException:
    """Await ``awaitable``; it must raise ``error`` with ``match`` in its message (pytest.raises for a page)."""
    try:
        await awaitable
    except error as exc:
        assert match in str(exc), f"{type(exc).__name__}: {exc!r} does not say {match!r}"
        return exc
    raise AssertionError(f"no {error.__name__} ({match!r}): it returned")


def tiny_classifier(size: int = 32) -> ImageClassifier:
    """A three-layer classifier (conv, pool, dense; two labels) built on the active backend: a frame costs it
    a few ms, so a test can classify thousands. Its caller disposes it."""
    import js

    from pyapp._js import js_object
    from pyapp.manifest import ModelManifest
    from pyapp.model import LoadInfo, Model

    tf = js.tf

    def seeded(seed: int) -> Any:  # weights drawn from a seed: the same model, and answers, every run
        return tf.initializers.glorotUniform(js_object({"seed": seed}))

    seq = tf.sequential()
    conv = {"inputShape": js.Array.of(size, size, 3), "filters": 8, "kernelSize": 3, "strides": 2}
    seq.add(tf.layers.conv2d(js_object({**conv, "activation": "relu", "kernelInitializer": seeded(1)})))
    seq.add(tf.layers.globalAveragePooling2d(js_object({})))
    seq.add(tf.layers.dense(js_object({"units": 2, "activation": "softmax", "kernelInitializer": seeded(2)})))
    variant = {"name": "tiny", "format": "layers-model", "model": "m.json", "files": {"m.json": "0" * 64}}
    manifest = {"name": "tiny", "labels": ["a", "b"], "input": {"size": size}, "variants": [variant]}
    return ImageClassifier(Model(ModelManifest.from_dict(manifest), seq, LoadInfo("tiny")))


async def fetch_bitmaps(names: list[str]) -> Any:
    """The site's sample photos ``names``, decoded as a JS array of ImageBitmaps (the caller closes them)."""
    import js

    bitmaps = js.Array.new()
    for name in names:
        bitmaps.push(await js.createImageBitmap(await (await js.fetch(f"/vendor/samples/{name}")).blob()))
    return bitmaps
