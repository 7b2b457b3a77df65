"""Layers for models built from Python: small, checked, frozen descriptions.

Pure Python: a layer only says what TF.js should build (:meth:`Layer.tfjs`),
so its arguments are checked on the host, before anything reaches the browser.
:func:`pyapp.training.Sequential` turns a list of them into a TF.js model.

Example::

    >>> from pyapp.layers import Conv2D, Dense
    >>> Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)).tfjs()
    ('conv2d', {'filters': 32, 'kernelSize': [3, 3], 'strides': [1, 1], 'padding': 'valid', \
'activation': 'relu', 'useBias': True, 'inputShape': [28, 28, 1]})
    >>> Dense(0)
    Traceback (most recent call last):
    ...
    pyapp.errors.InvalidInput: Dense: units must be a positive integer, got 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pyapp.errors import InvalidInput

#: Activation names (Keras spelling) -> TF.js names.
ACTIVATIONS = {
    "linear": "linear",
    "relu": "relu",
    "relu6": "relu6",
    "elu": "elu",
    "selu": "selu",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "hardSigmoid",
    "softmax": "softmax",
    "softplus": "softplus",
    "softsign": "softsign",
    "tanh": "tanh",
    "swish": "swish",
    "mish": "mish",
}

Padding = Literal["valid", "same"]


def _positive(layer: str, what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{layer}: {what} must be a positive integer, got {value!r}")
    return value


def _pair(layer: str, what: str, value: int | tuple[int, int]) -> list[int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise InvalidInput(f"{layer}: {what} must be an int or a pair of ints, got {value!r}")
    return [_positive(layer, what, v) for v in pair]


def _padding(layer: str, value: Any) -> None:
    if value not in ("valid", "same"):
        raise InvalidInput(f"{layer}: padding must be 'valid' or 'same', got {value!r}")


def _activation(layer: str, name: str) -> str:
    if name not in ACTIVATIONS:
        raise InvalidInput(f"{layer}: unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@dataclass(frozen=True, kw_only=True)
class Layer:
    """Common to every layer: an optional ``name``, and ``input_shape`` (without the batch axis) on the first."""

    name: str | None = None
    input_shape: tuple[int, ...] | None = None
    kind: ClassVar[str] = ""
    #: The class of TF.js's default kernel initializer for this layer, if it draws random weights.
    kernel_initializer: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        if self.input_shape is not None:
            shape = tuple(self.input_shape)
            for dim in shape:
                _positive(type(self).__name__, "every input_shape dimension", dim)
            object.__setattr__(self, "input_shape", shape)
        self.check()

    def check(self) -> None:
        """Raise :class:`InvalidInput` for bad arguments (each layer checks its own)."""

    def config(self) -> dict[str, Any]:
        """This layer's own TF.js arguments."""
        return {}

    def tfjs(self, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        """(``tf.layers`` factory name, its configuration object).

        With a ``seed``, a layer that draws random weights draws them from TF.js's own
        default initializer, seeded (the same seed gives the same weights):

        >>> Dense(2).tfjs(seed=7)[1]["kernelInitializer"]
        {'className': 'GlorotNormal', 'config': {'seed': 7}}
        >>> "kernelInitializer" in Flatten().tfjs(seed=7)[1]
        False
        """
        cfg = self.config()
        if seed is not None and self.kernel_initializer is not None:
            if not isinstance(seed, int) or isinstance(seed, bool) or not 0 < seed < 2**31:
                # TF.js reads a seed of 0 as "no seed" (Math.random), so 0 is refused here.
                raise InvalidInput(f"{type(self).__name__}: seed must be an integer in [1, 2**31), got {seed!r}")
            cfg["kernelInitializer"] = {"className": self.kernel_initializer, "config": {"seed": seed}}
        if self.name is not None:
            cfg["name"] = self.name
        if self.input_shape is not None:
            cfg["inputShape"] = list(self.input_shape)
        return self.kind, cfg


class _Kernel(Layer):
    """A layer with a kernel, and a bias unless ``use_bias`` is false, before its ``activation``: the layers
    TF.js fills with random weights. Each subclass declares ``activation`` and ``use_bias`` as fields,
    after its own (``Dense(2, "relu")`` stays positional)."""

    activation: str
    use_bias: bool
    kernel_initializer: ClassVar[str | None] = "GlorotNormal"  # TF.js's default (Keras's is GlorotUniform)

    def check(self) -> None:
        _activation(type(self).__name__, self.activation)

    def output_config(self) -> dict[str, Any]:
        """The TF.js arguments for what follows the kernel: the activation and whether there is a bias.

        >>> Dense(2, "relu", use_bias=False).output_config()
        {'activation': 'relu', 'useBias': False}
        """
        return {"activation": ACTIVATIONS[self.activation], "useBias": self.use_bias}


@dataclass(frozen=True)
class Dense(_Kernel):
    """Fully connected: ``units`` outputs."""

    units: int
    activation: str = "linear"
    use_bias: bool = True
    kind: ClassVar[str] = "dense"

    def check(self) -> None:
        _positive("Dense", "units", self.units)
        super().check()

    def config(self) -> dict[str, Any]:
        return {"units": self.units, **self.output_config()}


@dataclass(frozen=True)
class Conv2D(_Kernel):
    """2-D convolution over NHWC images."""

    filters: int
    kernel_size: int | tuple[int, int] = 3
    strides: int | tuple[int, int] = 1
    padding: Padding = "valid"
    activation: str = "linear"
    use_bias: bool = True
    kind: ClassVar[str] = "conv2d"

    def check(self) -> None:
        _positive("Conv2D", "filters", self.filters)
        _pair("Conv2D", "kernel_size", self.kernel_size)
        _pair("Conv2D", "strides", self.strides)
        _padding("Conv2D", self.padding)
        super().check()

    def config(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernelSize": _pair("Conv2D", "kernel_size", self.kernel_size),
            "strides": _pair("Conv2D", "strides", self.strides),
            "padding": self.padding,
            **self.output_config(),
        }


@dataclass(frozen=True)
class MaxPool2D(Layer):
    """Max pooling; ``strides`` defaults to ``pool_size``."""

    pool_size: int | tuple[int, int] = 2
    strides: int | tuple[int, int] | None = None
    padding: Padding = "valid"
    kind: ClassVar[str] = "maxPooling2d"

    def check(self) -> None:
        _pair(type(self).__name__, "pool_size", self.pool_size)
        if self.strides is not None:
            _pair(type(self).__name__, "strides", self.strides)
        _padding(type(self).__name__, self.padding)

    def config(self) -> dict[str, Any]:
        name = type(self).__name__
        pool = _pair(name, "pool_size", self.pool_size)
        strides = pool if self.strides is None else _pair(name, "strides", self.strides)
        return {"poolSize": pool, "strides": strides, "padding": self.padding}


@dataclass(frozen=True)
class AveragePool2D(MaxPool2D):
    """Average pooling; ``strides`` defaults to ``pool_size``."""

    kind: ClassVar[str] = "averagePooling2d"


@dataclass(frozen=True)
class GlobalAveragePool2D(Layer):
    """Mean over height and width: (N, H, W, C) -> (N, C)."""

    kind: ClassVar[str] = "globalAveragePooling2d"


@dataclass(frozen=True)
class Flatten(Layer):
    """(N, ...) -> (N, product of the rest)."""

    kind: ClassVar[str] = "flatten"


@dataclass(frozen=True)
class Dropout(Layer):
    """Drops a fraction ``rate`` of activations while training (none at prediction).

    ``fit(..., seed=...)`` makes the dropped activations repeatable (a fresh mask each batch).
    """

    rate: float
    kind: ClassVar[str] = "dropout"

    def check(self) -> None:
        if not isinstance(self.rate, (int, float)) or not 0 <= self.rate < 1:
            raise InvalidInput(f"Dropout: rate must be in [0, 1), got {self.rate!r}")

    def config(self) -> dict[str, Any]:
        return {"rate": float(self.rate)}


@dataclass(frozen=True)
class BatchNorm(Layer):
    """Batch normalisation over the channel axis."""

    momentum: float = 0.99
    epsilon: float = 1e-3
    kind: ClassVar[str] = "batchNormalization"

    def check(self) -> None:
        if not 0 < self.momentum < 1:
            raise InvalidInput(f"BatchNorm: momentum must be in (0, 1), got {self.momentum!r}")
        if not self.epsilon > 0:
            raise InvalidInput(f"BatchNorm: epsilon must be > 0, got {self.epsilon!r}")

    def config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "epsilon": self.epsilon}


@dataclass(frozen=True)
class Reshape(Layer):
    """Reshape each example to ``target_shape`` (without the batch axis)."""

    target_shape: tuple[int, ...] = field(default=())
    kind: ClassVar[str] = "reshape"

    def check(self) -> None:
        if not self.target_shape:
            raise InvalidInput("Reshape: target_shape is required")
        for dim in self.target_shape:
            _positive("Reshape", "every target_shape dimension", dim)

    def config(self) -> dict[str, Any]:
        return {"targetShape": list(self.target_shape)}


@dataclass(frozen=True)
class Activation(Layer):
    """An activation function on its own."""

    activation: str = "relu"
    kind: ClassVar[str] = "activation"

    def check(self) -> None:
        _activation("Activation", self.activation)

    def config(self) -> dict[str, Any]:
        return {"activation": ACTIVATIONS[self.activation]}
