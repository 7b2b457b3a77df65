"""Image classification on top of :class:`~pyapp.model.Model`: labels, top-k, batching.

Example (in the browser)::

    clf = await ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
    top = await clf.classify(png_bytes)          # [("Neutral", 0.93), ("Drawing", 0.04), ...]
    many = await clf.classify_many([a, b, c])    # one list per image
    clf.dispose()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyapp.errors import InvalidInput
from pyapp.images import preprocess
from pyapp.manifest import ModelManifest
from pyapp.model import Model

Prediction = list[tuple[str, float]]


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


class ImageClassifier:
    """A model plus its labels and preprocessing, callable on images."""

    def __init__(self, model: Model, top: int = 5) -> None:
        self.model = model
        self.manifest: ModelManifest = model.manifest
        self.labels = model.manifest.labels
        self.top = top

    @classmethod
    async def load(cls, source: str | ModelManifest, *, top: int = 5, **kwargs: Any) -> ImageClassifier:
        """Load the model behind ``source`` (a manifest URL); see :meth:`Model.load`."""
        return cls(await Model.load(source, **kwargs), top=top)

    def prepare(self, image: Any) -> np.ndarray:
        """One image as the model's (1, size, size, 3) float32 input."""
        pre = self.manifest.preprocess
        return preprocess(
            image,
            self.manifest.input.size,
            resize=pre.resize,
            align_corners=pre.align_corners,
            normalize_mode=pre.normalize,
        )

    async def classify(self, image: Any, top: int | None = None) -> Prediction:
        """Top-k (label, probability) for one image."""
        probs = await self.model.predict(self.prepare(image))
        return top_k(probs[0], self.labels, top or self.top)

    async def classify_many(
        self, images: Sequence[Any], batch_size: int = 8, top: int | None = None
    ) -> list[Prediction]:
        """Top-k for each image, predicted in batches of ``batch_size``."""
        if isinstance(images, (bytes, str)) or not isinstance(images, Sequence):
            raise InvalidInput("classify_many takes a list of images; use classify for one")
        if not images:
            return []
        batch = np.concatenate([self.prepare(img) for img in images], axis=0)
        probs = await self.model.predict_batched(batch, batch_size=batch_size)
        return [top_k(p, self.labels, top or self.top) for p in probs]

    def dispose(self) -> None:
        """Dispose the model; safe twice."""
        self.model.dispose()

    async def __aenter__(self) -> ImageClassifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.dispose()
