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
object: File/Blob/ArrayBuffer or ImageBitmap, <img>, <canvas>, ImageData. In the
browser, bytes are decoded by the browser (:mod:`pyapp.browser`), so a photo gives
the same answer as bytes, File or ``<img>``; :meth:`ImageClassifier.classify_detailed`
says which decoder and path ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from pyapp import browser
from pyapp._js import tf, to_js
from pyapp.decoders import Decoder
from pyapp.errors import BackendLost, InvalidInput
from pyapp.images import preprocess
from pyapp.lifecycle import Disposable
from pyapp.live import LiveStream
from pyapp.manifest import ModelManifest
from pyapp.model import Model
from pyapp.predictions import Predictions
from pyapp.video import frames

#: What classify() returns (a :class:`~pyapp.predictions.Predictions`: a list of (label, probability)).
Prediction = Predictions
#: ``numpy``: resize in Python; ``backend``: tf.browser.fromPixels + resize on the TF.js
#: backend; ``auto``: the backend path for the caller's browser image objects where it is not
#: the slower one (every backend but WebGL on a software renderer; see
#: :attr:`pyapp.runtime.Runtime.backend_preprocessing`), numpy for everything else. Encoded
#: images (bytes, File...) take the numpy path under ``auto``: a 12 MP photo on the backend path
#: grows the wasm backend's heap by about 250 MB, which never shrinks (tests/test_browser_decode.py).
PreprocessPath = Literal["auto", "numpy", "backend"]


@dataclass(frozen=True)
class Classification:
    """One image's top-k (label, probability) pairs, and how its pixels were made.

    ``decoder``: ``browser``, ``pillow`` or ``array`` (see :mod:`pyapp.decoders`); ``path``:
    ``numpy`` or ``backend``; ``format``: the encoded format, when there was one; ``notes``:
    what was ignored on the way (an unusable ICC profile, say).
    """

    top: Prediction
    decoder: Decoder
    path: Literal["numpy", "backend"]
    format: str | None = None
    notes: tuple[str, ...] = ()


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> Prediction:
    """The ``k`` most likely (label, probability) pairs of one probability vector, as
    :class:`~pyapp.predictions.Predictions` (a list; notebooks show it as a table).

    >>> top = top_k(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], 2)
    >>> top, top.label
    ([('b', 0.7), ('c', 0.2)], 'b')
    """
    if probs.ndim != 1 or probs.shape[0] != len(labels):
        raise InvalidInput(f"expected {len(labels)} probabilities, got shape {probs.shape}")
    k = max(1, min(k, len(labels)))
    order = np.argsort(-probs, kind="stable")[:k]
    return Predictions((labels[i], round(float(probs[i]), 6)) for i in order)


def _backend_path_pays() -> bool:
    from pyapp import runtime

    rt = runtime.current()
    return rt is not None and rt.backend_preprocessing


