"""Transfer learning: a pretrained image model's features, and a small head trained on a few labelled images.

The image model (MobileNetV2 here) is cut at its feature layer (by default
the input of its first Dense layer: MobileNetV2's pooled 1,280 features).
Each labelled image is turned into a feature vector once; training the head
on those vectors takes seconds, in the browser, on the visitor's images.

Example (in the browser)::

    from pyapp import datasets
    from pyapp.transfer import TransferClassifier

    images, is_face = await datasets.faces()           # 100 faces, 100 non-faces (real photos)
    learner = await TransferClassifier.create("models/nsfw-mobilenet-v2/manifest.json", ["not a face", "face"])
    for image, label in zip(images[::10], is_face[::10]):        # 20 labelled examples
        await learner.add(image, "face" if label else "not a face")
    await learner.train(epochs=40, seed=0)                # seed: the same head every run
    print(await learner.classify(images[1]))           # [('face', 0.9...), ('not a face', 0.0...)]
    await learner.save("indexeddb://faces")             # reload later: await TransferClassifier.load(...)
    learner.dispose()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyapp._js import js_object, tf
from pyapp.classifier import ImageClassifier, Prediction, top_k
from pyapp.errors import InvalidInput, ModelLoadError, StateError
from pyapp.layers import Dense, Dropout
from pyapp.lifecycle import Disposable
from pyapp.progress import ProgressCallback
from pyapp.training import EpochEnd, History, Sequential, TrainableModel, check_seed, load

#: Key of the head's TF.js userDefinedMetadata that says how to rebuild the classifier.
METADATA_KEY = "pyapp_transfer"


def feature_layer(layers: Sequence[tuple[str, str]], wanted: str | None = None) -> str:
    """The layer whose output are the features: ``wanted``, else the one feeding the first Dense layer (pure).

    ``layers`` is (name, class name) in model order.

    >>> feature_layer([("conv", "Conv2D"), ("pool", "GlobalAveragePooling2D"), ("fc", "Dense"), ("out", "Dense")])
    'pool'
    """
    names = [name for name, _ in layers]
    if wanted is not None:
        if wanted not in names:
            raise InvalidInput(f"no layer {wanted!r}; the model has {names[-6:]} (last six)")
        return wanted
    for i, (_, cls) in enumerate(layers):
        if cls == "Dense" and i > 0:
            return names[i - 1]
    raise InvalidInput("the model has no Dense layer to cut before; pass layer=... to choose the feature layer")


class FeatureExtractor:
    """An :class:`ImageClassifier`'s model up to its feature layer: images in, feature vectors (numpy) out.

    Shares the model's weights (nothing is copied); follows it when its weights
    are reloaded after a lost backend.

    Example (in the browser)::

        from pyapp.classifier import ImageClassifier
        from pyapp.fetch import fetch_bytes
        from pyapp.transfer import FeatureExtractor
        classifier = await ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
        photos = [await fetch_bytes(f"vendor/samples/{n}") for n in ("chelsea.png", "coffee.png")]
        extractor = FeatureExtractor(classifier)
        vectors = await extractor.features(photos)
        print(extractor.layer, vectors.shape)                 # flatten_1 (2, 1280)
        classifier.dispose()
    """

    def __init__(self, classifier: ImageClassifier, layer: str | None = None) -> None:
        fmt = classifier.model.manifest.variant(classifier.model.load_info.variant).format
        if fmt != "layers-model":
            raise InvalidInput(f"transfer learning needs a layers model; {classifier.model.manifest.name!r} is a {fmt}")
        self.classifier = classifier
        self._wanted = layer
        self._source: Any = None
        self._cut: Any = None
        self.layer = ""
        self.dim = 0
        self._build()

    def _build(self) -> None:
        source = self.classifier.model.js_model
        layers = [(str(layer.name), str(layer.getClassName())) for layer in source.layers]
        self.layer = feature_layer(layers, self._wanted)
        output = source.getLayer(self.layer).output
        # A second model over the same layers: it owns no weights and is never disposed
        # (disposing it would free the shared weights).
        self._cut = tf().model(js_object({"inputs": source.inputs, "outputs": output}))
        self._source = source
        shape = [d for d in output.shape][1:]
        if any(d is None for d in shape):
            raise InvalidInput(f"layer {self.layer!r} has a free dimension {shape}; choose a layer with a fixed size")
        self.dim = int(np.prod(shape))

    async def features(self, images: Sequence[Any]) -> np.ndarray:
        """(N, dim) float32 feature vectors of N images (any type :class:`ImageClassifier` takes)."""
        from pyapp.model import predict_js

        if isinstance(images, (bytes, str)) or not isinstance(images, Sequence) or not images:
            raise InvalidInput("features takes a non-empty list of images")
        # Always the numpy path: the batch is made once, then predicted on whichever model is current.
        batch = np.concatenate([await self.classifier.prepare_any(img, "numpy") for img in images], axis=0)
        await self.classifier.model.recover()  # no-op unless the backend was lost
        if self.classifier.model.js_model is not self._source:
            self._build()  # the weights were reloaded: cut the new model
        out = await predict_js(self._cut, batch)
        return out.reshape(len(images), self.dim)


class TransferClassifier(Disposable):
    """A pretrained image model's features plus a small trained head; classifies into your own classes.

    Create with :meth:`create` (new) or :meth:`load` (saved).

    Example (in the browser)::

        from pyapp.fetch import fetch_bytes
        from pyapp.transfer import TransferClassifier
        names = ("chelsea.png", "coffee.png", "rocket.jpg")
        cat, coffee, rocket = [await fetch_bytes(f"vendor/samples/{n}") for n in names]
        learner = await TransferClassifier.create("models/nsfw-mobilenet-v2/manifest.json", ["animal", "thing"])
        await learner.add(cat, "animal")
        await learner.add_many([coffee, rocket], "thing")
        await learner.train(epochs=20)
        print(await learner.classify(cat))                    # [('animal', 0.9...), ('thing', 0.0...)]
        learner.dispose()
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        classes: Sequence[str],
        *,
        base: str = "",
        owns_base: bool = False,
        head: TrainableModel | None = None,
    ) -> None:
        classes = list(classes)
        if len(classes) < 2 or len(set(classes)) != len(classes) or not all(isinstance(c, str) and c for c in classes):
            raise InvalidInput(f"classes must be two or more distinct non-empty names, got {classes}")
        self.extractor = extractor
        self.classes = classes
        self.base = base
        self._owns_base = owns_base
        self.head = head
        self._features: list[np.ndarray] = []
        self._labels: list[int] = []
        self._disposed = False

    @classmethod
    async def create(
        cls,
        base: str | ImageClassifier,
        classes: Sequence[str],
        *,
        layer: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransferClassifier:
        """A learner on ``base`` (a manifest URL, loaded here, or a loaded :class:`ImageClassifier`).

        ``progress`` reports loading the base model (see :meth:`pyapp.model.Model.load`).
        """
        owns = isinstance(base, str)
        clf = await ImageClassifier.load(base, progress=progress) if isinstance(base, str) else base
        try:
            extractor = FeatureExtractor(clf, layer)
            # The manifest URL goes into saved heads, so that load() can find the base again.
            url = base if isinstance(base, str) else (clf.model.source or "")
            return cls(extractor, classes, base=url, owns_base=owns)
        except BaseException:
            if owns:
                clf.dispose()
            raise

    # ------------------------------------------------------------------ examples

    def _index(self, label: str) -> int:
        if label not in self.classes:
            raise InvalidInput(f"unknown class {label!r}; the classes are {self.classes}")
        return self.classes.index(label)

    async def add(self, image: Any, label: str) -> int:
        """Add one labelled example; returns how many examples ``label`` has now."""
        index = self._index(label)
        vector = (await self.extractor.features([image]))[0]
        self._features.append(vector)
        self._labels.append(index)
        return self._labels.count(index)

    async def add_many(self, images: Sequence[Any], label: str, batch_size: int = 16) -> int:
        """Add several examples of one class (features computed in batches)."""
        index = self._index(label)
        for start in range(0, len(images), batch_size):
            vectors = await self.extractor.features(images[start : start + batch_size])
            self._features.extend(vectors)
            self._labels.extend([index] * len(vectors))
        return self._labels.count(index)

    def counts(self) -> dict[str, int]:
        """Examples per class."""
        return {c: self._labels.count(i) for i, c in enumerate(self.classes)}

    def clear(self) -> None:
        """Forget the examples (the trained head stays)."""
        self._features.clear()
        self._labels.clear()

    # ------------------------------------------------------------------ training

    async def train(
        self,
        epochs: int = 30,
        batch_size: int = 16,
        learning_rate: float = 1e-3,
        hidden: int = 64,
        on_epoch: Callable[[EpochEnd], Any] | None = None,
        seed: int | None = None,
    ) -> History:
        """Train a new head on the examples so far (every class needs at least one).

        ``seed`` makes it repeatable: the head's initial weights, the order of examples and
        its dropout masks all come from it (see :func:`pyapp.training.Sequential` and
        :meth:`pyapp.training.TrainableModel.fit`).
        """
        seed = check_seed(seed)
        missing = [c for c, n in self.counts().items() if n == 0]
        if missing:
            raise StateError(f"no examples of {missing} yet; add() at least one image per class")
        head = Sequential(
            [
                Dense(hidden, activation="relu", input_shape=(self.extractor.dim,)),
                Dropout(0.25),
                Dense(len(self.classes), activation="softmax"),
            ],
            name="transfer_head",
            seed=seed,
        )
        try:
            head.compile("adam", "sparse_categorical_crossentropy", ["accuracy"], learning_rate=learning_rate)
            x = np.stack(self._features).astype(np.float32)
            history = await head.fit(
                x, np.array(self._labels), epochs=epochs, batch_size=batch_size, on_epoch=on_epoch, seed=seed
            )
        except BaseException:
            head.dispose()
            raise
        if self.head is not None:
            self.head.dispose()
        self.head = head
        return history

    # ------------------------------------------------------------------ using it

    def _require_head(self, what: str) -> TrainableModel:
        if self.head is None:
            raise StateError(f"{what}: train() first (or load a trained head)")
        return self.head

    async def classify(self, image: Any, top: int | None = None) -> Prediction:
        """(class, probability) pairs for one image, most likely first."""
        return (await self.classify_many([image], top=top))[0]

    async def classify_many(self, images: Sequence[Any], top: int | None = None) -> list[Prediction]:
        """One prediction list per image."""
        head = self._require_head("classify")
        probs = await head.predict(await self.extractor.features(images))
        return [top_k(p, self.classes, top or len(self.classes)) for p in probs]

    # ------------------------------------------------------------------ saving

    def _stamp(self) -> TrainableModel:
        head = self._require_head("save")
        head.set_metadata(METADATA_KEY, {"classes": self.classes, "base": self.base, "layer": self.extractor.layer})
        return head

    async def save(self, destination: str) -> dict[str, Any]:
        """Save the head (with its classes and base model) to ``indexeddb://NAME``."""
        return await self._stamp().save(destination)

    async def to_files(self, name: str = "model") -> dict[str, bytes]:
        """The head as ``NAME.json`` + ``NAME.weights.bin`` (classes and base model in its metadata)."""
        return await self._stamp().to_files(name)

    @classmethod
    async def load(
        cls,
        source: str | dict[str, bytes],
        base: str | ImageClassifier | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> TransferClassifier:
        """A saved learner (``indexeddb://NAME``, a URL, or files); loads the base model it names unless given.

        ``progress`` reports loading the base model (see :meth:`pyapp.model.Model.load`).
        """
        head = await load(source)
        try:
            meta = head.metadata().get(METADATA_KEY)
            if not meta:
                raise ModelLoadError("this model was not saved by TransferClassifier (no pyapp_transfer metadata)")
            learner = await cls.create(base or meta["base"], meta["classes"], layer=meta["layer"], progress=progress)
        except BaseException:
            head.dispose()
            raise
        if learner.extractor.dim != head.input_shape[-1]:
            learner.dispose()
            head.dispose()
            raise ModelLoadError(
                f"the head takes {head.input_shape[-1]} features but the base gives {learner.extractor.dim}"
            )
        learner.head = head
        return learner

    @property
    def disposed(self) -> bool:
        """Whether :meth:`dispose` has run."""
        return self._disposed

    def dispose(self) -> None:
        """Free the head, and the base model if this learner loaded it; safe twice."""
        super().dispose()

    def _dispose(self) -> None:
        self._disposed = True
        if self.head is not None:
            self.head.dispose()
            self.head = None
        if self._owns_base:
            self.extractor.classifier.dispose()
            self._owns_base = False
        self.clear()
