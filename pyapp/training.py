"""Building and training TF.js layers models from Python, with numpy in and out.

:func:`Sequential` builds a model from :mod:`pyapp.layers`; :meth:`TrainableModel.fit`
takes numpy arrays, reports each epoch to a callback, and leaves no tensor or
proxy behind. A model moves through states (an enum): built -> compiled ->
training -> compiled ... -> disposed; calls that do not fit the state say so.

Training is random three ways in TF.js: initial weights, dropout masks and the
order of examples, all from ``Math.random``. ``Sequential(..., seed=S)`` seeds
the first, ``fit(..., seed=S)`` the other two: the same seeds and data give the
same trained model (bit for bit on wasm, as tested; a GPU backend's arithmetic
may differ in the last bits).

Example (in the browser)::

    from pyapp import datasets
    from pyapp.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
    from pyapp.training import Sequential

    x, y = await datasets.digits()
    model = Sequential([
        Conv2D(16, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
        MaxPool2D(2),
        Conv2D(32, 3, activation="relu", padding="same"),
        MaxPool2D(2),
        Flatten(),
        Dense(64, activation="relu"),
        Dropout(0.5),
        Dense(10, activation="softmax"),
    ], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  learning_rate=0.005)
    history = await model.fit(x[:1500], y[:1500], epochs=6, batch_size=32, seed=0,
                              on_epoch=lambda e: print(e.epoch + 1, e.logs))
    print(await model.evaluate(x[1500:], y[1500:]))      # {'loss': 0.2..., 'accuracy': 0.93...}
    model.dispose()
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyapp import saving
from pyapp._js import JsException, create_proxy, error_message, js, js_errors, js_object, tf
from pyapp.errors import DisposedError, InvalidInput, JSError, StateError
from pyapp.layers import Layer
from pyapp.lifecycle import Disposable
from pyapp.model import dims, format_shape
from pyapp.notebook import fmt_number, line_chart_svg, table_html
from pyapp.tensors import refuse_in_tidy, to_numpy, to_tensor

log = logging.getLogger("pyapp.training")

#: Loss names (Keras spelling) -> TF.js names.
LOSSES = {
    "categorical_crossentropy": "categoricalCrossentropy",
    "sparse_categorical_crossentropy": "sparseCategoricalCrossentropy",
    "binary_crossentropy": "binaryCrossentropy",
    "mean_squared_error": "meanSquaredError",
    "mse": "meanSquaredError",
    "mean_absolute_error": "meanAbsoluteError",
    "mae": "meanAbsoluteError",
    "hinge": "hinge",
}
#: Optimizer names -> the ``tf.train`` factory.
OPTIMIZERS = {
    "sgd": "sgd",
    "adam": "adam",
    "adamax": "adamax",
    "rmsprop": "rmsprop",
    "adagrad": "adagrad",
    "adadelta": "adadelta",
}
#: Key of a saved model's metadata that holds the arguments of :meth:`TrainableModel.compile`.
COMPILE_KEY = "pyapp_compile"
#: Metric names -> TF.js names; TF.js logs "accuracy" as "acc", which is renamed back.
METRICS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "mse": "mse", "mae": "mae"}
#: Layers whose training noise ``fit(seed=...)`` makes repeatable: TF.js reads their ``seed``
#: property on every call, so fit sets a fresh one before each batch.
SEEDED_NOISE = ("Dropout", "SpatialDropout1D")
#: Layers whose training noise comes from ``Math.random`` with no seed pyapp can set.
UNSEEDABLE_NOISE = ("GaussianNoise", "GaussianDropout", "AlphaDropout")
# What a derived seed is for (derive_seed's ``purpose``): one user seed, separate streams.
KERNELS, SHUFFLE, DROPOUT = 0, 1, 2


class TrainingState(enum.Enum):
    """Lifecycle of a :class:`TrainableModel`."""

    BUILT = "built"
    COMPILED = "compiled"
    TRAINING = "training"
    DISPOSED = "disposed"


@dataclass(frozen=True)
class EpochEnd:
    """Progress event: one epoch finished. ``epoch`` counts from 0; ``logs`` holds loss and metrics."""

    epoch: int
    epochs: int
    logs: dict[str, float]
    seconds: float

    @property
    def progress(self) -> float:
        """Fraction of the requested epochs done (0..1)."""
        return (self.epoch + 1) / self.epochs


#: Gradient kernels each layer class needs to train. TF.js's wasm backend lacks some
#: (Conv2DBackpropFilter in 4.22): a model that needs one trains on the cpu backend.
GRADIENT_KERNELS = {
    "Conv2D": ("Conv2DBackpropFilter", "Conv2DBackpropInput"),
    "DepthwiseConv2D": ("DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput"),
    "SeparableConv2D": ("DepthwiseConv2dNativeBackpropFilter", "Conv2DBackpropFilter"),
    "Conv2DTranspose": ("Conv2DBackpropFilter", "Conv2D"),
    "MaxPooling2D": ("MaxPoolGrad",),
    "AveragePooling2D": ("AvgPoolGrad",),
}


@dataclass
class History:
    """What :meth:`TrainableModel.fit` did: one :class:`EpochEnd` per epoch run, and where it trained."""

    epochs: list[EpochEnd] = field(default_factory=list)
    stopped_early: bool = False
    #: The backend the training ran on, and why when it is not the active one.
    backend: str = ""
    note: str = ""

    @property
    def history(self) -> dict[str, list[float]]:
        """Per metric, its value after each epoch (as Keras's ``History.history``)."""
        keys = list(dict.fromkeys(k for e in self.epochs for k in e.logs))
        return {k: [e.logs.get(k, float("nan")) for e in self.epochs] for k in keys}

    def __repr__(self) -> str:
        return history_text(self)

    def _repr_html_(self) -> str:
        """Loss and accuracy per epoch as small inline SVG charts (Jupyter, the playground)."""
        return history_html(self)


def log_name(name: str) -> str:
    """TF.js's log key as the metric was asked for.

    >>> log_name("acc"), log_name("val_acc"), log_name("loss")
    ('accuracy', 'val_accuracy', 'loss')
    """
    prefix = "val_" if name.startswith("val_") else ""
    base = name[len(prefix) :]
    return prefix + ("accuracy" if base == "acc" else base)


def check_targets(y: Any, loss: str, n: int, units: int) -> np.ndarray:
    """Targets for ``loss`` as float32, shaped as TF.js wants them, or :class:`InvalidInput` (pure).

    >>> check_targets([0, 2, 1], "sparse_categorical_crossentropy", 3, 3).shape
    (3, 1)
    >>> check_targets([0, 3], "sparse_categorical_crossentropy", 2, 3)
    Traceback (most recent call last):
    ...
    pyapp.errors.InvalidInput: labels must be integers in [0, 3) for 3 outputs, got values in [0, 3]
    """
    arr = np.asarray(y)
    if arr.dtype.kind not in "fiub":
        raise InvalidInput(f"targets must be numeric, got dtype {arr.dtype}")
    if arr.shape[:1] != (n,):
        raise InvalidInput(f"x has {n} examples but y has {arr.shape[0] if arr.ndim else 0}")
    if not np.isfinite(arr).all():
        raise InvalidInput("targets contain NaN or infinity")
    if loss == "sparse_categorical_crossentropy":
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise InvalidInput(
                f"sparse labels must have shape (N,), got {arr.shape}; one-hot targets need "
                "loss='categorical_crossentropy'"
            )
        if (arr != np.round(arr)).any() or arr.min() < 0 or arr.max() >= units:
            raise InvalidInput(
                f"labels must be integers in [0, {units}) for {units} outputs, got values in [{arr.min()}, {arr.max()}]"
            )
        return arr.astype(np.float32).reshape(n, 1)
    if loss in ("categorical_crossentropy", "binary_crossentropy") and arr.ndim == 1 and units > 1:
        raise InvalidInput(
            f"loss {loss!r} needs one-hot targets of shape ({n}, {units}); for integer labels use "
            "loss='sparse_categorical_crossentropy' or pyapp.training.one_hot(y, units)"
        )
    if arr.ndim == 1:
        arr = arr.reshape(n, 1)
    if arr.shape[1:] != (units,):
        raise InvalidInput(f"targets must have shape ({n}, {units}) for this model, got {arr.shape}")
    return arr.astype(np.float32)


def check_seed(seed: Any) -> int | None:
    """``seed`` as an int (None passes: unseeded), or :class:`InvalidInput` (pure).

    >>> check_seed(None), check_seed(3), check_seed(np.int64(4))
    (None, 3, 4)
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    pyapp.errors.InvalidInput: seed must be a non-negative integer or None, got -1
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def seed_stream(seed: int, purpose: int, *where: int) -> np.random.SeedSequence:
    """The random stream for one use (``purpose``, at ``where``) of the user's ``seed`` (pure).

    Streams for different uses are independent, so adding a layer or an epoch leaves the others as they were.
    """
    # The length goes in too: SeedSequence([x]) and SeedSequence([x, 0]) give the same state.
    return np.random.SeedSequence([seed, purpose, len(where), *where])


def derive_seed(seed: int, purpose: int, *where: int) -> int:
    """A seed for one random draw inside TF.js, in [1, 2**31) (TF.js reads 0 as "no seed") (pure).

    >>> derive_seed(0, KERNELS, 1) == derive_seed(0, KERNELS, 1) != derive_seed(0, KERNELS, 2)
    True
    >>> 1 <= derive_seed(5, DROPOUT, 0, 3, 0) < 2**31
    True
    """
    return int(seed_stream(seed, purpose, *where).generate_state(1)[0]) % (2**31 - 1) + 1


def one_hot(labels: Any, classes: int) -> np.ndarray:
    """Integer labels -> one-hot float32 rows.

    >>> one_hot([2, 0], 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    arr = np.asarray(labels).astype(np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= classes):
        raise InvalidInput(f"labels must be in [0, {classes}), got [{arr.min()}, {arr.max()}]")
    return np.eye(classes, dtype=np.float32)[arr]


class TrainableModel(Disposable):
    """A TF.js layers model that Python builds, trains, evaluates, saves and predicts with.

    Create one with :func:`Sequential` or :func:`load`.

    Example (in the browser)::

        import numpy as np
        from pyapp.layers import Dense
        from pyapp.training import Sequential
        async with Sequential([Dense(1, input_shape=(2,))]) as model:
            model.compile(optimizer="sgd", loss="mse", metrics=[], learning_rate=0.1)
            history = await model.fit(np.ones((4, 2)), np.full(4, 3.0), epochs=20)
            print(history.history["loss"][-1], await model.predict(np.ones((1, 2))))   # e.g. 1.2e-06 [[2.9989]]
    """

    def __init__(self, js_model: Any, name: str | None = None) -> None:
        self._js: Any = js_model
        self.name = name or str(js_model.name)
        self.state = TrainingState.COMPILED if js_model.optimizer is not None else TrainingState.BUILT
        self.loss: str | None = None
        self._optimizer: Any = None  # one we made (a learning rate was given): ours to dispose
        self._compile_args: dict[str, Any] | None = None
        self._stop_requested = False
        self.input_shape: tuple[int | None, ...] = dims(js_model.inputs[0].shape)
        self.output_shape: tuple[int | None, ...] = dims(js_model.outputs[0].shape)
        if self.state is TrainingState.COMPILED:
            loss = js_model.loss
            self.loss = next((k for k, v in LOSSES.items() if v == str(loss)), None)
        else:
            saved = self.metadata().get(COMPILE_KEY)
            if isinstance(saved, dict):
                self.compile(**saved)  # saved by pyapp: compiled again as it was

    # ------------------------------------------------------------------ state

    def _require(self, what: str, *states: TrainingState) -> None:
        if self.state is TrainingState.DISPOSED:
            raise DisposedError(f"{what}: model {self.name!r} was disposed")
        if states and self.state not in states:
            wanted = " or ".join(s.value for s in states)
            hint = "; call compile() first" if self.state is TrainingState.BUILT else ""
            raise StateError(f"{what}: model {self.name!r} is {self.state.value}, needs to be {wanted}{hint}")

    @property
    def js_model(self) -> Any:
        """The underlying ``tf.LayersModel`` (for what pyapp does not wrap)."""
        self._require("js_model")
        return self._js

    @property
    def disposed(self) -> bool:
        """Whether :meth:`dispose` has run (during :meth:`fit`: asked; the weights go after the batch)."""
        return self.state is TrainingState.DISPOSED

    def _check_usable(self, what: str) -> None:
        self._require(what)  # in any state but disposed

    def dispose(self) -> None:
        """Free weights and optimizer state; safe twice.

        During :meth:`fit`, training stops after the current batch, the weights are freed
        then (TF.js is still using them until it does), and ``fit`` raises :class:`DisposedError`.
        """
        super().dispose()

    def _dispose(self) -> None:
        training = self.state is TrainingState.TRAINING
        self.state = TrainingState.DISPOSED
        if training:
            self._js.stopTraining = True
            self._stop_requested = True
            return  # fit() releases the weights once TF.js has let go of them
        self._release()

    def _release(self) -> None:
        if self._js is None:
            return
        js_model, self._js = self._js, None
        js_model.dispose()  # also disposes an optimizer the model made from its name
        if self._optimizer is not None:
            self._optimizer.dispose()
            self._optimizer = None

    def __repr__(self) -> str:
        return f"<TrainableModel {self.name!r} {self.state.value} {self.input_shape} -> {self.output_shape}>"

    # ------------------------------------------------------------------ structure

    def layers(self) -> list[tuple[str, str, tuple[int | None, ...], int]]:
        """(name, class, output shape, parameter count) per layer."""
        self._require("layers")
        out = []
        for layer in self._js.layers:
            out.append((str(layer.name), str(layer.getClassName()), dims(layer.outputShape), int(layer.countParams())))
        return out

    def count_params(self) -> int:
        """Number of weights (trainable and not)."""
        self._require("count_params")
        return int(self._js.countParams())

    def summary(self) -> str:
        """A table of the layers, as Keras prints it."""
        rows = [("Layer (type)", "Output shape", "Params")]
        for name, cls, shape, params in self.layers():
            rows.append((f"{name} ({cls})", str(tuple("N" if d is None else d for d in shape)), f"{params:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"Total params: {self.count_params():,}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ training

    def compile(
        self,
        optimizer: str = "adam",
        loss: str = "categorical_crossentropy",
        metrics: Sequence[str] = ("accuracy",),
        learning_rate: float | None = None,
    ) -> None:
        """Choose optimizer, loss and metrics (Keras names). Compiling again resets the optimizer."""
        self._require("compile", TrainingState.BUILT, TrainingState.COMPILED)

        if optimizer not in OPTIMIZERS:
            raise InvalidInput(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
        if loss not in LOSSES:
            raise InvalidInput(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
        if isinstance(metrics, str):
            metrics = (metrics,)
        for metric in metrics:
            if metric not in METRICS:
                raise InvalidInput(f"unknown metric {metric!r}; expected one of {sorted(METRICS)}")
        if learning_rate is not None and not learning_rate > 0:
            raise InvalidInput(f"learning_rate must be > 0, got {learning_rate!r}")
        tfm = tf()
        opt: Any = OPTIMIZERS[optimizer]
        made = None
        if learning_rate is not None:
            made = opt = getattr(tfm.train, OPTIMIZERS[optimizer])(learning_rate)
        with js_errors("compile"):
            self._js.compile(
                js_object({"optimizer": opt, "loss": LOSSES[loss], "metrics": [METRICS[m] for m in metrics]})
            )
        if self._optimizer is not None:
            self._optimizer.dispose()
        self._optimizer = made
        self.loss = loss
        self._compile_args = {
            "optimizer": optimizer,
            "loss": loss,
            "metrics": list(metrics),
            "learning_rate": learning_rate,
        }
        self.state = TrainingState.COMPILED

    def _check_x(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiub":
            raise InvalidInput(f"inputs must be numeric, got dtype {arr.dtype}")
        want = self.input_shape
        if arr.ndim != len(want) or any(
            w is not None and w != g for w, g in zip(want[1:], arr.shape[1:], strict=False)
        ):
            raise InvalidInput(f"model {self.name!r} takes inputs of shape {format_shape(want)}, got {arr.shape}")
        if arr.shape[0] == 0:
            raise InvalidInput("no examples (empty first axis)")
        if not np.isfinite(arr).all():
            raise InvalidInput("inputs contain NaN or infinity")
        return arr.astype(np.float32, copy=False)

    def missing_gradients(self, backend: str) -> list[str]:
        """Gradient kernels this model needs that ``backend`` does not have (empty: it can train there)."""

        tfm = tf()
        needed = {k for layer in self._js.layers for k in GRADIENT_KERNELS.get(str(layer.getClassName()), ())}
        return sorted(k for k in needed if tfm.getKernel(k, backend) is None)

    def _units(self) -> int:
        units = self.output_shape[-1]
        return 1 if units is None else units

    async def fit(
        self,
        x: Any,
        y: Any,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        on_epoch: Callable[[EpochEnd], Any] | None = None,
        seed: int | None = None,
    ) -> History:
        """Train on numpy arrays; ``on_epoch`` (sync or async) gets an :class:`EpochEnd` after each epoch.

        Every tensor made for training is disposed when it ends, however it ends.
        Call :meth:`stop` (e.g. from ``on_epoch``) to end early.

        ``seed`` makes the run repeatable: the order of examples in each epoch and every
        dropout mask come from it, so the same seed, data and starting weights (see
        :func:`Sequential`'s ``seed``) give the same trained weights (bit for bit on wasm).
        Without it, TF.js shuffles and drops out with ``Math.random``.
        """
        self._require("fit", TrainingState.COMPILED)
        refuse_in_tidy("TrainableModel.fit")
        assert self.loss is not None
        if not isinstance(epochs, int) or epochs < 1:
            raise InvalidInput(f"epochs must be a positive integer, got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0 <= validation_split < 1:
            raise InvalidInput(f"validation_split must be in [0, 1), got {validation_split!r}")
        seed = check_seed(seed)
        xs_np = self._check_x(x)
        ys_np = check_targets(y, self.loss, xs_np.shape[0], self._units())
        val_np = None
        if validation_data is not None:
            vx = self._check_x(validation_data[0])
            val_np = (vx, check_targets(validation_data[1], self.loss, vx.shape[0], self._units()))
        noise: list[Any] = []
        if seed is not None:
            noise = self._seedable_noise()
            if val_np is None and validation_split:
                # Split as Keras and TF.js do (the last fraction, before any shuffling): the same
                # validation examples with a seed as without one.
                split = int(np.floor(xs_np.shape[0] * (1 - validation_split)))
                if split < 1:
                    raise InvalidInput(f"validation_split={validation_split} leaves no examples to train on")
                val_np = (xs_np[split:], ys_np[split:])
                xs_np, ys_np = xs_np[:split], ys_np[:split]

        from pyapp import runtime

        active = str(tf().getBackend())
        history = History(backend=active)
        missing = self.missing_gradients(active)
        if missing:
            history.backend = "cpu"
            history.note = f"trained on cpu: TF.js's {active} backend has no {', '.join(missing)} kernel"
            log.warning("%s", history.note)
        started = time.perf_counter()

        def epoch_end(epoch: Any, logs: Any) -> Any:
            event = EpochEnd(
                epoch=int(epoch),
                epochs=epochs,
                logs={log_name(k): float(v) for k, v in (logs.to_py() if logs is not None else {}).items()},
                seconds=time.perf_counter() - started,
            )
            history.epochs.append(event)
            if on_epoch is None:
                return None
            result = on_epoch(event)
            # TF.js awaits what the callback returns: an async callback finishes before the next epoch.
            return asyncio.ensure_future(result) if inspect.isawaitable(result) else None

        current_epoch = 0

        def batch_begin(batch: Any, logs: Any) -> None:
            # TF.js awaits onBatchBegin before it runs the batch, and Dropout reads its ``seed``
            # property on each call: a seed per (epoch, batch, layer) gives every batch its own
            # mask, as unseeded dropout does. One fixed seed would not: TF.js makes a new
            # generator from it on every call, so every batch would drop the same units.
            assert seed is not None
            for index, layer in enumerate(noise):
                layer.seed = derive_seed(seed, DROPOUT, current_epoch, int(batch), index)
            if self._stop_requested and self._js is not None:  # a stop() that came between two epochs' fit calls
                self._js.stopTraining = True

        callback = create_proxy(epoch_end)
        on_batch = create_proxy(batch_begin)
        callbacks: dict[str, Any] = {"onEpochEnd": callback}
        if seed is not None:
            callbacks["onBatchBegin"] = on_batch
        saved_seeds = [layer.seed for layer in noise]
        tensors: list[Any] = []
        self.state = TrainingState.TRAINING
        self._js.stopTraining = False
        self._stop_requested = False
        try:
            if history.backend != active:
                await runtime.use_backend(history.backend)
            options: dict[str, Any] = {"epochs": epochs, "batchSize": batch_size, "shuffle": shuffle}
            if val_np is not None:
                tensors += [to_tensor(val_np[0]), to_tensor(val_np[1])]
                options["validationData"] = [tensors[0], tensors[1]]
            elif validation_split:
                options["validationSplit"] = validation_split
            if seed is None:
                tensors += [to_tensor(xs_np), to_tensor(ys_np)]
                await self._js_fit(tensors[-2], tensors[-1], options, callbacks)
            else:
                # TF.js shuffles with Math.random, which cannot be seeded: pyapp orders each
                # epoch itself and has TF.js run that one epoch as given.
                for epoch in range(epochs):
                    if self._stop_requested or self.state is not TrainingState.TRAINING:
                        break
                    current_epoch = epoch
                    rng = np.random.default_rng(seed_stream(seed, SHUFFLE, epoch))
                    order: Any = rng.permutation(xs_np.shape[0]) if shuffle else slice(None)
                    data = [to_tensor(xs_np[order]), to_tensor(ys_np[order])]
                    try:
                        one = {**options, "epochs": epoch + 1, "initialEpoch": epoch, "shuffle": False}
                        await self._js_fit(data[0], data[1], one, callbacks)
                    finally:
                        for t in data:
                            t.dispose()
                    if self.state is not TrainingState.TRAINING or self._js.stopTraining:
                        break  # stopped from a callback, or disposed
        finally:
            callback.destroy()
            on_batch.destroy()
            for layer, old in zip(noise, saved_seeds, strict=True):
                layer.seed = old  # a later unseeded fit draws from Math.random again; saves are unchanged
            for t in tensors:
                t.dispose()
            if history.backend != active:
                await runtime.use_backend(active)  # the weights follow lazily when next used there
            if self.state is TrainingState.TRAINING:
                self.state = TrainingState.COMPILED
            elif self.state is TrainingState.DISPOSED:
                self._release()  # dispose() came during training: TF.js has now let go of the weights
        if self.state is TrainingState.DISPOSED:
            raise DisposedError(
                f"fit: model {self.name!r} was disposed during training (stopped after {len(history.epochs)} of "
                f"{epochs} epochs; its weights are freed)"
            )
        history.stopped_early = len(history.epochs) < epochs
        return history

    async def _js_fit(self, xs: Any, ys: Any, options: dict[str, Any], callbacks: dict[str, Any]) -> None:
        try:
            await self._js.fit(xs, ys, js_object({**options, "callbacks": js_object(callbacks)}))
        except JsException as exc:
            raise JSError(f"fit: {error_message(exc)}") from None

    def _seedable_noise(self) -> list[Any]:
        """The layers whose training noise a seeded fit sets, or :class:`InvalidInput` if one cannot be seeded."""
        names = [(layer, str(layer.getClassName())) for layer in self._js.layers]
        unseedable = [f"{layer.name!s} ({cls})" for layer, cls in names if cls in UNSEEDABLE_NOISE]
        if unseedable:
            raise InvalidInput(
                f"fit(seed=...) cannot repeat the noise of {', '.join(unseedable)}: TF.js draws it from "
                "Math.random with no seed to set; train without a seed"
            )
        return [layer for layer, cls in names if cls in SEEDED_NOISE]

    def stop(self) -> None:
        """Ask a running :meth:`fit` to end after the current batch."""
        self._require("stop")
        self._js.stopTraining = True
        self._stop_requested = True

    async def evaluate(self, x: Any, y: Any, batch_size: int = 32) -> dict[str, float]:
        """Loss and metrics on held-out data."""
        self._require("evaluate", TrainingState.COMPILED)
        refuse_in_tidy("TrainableModel.evaluate")
        assert self.loss is not None
        xs_np = self._check_x(x)
        ys_np = check_targets(y, self.loss, xs_np.shape[0], self._units())

        xs, ys = to_tensor(xs_np), to_tensor(ys_np)
        scalars: list[Any] = []
        try:
            with js_errors("evaluate"):
                out = self._js.evaluate(xs, ys, js_object({"batchSize": batch_size}))
            scalars = list(out) if hasattr(out, "length") else [out]
            values = [float((await to_numpy(s))[()]) for s in scalars]
        finally:
            for t in (xs, ys, *scalars):
                t.dispose()
        names = [log_name(str(n)) for n in self._js.metricsNames]
        return dict(zip(names, values, strict=True))

    async def predict(self, x: Any) -> np.ndarray:
        """Outputs for a batch of inputs (numpy in, numpy out)."""
        self._require("predict", TrainingState.BUILT, TrainingState.COMPILED)
        refuse_in_tidy("TrainableModel.predict")
        from pyapp.model import predict_js

        return await predict_js(self._js, self._check_x(x))

    # ------------------------------------------------------------------ saving

    def metadata(self) -> dict[str, Any]:
        """The model's ``userDefinedMetadata`` (saved and loaded with it)."""
        self._require("metadata")
        raw = self._js.getUserDefinedMetadata()
        meta: dict[str, Any] = raw.to_py() if raw is not None else {}
        return dict(meta)

    def set_metadata(self, key: str, value: Any) -> None:
        """Store a JSON-able ``value`` under ``key`` in the model's metadata (other keys are kept)."""

        meta = self.metadata()
        meta[key] = value
        self._js.setUserDefinedMetadata(js.JSON.parse(json.dumps(meta)))

    async def save(self, destination: str) -> dict[str, Any]:
        """Save to ``indexeddb://NAME`` (offline, survives reloads); see :func:`pyapp.saving.save`."""
        self._require("save", TrainingState.BUILT, TrainingState.COMPILED)
        self._stamp_compile()
        return await saving.save(self._js, destination)

    async def to_files(self, name: str = "model") -> dict[str, bytes]:
        """``NAME.json`` + ``NAME.weights.bin`` bytes, for a download; :func:`load` reads them."""
        self._require("to_files", TrainingState.BUILT, TrainingState.COMPILED)
        self._stamp_compile()
        return await saving.to_files(self._js, name)

    def _stamp_compile(self) -> None:
        if self._compile_args is not None:
            self.set_metadata(COMPILE_KEY, self._compile_args)


async def load(source: str | Mapping[str, bytes]) -> TrainableModel:
    """Load a saved layers model: ``indexeddb://NAME``, a URL of a ``model.json``, or the files
    :meth:`TrainableModel.to_files` made. It comes back compiled when it was saved compiled.
    Raises :class:`~pyapp.errors.ModelLoadError` saying why not.

    Example (in the browser)::

        from pyapp.layers import Dense
        from pyapp.training import Sequential, load
        model = Sequential([Dense(2, input_shape=(3,))], seed=0)
        again = await load(await model.to_files("tiny"))
        print(again.name, again.state.value)             # files built
        model.dispose()
        again.dispose()
    """
    js_model, name = await saving.load_layers(source)
    return TrainableModel(js_model, name=name)


def Sequential(  # noqa: N802 - as in Keras
    layers: Sequence[Layer], name: str | None = None, seed: int | None = None
) -> TrainableModel:
    """Build a model that applies ``layers`` in order; the first gives ``input_shape``.

    ``seed`` fixes the initial weights (layer ``i`` draws them from ``derive_seed(seed, KERNELS, i)``):
    the same seed builds the same model. Without it, TF.js draws them from ``Math.random``.
    Pass ``fit(..., seed=...)`` too for a repeatable training run.

    Example (in the browser)::

        import numpy as np
        from pyapp.layers import Dense
        from pyapp.training import Sequential
        a = Sequential([Dense(3, input_shape=(2,))], seed=1)
        b = Sequential([Dense(3, input_shape=(2,))], seed=1)
        x = np.ones((1, 2))
        print(np.array_equal(await a.predict(x), await b.predict(x)))   # True
        a.dispose()
        b.dispose()
    """
    seed = check_seed(seed)
    if not layers:
        raise InvalidInput("Sequential needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise InvalidInput(f"layers[{i}] is a {type(layer).__name__}, not a pyapp.layers layer")
    if layers[0].input_shape is None:
        raise InvalidInput("the first layer needs input_shape=(...) (without the batch axis)")

    tfm = tf()
    model = tfm.sequential(js_object({"name": name} if name else {}))
    try:
        for i, layer in enumerate(layers):
            kind, config = layer.tfjs(None if seed is None else derive_seed(seed, KERNELS, i))
            try:
                model.add(getattr(tfm.layers, kind)(js_object(config)))
            except JsException as exc:
                raise InvalidInput(f"layers[{i}] ({type(layer).__name__}): {error_message(exc)}") from None
    except BaseException:
        with contextlib.suppress(JsException):  # nothing built yet: nothing to free
            model.dispose()  # the layers added so far hold weights
        raise
    return TrainableModel(model, name=name)


# --------------------------------------------------------------------------- display


def _charts(history: Mapping[str, Sequence[float]]) -> dict[str, dict[str, Sequence[float]]]:
    """Metrics grouped into one chart each, a validation metric with its training one.

    >>> list(_charts({"loss": [1], "accuracy": [0.5], "val_loss": [1.2], "val_accuracy": [0.4]}).items())
    [('loss', {'loss': [1], 'val_loss': [1.2]}), ('accuracy', {'accuracy': [0.5], 'val_accuracy': [0.4]})]
    """
    charts: dict[str, dict[str, Sequence[float]]] = {}
    for name, values in history.items():
        base = name.removeprefix("val_")
        charts.setdefault(base, {})[name] = values
    return charts


def history_text(history: History) -> str:
    """One line: epochs, and each metric from its first to its last value.

    >>> from pyapp.training import EpochEnd, History
    >>> logs = [{"loss": 2.3, "accuracy": 0.1}, {"loss": 0.5, "accuracy": 0.9}]
    >>> h = History([EpochEnd(i, 2, log, 0.1) for i, log in enumerate(logs)])
    >>> h.backend = "wasm"
    >>> history_text(h)
    'History(2 epochs on wasm: loss 2.3 -> 0.5, accuracy 0.1 -> 0.9)'
    """
    metrics = ", ".join(f"{name} {fmt_number(v[0])} -> {fmt_number(v[-1])}" for name, v in history.history.items() if v)
    where = f" on {history.backend}" if history.backend else ""
    early = ", stopped early" if history.stopped_early else ""
    n = len(history.epochs)
    return f"History({n} epoch{'s' * (n != 1)}{where}{early}{': ' + metrics if metrics else ''})"


def history_html(history: History) -> str:
    """Loss and accuracy (and their validation twins) as small SVG charts, and the last epoch's values."""
    metrics = history.history
    charts = "".join(line_chart_svg(title, series) for title, series in _charts(metrics).items())
    last = [(name, fmt_number(values[-1])) for name, values in metrics.items() if values]
    caption = f"{history_text(history)}"
    if history.note:
        last.append(("note", history.note))
    return f'<div class="pyapp-history">{charts}{table_html(last, caption, "pyapp-history-table")}</div>'
