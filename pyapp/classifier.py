"""Image classification on top of :class:`~pyapp.model.Model`: labels, top-k, batching.

Example (in the browser)::

    from pyapp.classifier import ImageClassifier
    from pyapp.fetch import fetch_bytes
    a, b, c = [await fetch_bytes(f"vendor/samples/{n}") for n in ("chelsea.png", "coffee.png", "rocket.jpg")]
    clf = await ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
    top = await clf.classify(a)                  # [('Neutral', 0.93...), ('Porn', 0.06...), ...]
    many = await clf.classify_many([a, b, c])    # one list per image
    clf.dispose()

Images may be bytes, a PIL image, an (H, W, C) numpy array, or a browser
object: File/Blob/ArrayBuffer (decoded by Pillow) or ImageBitmap, <img>,
<canvas>, ImageData (preprocessed on the TF.js backend, ``path="auto"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from pyapp import browser
from pyapp.errors import BackendLost, InvalidInput
from pyapp.images import preprocess
from pyapp.manifest import ModelManifest
from pyapp.model import Model

Prediction = list[tuple[str, float]]
#: ``numpy``: decode/resize in Python; ``backend``: tf.browser.fromPixels + resize on the
#: TF.js backend (browser image objects only); ``auto``: the backend path for browser
#: image objects where it is not the slower one (every backend but WebGL on a software
#: renderer; see :attr:`pyapp.runtime.Runtime.backend_preprocessing`), numpy for everything else.
PreprocessPath = Literal["auto", "numpy", "backend"]


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> Prediction:
    """The ``k`` most likely (label, probability) pairs of one probability vector.

    >>> top_k(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], 2)
    [('b', 0.7), ('c', 0.2)]
    """
    if probs.ndim != 1 or probs.shape[0] != len(labels):
        raise InvalidInput(f"expected {len(labels)} probabilities, got shape {probs.shape}")
    k = max(1, min(k, len(labels)))
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], round(float(probs[i]), 6)) for i in order]


def _backend_path_pays() -> bool:
    from pyapp import runtime

    rt = runtime.current()
    return rt is not None and rt.backend_preprocessing


class ImageClassifier:
    """A model plus its labels and preprocessing, callable on images."""

    def __init__(self, model: Model, top: int = 5, path: PreprocessPath = "auto") -> None:
        if path not in ("auto", "numpy", "backend"):
            raise InvalidInput(f"path must be 'auto', 'numpy' or 'backend', not {path!r}")
        self.model = model
        self.manifest: ModelManifest = model.manifest
        self.labels = model.manifest.labels
        self.top = top
        self.path: PreprocessPath = path

    @classmethod
    async def load(
        cls, source: str | ModelManifest, *, top: int = 5, path: PreprocessPath = "auto", **kwargs: Any
    ) -> ImageClassifier:
        """Load the model behind ``source`` (a manifest URL); see :meth:`Model.load`."""
        return cls(await Model.load(source, **kwargs), top=top, path=path)

    def prepare(self, image: Any) -> np.ndarray:
        """One image (bytes, PIL, numpy) as the model's (1, size, size, 3) float32 input, in numpy."""
        pre = self.manifest.preprocess
        return preprocess(
            image,
            self.manifest.input.size,
            resize=pre.resize,
            align_corners=pre.align_corners,
            normalize_mode=pre.normalize,
        )

    async def prepare_any(self, image: Any, path: PreprocessPath | None = None) -> Any:
        """Any supported image as model input: a numpy array, or a tf.Tensor on the backend path.

        The caller disposes a returned tensor.
        """
        path = path or self.path
        if path == "backend" or (path == "auto" and browser.is_pixel_source(image) and _backend_path_pays()):
            pre = self.manifest.preprocess
            return browser.preprocess_on_backend(
                image,
                self.manifest.input.size,
                resize=pre.resize,
                align_corners=pre.align_corners,
                normalize_mode=pre.normalize,
            )
        if browser.js_class(image) is not None:
            image = await browser.to_array(image)
        return self.prepare(image)

    async def classify(self, image: Any, top: int | None = None, path: PreprocessPath | None = None) -> Prediction:
        """Top-k (label, probability) for one image."""
        probs = await self._predict_images([image], path)
        return top_k(probs[0], self.labels, top or self.top)

    async def classify_many(
        self, images: Sequence[Any], batch_size: int = 8, top: int | None = None, path: PreprocessPath | None = None
    ) -> list[Prediction]:
        """Top-k for each image, predicted in batches of ``batch_size``; one result per image, in order."""
        if isinstance(images, (bytes, str)) or not isinstance(images, Sequence):
            raise InvalidInput("classify_many takes a list of images; use classify for one")
        if batch_size < 1:
            raise InvalidInput("batch_size must be >= 1")
        results: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            probs = await self._predict_images(images[start : start + batch_size], path)
            results.extend(top_k(p, self.labels, top or self.top) for p in probs)
        return results

    async def _predict_images(self, images: Sequence[Any], path: PreprocessPath | None) -> np.ndarray:
        """Prepare and predict one batch; if the backend is lost, prepare again on the new one and retry."""
        for attempt in (1, 2):
            chunk: list[Any] = []
            try:
                for img in images:
                    chunk.append(await self.prepare_any(img, path))
                return await self._predict_chunk(chunk)
            except BackendLost:
                # numpy input is retried inside Model.predict; tensors made on the lost
                # backend are not, so they are made again here.
                if attempt == 2:
                    raise
                await self.model.recover()
            finally:
                for x in chunk:
                    if not isinstance(x, np.ndarray):
                        x.dispose()
        raise AssertionError("unreachable")

    async def _predict_chunk(self, chunk: list[Any]) -> np.ndarray:
        if all(isinstance(x, np.ndarray) for x in chunk):
            return await self.model.predict(chunk[0] if len(chunk) == 1 else np.concatenate(chunk, axis=0))
        if len(chunk) == 1:
            return await self.model.predict(chunk[0])
        from pyapp._js import tf, to_js
        from pyapp.tensors import to_tensor

        tensors = [x if not isinstance(x, np.ndarray) else to_tensor(x) for x in chunk]
        batch = None
        try:
            batch = tf().concat(to_js(tensors), 0)
            return await self.model.predict(batch)
        finally:
            for t, x in zip(tensors, chunk, strict=True):
                if isinstance(x, np.ndarray):
                    t.dispose()  # the caller disposes the prepared tensors
            if batch is not None:
                batch.dispose()

    def dispose(self) -> None:
        """Dispose the model; safe twice."""
        self.model.dispose()

    async def __aenter__(self) -> ImageClassifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.dispose()