class ImageClassifier(Disposable):
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
        """One image (bytes, PIL, numpy) as the model's (1, size, size, 3) float32 input, in numpy.

        Synchronous, so bytes are decoded by Pillow; :meth:`prepare_any` decodes them in the browser.
        """
        return preprocess(image, self.manifest.input.size, options=self.manifest.preprocess)

    async def prepare_any(self, image: Any, path: PreprocessPath | None = None) -> Any:
        """Any supported image as model input: a numpy array, or a tf.Tensor on the backend path.

        The caller disposes a returned tensor.
        """
        return (await self._prepare(image, path))[0]

    async def _prepare(self, image: Any, path: PreprocessPath | None) -> tuple[Any, Classification]:
        async with await browser.open_image(image) as opened:
            return self._prepare_opened(opened, path or self.path)

    def _prepare_opened(self, opened: browser.Opened, path: PreprocessPath) -> tuple[Any, Classification]:
        """An opened image as model input, on the path asked for (synchronous: a stream's frame callback uses it)."""
        notes = opened.decoded.notes if opened.decoded is not None else ()
        pixel_source = opened.source is not None and not opened.owned  # the caller's, not decoded here
        if path == "backend" or (path == "auto" and pixel_source and _backend_path_pays()):
            source = opened.source if opened.source is not None else opened.pixels()
            x = browser.preprocess_on_backend(source, self.manifest.input.size, options=self.manifest.preprocess)
            return x, Classification(Predictions(), opened.decoder, "backend", opened.format, notes)
        return self.prepare(opened.pixels()), Classification(
            Predictions(), opened.decoder, "numpy", opened.format, notes
        )

    async def classify(self, image: Any, top: int | None = None, path: PreprocessPath | None = None) -> Prediction:
        """Top-k (label, probability) for one image."""
        return (await self.classify_detailed(image, top, path)).top

    async def classify_detailed(
        self, image: Any, top: int | None = None, path: PreprocessPath | None = None
    ) -> Classification:
        """Top-k for one image, with the decoder and path that made its input.

        Example (in the browser)::

            from pyapp.classifier import ImageClassifier
            from pyapp.fetch import fetch_bytes
            clf = await ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
            result = await clf.classify_detailed(await fetch_bytes("vendor/samples/rocket.jpg"))
            print(result.top[0], result.decoder, result.format)  # ('Drawing', 0.88...) browser JPEG
            clf.dispose()
        """
        probs, prepared = await self._predict_images([image], path)
        return self._result(probs[0], prepared[0], top)

    async def classify_many(
        self, images: Sequence[Any], batch_size: int = 8, top: int | None = None, path: PreprocessPath | None = None
    ) -> list[Prediction]:
        """Top-k for each image, predicted in batches of ``batch_size``; one result per image, in order."""
        return [r.top for r in await self.classify_many_detailed(images, batch_size, top, path)]

    async def classify_many_detailed(
        self, images: Sequence[Any], batch_size: int = 8, top: int | None = None, path: PreprocessPath | None = None
    ) -> list[Classification]:
        """:meth:`classify_many` with each result's decoder and path, as :meth:`classify_detailed`."""
        if isinstance(images, (bytes, str)) or not isinstance(images, Sequence):
            raise InvalidInput("classify_many takes a list of images; use classify for one")
        if batch_size < 1:
            raise InvalidInput("batch_size must be >= 1")
        results: list[Classification] = []
        for start in range(0, len(images), batch_size):
            probs, prepared = await self._predict_images(images[start : start + batch_size], path)
            results.extend(self._result(p, info, top) for p, info in zip(probs, prepared, strict=True))
        return results

    def classify_stream(
        self,
        source: Any,
        fps: float | None = None,
        *,
        top: int | None = None,
        path: PreprocessPath | None = None,
        release: bool = True,
        stall_timeout: float = 10.0,
    ) -> LiveStream:
        """Classify a live video as it plays: ``async for result in clf.classify_stream(source)``.

        ``source``: a ``<video>``, a MediaStream, a camera from :func:`pyapp.browser.open_camera`,
        or (Python in a Web Worker) a frame port from the page's ``js/frames.js``. The newest frame
        is classified each time; frames that come meanwhile are dropped and counted, never queued;
        ``fps`` caps the rate. Each :class:`~pyapp.live.StreamResult` carries the frame's time, the
        latency from frame to result, the drops and the preprocessing path. Stopping (``break``,
        ``aclose()``, a hidden page, an ended camera) releases the camera (with ``release=True``)
        and every tensor; see :mod:`pyapp.live` and :mod:`pyapp.video`.

        Example (in a page)::

            from pyapp import browser
            from pyapp.classifier import ImageClassifier
            clf = await ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
            async with clf.classify_stream(await browser.open_camera(), fps=10) as live:
                async for result in live:
                    print(result.label, f"{result.latency_ms:.0f} ms")  # e.g. Neutral 95 ms
                    if result.index == 4:
                        break
            print(live.stats().results, live.stats().stopped)  # 5 closed
            clf.dispose()
        """
        self._check_usable("classify_stream")
        if path not in (None, "auto", "numpy", "backend"):
            raise InvalidInput(f"path must be 'auto', 'numpy' or 'backend', not {path!r}")
        chosen: PreprocessPath = path or self.path

        def prepare(image: Any) -> tuple[Any, Classification]:
            # In the browser's frame callback: the pixels read are those of the frame just shown. Where the
            # backend computes in this thread (wasm, cpu), the prediction too, with no turn of the event loop
            # between frame and result (measured: a few % of the frame rate against a plain-JS loop).
            x, info = self._prepare_opened(browser.Opened("browser", None, source=image), chosen)
            try:
                probs = self.model.predict_now(x)
            except BaseException:
                discard((x, info))
                raise
            if probs is None:
                return x, info
            discard((x, info))
            return probs, self._result(probs[0], info, top)

        def discard(prepared: tuple[Any, Classification]) -> None:
            if not isinstance(prepared[0], np.ndarray):
                prepared[0].dispose()

        async def classify_frame(prepared: tuple[Any, Classification]) -> Classification | None:
            if prepared[1].top:
                return prepared[1]  # classified in the frame callback already
            try:
                probs = await self._predict_chunk([prepared[0]])
            except BackendLost:
                await self.model.recover()  # this frame's tensor went with the backend: on to the next frame
                return None
            finally:
                discard(prepared)
            return self._result(probs[0], prepared[1], top)

        reader = frames(source, fps, release=release, stall_timeout=stall_timeout, prepare=prepare, discard=discard)
        return LiveStream(reader, classify_frame)

    def _result(self, probs: np.ndarray, prepared: Classification, top: int | None) -> Classification:
        return replace(prepared, top=top_k(probs, self.labels, top or self.top))

    async def _predict_images(
        self, images: Sequence[Any], path: PreprocessPath | None
    ) -> tuple[np.ndarray, list[Classification]]:
        """Prepare and predict one batch; if the backend is lost, prepare again on the new one and retry."""
        for attempt in (1, 2):
            chunk: list[Any] = []
            prepared: list[Classification] = []
            try:
                for img in images:
                    x, info = await self._prepare(img, path)
                    chunk.append(x)
                    prepared.append(info)
                return await self._predict_chunk(chunk), prepared
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

    @property
    def disposed(self) -> bool:
        """Whether the classifier (its model) has been disposed."""
        return self.model.disposed

    def _check_usable(self, what: str) -> None:
        self.model._check_usable(what)

    def _dispose(self) -> None:
        self.model.dispose()
