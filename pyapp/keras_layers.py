"""Translate Keras layer configs (Keras 3 or 2) into the Keras 2-style configs TF.js 4.22 reads.

Each supported layer class has one translator that keeps only the options TF.js
implements, checks that every other option is at the value TF.js assumes, and names the
layer's weights the way TF.js looks them up (``<layer>/kernel``...). Anything else is a
:class:`~pyapp.errors.ConvertError` naming the layer and the reason: a model is either
converted to compute the same function or refused.

Two Keras layers have no TF.js class and become a ``BatchNormalization`` that computes
the same thing at inference: ``Normalization`` (``(x - mean) / max(sqrt(var), 1e-7)``)
and ``Rescaling`` with per-channel scales (``x * scale + offset``).

Example::

    >>> layer = translate_layer({"class_name": "Dense", "config": {
    ...     "name": "d", "units": 2, "activation": "relu", "use_bias": True,
    ...     "dtype": {"class_name": "DTypePolicy", "config": {"name": "float32"}}}})
    >>> layer.class_name, layer.config["units"], layer.weight_names
    ('Dense', 2, ['kernel', 'bias'])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyapp.errors import ConvertError

KERAS_EPSILON = 1e-7  # keras.config.epsilon(), Normalization's floor on the standard deviation

# Keras activation name -> TF.js's. hard_sigmoid is absent on purpose: Keras 3 defines it
# as relu6(x + 3) / 6, TF.js as clip(0.2x + 0.5): a different function.
ACTIVATIONS: dict[str, str] = {
    "linear": "linear",
    "relu": "relu",
    "relu6": "relu6",
    "sigmoid": "sigmoid",
    "softmax": "softmax",
    "tanh": "tanh",
    "elu": "elu",
    "selu": "selu",
    "softplus": "softplus",
    "softsign": "softsign",
    "silu": "swish",
    "swish": "swish",
    "gelu": "gelu",  # Keras's default gelu is the exact (erf) form, as TF.js's
    "mish": "mish",
}


@dataclass
class Layer:
    """One translated layer: its TF.js class and config, and the names of its weights in order.

    ``rewrite`` turns the Keras weights (in Keras's order) into the TF.js ones, for layers
    whose weights change form (``Normalization``); None keeps them as they are.

    >>> Layer("Flatten", {"name": "f"}, "f").weight_names
    []
    """

    class_name: str
    config: dict[str, Any]
    name: str
    weight_names: list[str] = field(default_factory=list)
    keras_class: str = ""
    rewrite: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None


class _Reader:
    """A layer's Keras config, read one option at a time; unknown options left over are refused."""

    # Options that do not change what a trained layer computes at inference.
    IGNORED = frozenset(
        {
            "trainable",
            "dtype",
            "autocast",
            "input_dtype",
            "seed",
            "synchronized",
            "momentum",
            "activity_regularizer",
            "build_config",
            "registered_name",
            "module",
            "shared_object_id",
            "batch_input_shape",
            "batch_shape",
            "input_shape",
        }
    )

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.config = config
        self.used: set[str] = set()
        # Set by translators whose weights change form (Normalization, per-channel Rescaling).
        self.rewrite: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None

    def fail(self, reason: str) -> ConvertError:
        return ConvertError(reason, layer=self.name)

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.config.get(key, default)

    def expect(self, key: str, *allowed: Any) -> None:
        """Option ``key`` must be absent or one of ``allowed`` (what TF.js computes)."""
        value = self.get(key, allowed[0])
        if value not in allowed:
            raise self.fail(f"{key}={value!r} is not supported by TF.js (only {' or '.join(map(repr, allowed))})")

    def pair(self, key: str, default: Any = None) -> list[int]:
        value = self.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 16 for v in value)
        ):
            raise self.fail(f"{key}={value!r}: expected two positive integers")
        return list(value)

    def positive(self, key: str, limit: int = 1 << 20) -> int:
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= limit:
            raise self.fail(f"{key}={value!r}: expected a positive integer up to {limit}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise self.fail(f"{key}={value!r}: expected a finite number")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key}={value!r}: expected true or false")
        return value

    def activation(self, key: str = "activation") -> str:
        value = self.get(key, "linear")
        if value is None:
            return "linear"
        if isinstance(value, dict):
            # Keras 3 may serialize a built-in activation as {"module": "keras.activations",
            # "class_name": "function", "config": "relu"}; anything else is custom code.
            if value.get("module") in ("keras.activations", "keras.src.activations") and isinstance(
                value.get("config"), str
            ):
                value = value["config"]
            else:
                raise self.fail(f"{key}: custom activation {value.get('class_name')!r} is not supported")
        if not isinstance(value, str) or value not in ACTIVATIONS:
            raise self.fail(f"{key}={value!r} is not supported (TF.js computes: {sorted(ACTIVATIONS)})")
        return ACTIVATIONS[value]

    def channels_last(self) -> str:
        self.expect("data_format", "channels_last", None)
        return "channels_last"

    def padding(self) -> str:
        value = self.get("padding", "valid")
        if value not in ("valid", "same"):
            raise self.fail(f"padding={value!r}: expected 'valid' or 'same'")
        return str(value)

    def finish(self) -> None:
        """Refuse options nobody read: they may change what the layer computes."""
        left = sorted(
            k
            for k in self.config
            if k not in self.used
            and k not in self.IGNORED
            and k != "name"
            and not k.endswith(("_initializer", "_regularizer", "_constraint"))
        )
        if left:
            raise self.fail(f"options {left} are not supported")


def _dtype_policy(r: _Reader) -> None:
    policy = r.config.get("dtype")
    if isinstance(policy, dict):
        policy = (policy.get("config") or {}).get("name") if policy.get("class_name") != "__keras_tensor__" else None
    if policy not in (None, "float32"):
        raise r.fail(f"dtype policy {policy!r}: only float32 models are supported (TF.js computes in float32)")


def _conv(r: _Reader, *, depthwise: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "kernel_size": r.pair("kernel_size"),
        "strides": r.pair("strides", [1, 1]),
        "padding": r.padding(),
        "data_format": r.channels_last(),
        "dilation_rate": r.pair("dilation_rate", [1, 1]),
        "activation": r.activation(),
        "use_bias": r.flag("use_bias", True),
    }
    if config["strides"] != [1, 1] and config["dilation_rate"] != [1, 1]:
        raise r.fail("strides and dilation_rate both above 1 are not supported by TF.js")
    if depthwise:
        config["depth_multiplier"] = r.positive("depth_multiplier", 1 << 12)
    return config


def _bias(names: list[str], config: dict[str, Any]) -> list[str]:
    return [*names, "bias"] if config["use_bias"] else names


def _t_conv2d(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    config = {"filters": r.positive("filters"), **_conv(r)}
    r.expect("groups", 1)
    return "Conv2D", config, _bias(["kernel"], config)


def _t_depthwise(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    config = _conv(r, depthwise=True)
    return "DepthwiseConv2D", config, _bias(["depthwise_kernel"], config)


def _t_separable(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    config = {"filters": r.positive("filters"), **_conv(r, depthwise=True)}
    return "SeparableConv2D", config, _bias(["depthwise_kernel", "pointwise_kernel"], config)


def _t_dense(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    config = {"units": r.positive("units"), "activation": r.activation(), "use_bias": r.flag("use_bias", True)}
    r.expect("lora_rank", None, 0)
    r.expect("lora_alpha", None)
    r.expect("quantization_config", None)
    return "Dense", config, _bias(["kernel"], config)


def _axis(r: _Reader) -> int:
    axis = r.get("axis", -1)
    if isinstance(axis, list | tuple) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise r.fail(f"axis={axis!r}: only a single axis is supported")
    return axis


def _t_batchnorm(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    config = {
        "axis": _axis(r),
        "momentum": r.number("momentum", 0.99),
        "epsilon": r.number("epsilon", 1e-3),
        "center": r.flag("center", True),
        "scale": r.flag("scale", True),
    }
    if r.flag("renorm", False):
        raise r.fail("renorm=True is not supported")
    r.get("renorm_clipping")  # only used with renorm
    r.get("renorm_momentum")
    r.expect("fused", None, True, False)
    r.expect("virtual_batch_size", None)
    r.expect("adjustment", None)
    names = (["gamma"] if config["scale"] else []) + (["beta"] if config["center"] else [])
    return "BatchNormalization", config, [*names, "moving_mean", "moving_variance"]


def _t_pool(kind: str) -> Callable[[_Reader], tuple[str, dict[str, Any], list[str]]]:
    def translate(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
        pool = r.pair("pool_size", [2, 2])
        strides = r.get("strides")
        config = {
            "pool_size": pool,
            "strides": pool if strides is None else r.pair("strides"),
            "padding": r.padding(),
            "data_format": r.channels_last(),
        }
        return kind, config, []

    return translate


def _t_global_pool(kind: str) -> Callable[[_Reader], tuple[str, dict[str, Any], list[str]]]:
    def translate(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
        # TF.js 4.22's global pooling has no keepdims: it always drops the spatial axes.
        r.expect("keepdims", False)
        return kind, {"data_format": r.channels_last()}, []

    return translate


def _t_dropout(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    rate = r.number("rate", 0.0)
    if not 0.0 <= rate < 1.0:
        raise r.fail(f"rate={rate}: expected 0 <= rate < 1")
    r.get("noise_shape")  # inference ignores dropout entirely
    return "Dropout", {"rate": rate}, []


def _t_flatten(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    return "Flatten", {"data_format": r.channels_last()}, []


def _t_reshape(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    target = r.get("target_shape")
    if (
        not isinstance(target, list | tuple)
        or not target
        or not all(isinstance(d, int) and not isinstance(d, bool) and (d > 0 or d == -1) for d in target)
        or list(target).count(-1) > 1
    ):
        raise r.fail(f"target_shape={target!r}: expected positive integers (at most one -1)")
    return "Reshape", {"target_shape": list(target)}, []


def _t_activation(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    return "Activation", {"activation": r.activation()}, []


def _t_relu(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    max_value = r.get("max_value")
    if max_value is not None and (not isinstance(max_value, int | float) or max_value <= 0):
        raise r.fail(f"max_value={max_value!r}: expected a positive number")
    # TF.js's ReLU layer is max(x, 0) clipped at max_value: no leaky slope, no threshold.
    r.expect("negative_slope", 0.0, 0)
    r.expect("threshold", 0.0, 0)
    return "ReLU", {"max_value": None if max_value is None else float(max_value)}, []


def _t_add(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    return "Add", {}, []


def _t_concatenate(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    axis = r.get("axis", -1)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise r.fail(f"axis={axis!r}: expected an integer")
    return "Concatenate", {"axis": axis}, []


def _t_zero_padding(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    padding = r.get("padding", 1)
    if isinstance(padding, int):
        padding = [[padding, padding], [padding, padding]]
    elif isinstance(padding, list | tuple) and len(padding) == 2 and all(isinstance(p, int) for p in padding):
        padding = [[padding[0], padding[0]], [padding[1], padding[1]]]
    if (
        not isinstance(padding, list | tuple)
        or len(padding) != 2
        or not all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(v, int) and 0 <= v < 1 << 16 for v in p)
            for p in padding
        )
    ):
        raise r.fail(f"padding={padding!r}: expected ((top, bottom), (left, right))")
    return "ZeroPadding2D", {"padding": [list(p) for p in padding], "data_format": r.channels_last()}, []


def _scalar_or_vector(r: _Reader, key: str, default: float) -> float | list[float]:
    value = r.get(key, default)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, list) and value and all(isinstance(v, int | float) and math.isfinite(v) for v in value):
        return [float(v) for v in value]
    raise r.fail(f"{key}={value!r}: expected a number or a flat list of numbers")


def _constant(r: _Reader, values: list[np.ndarray]) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A rewrite that replaces a layer's (absent) weights with ``values``."""

    def rewrite(weights: list[np.ndarray]) -> list[np.ndarray]:
        if weights:
            raise ConvertError(f"expected no stored weights, found {len(weights)}", layer=r.name)
        return [v.astype(np.float32) for v in values]

    return rewrite


def _t_rescaling(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    scale = _scalar_or_vector(r, "scale", 1.0)
    offset = _scalar_or_vector(r, "offset", 0.0)
    if isinstance(scale, float) and isinstance(offset, float):
        return "Rescaling", {"scale": scale, "offset": offset}, []
    # TF.js's Rescaling takes numbers only. Per channel, x * scale + offset is a batch
    # norm with gamma = scale, beta = offset, moving mean 0, moving variance 1, epsilon 0.
    s, o = np.broadcast_arrays(np.asarray(scale, np.float64), np.asarray(offset, np.float64))
    r.rewrite = _constant(r, [s, o, np.zeros(s.shape), np.ones(s.shape)])
    config = {"axis": -1, "momentum": 0.99, "epsilon": 0.0, "center": True, "scale": True}
    return "BatchNormalization", config, ["gamma", "beta", "moving_mean", "moving_variance"]


def _t_normalization(r: _Reader) -> tuple[str, dict[str, Any], list[str]]:
    if r.flag("invert", False):
        raise r.fail("invert=True is not supported")
    axis = r.get("axis", -1)
    if isinstance(axis, list | tuple) and len(axis) == 1:
        axis = axis[0]
    if axis != -1:
        raise r.fail(f"axis={axis!r}: only the last axis (-1) is supported")
    mean, variance = r.get("mean"), r.get("variance")
    if (mean is None) != (variance is None):
        raise r.fail("mean and variance must be given together")

    def std_floored(v: Any) -> np.ndarray:
        # Keras divides by max(sqrt(variance), epsilon); a batch norm with epsilon 0
        # divides by sqrt(moving_variance): store that floored standard deviation squared.
        return np.asarray(np.maximum(np.sqrt(np.asarray(v, np.float64).reshape(-1)), KERAS_EPSILON) ** 2)

    if mean is not None:
        r.rewrite = _constant(r, [np.asarray(mean, np.float64).reshape(-1), std_floored(variance)])
    else:
        # Adapted with .adapt(): the stored weights are (mean, variance, count).
        def rewrite(weights: list[np.ndarray]) -> list[np.ndarray]:
            if len(weights) != 3:
                raise ConvertError(f"expected weights (mean, variance, count), found {len(weights)}", layer=r.name)
            return [weights[0].reshape(-1).astype(np.float32), std_floored(weights[1]).astype(np.float32)]

        r.rewrite = rewrite
    config = {"axis": -1, "momentum": 0.99, "epsilon": 0.0, "center": False, "scale": False}
    return "BatchNormalization", config, ["moving_mean", "moving_variance"]


TRANSLATORS: dict[str, Callable[[_Reader], tuple[str, dict[str, Any], list[str]]]] = {
    "Conv2D": _t_conv2d,
    "Convolution2D": _t_conv2d,
    "DepthwiseConv2D": _t_depthwise,
    "SeparableConv2D": _t_separable,
    "SeparableConvolution2D": _t_separable,
    "Dense": _t_dense,
    "BatchNormalization": _t_batchnorm,
    "BatchNormalizationV1": _t_batchnorm,
    "MaxPooling2D": _t_pool("MaxPooling2D"),
    "MaxPool2D": _t_pool("MaxPooling2D"),
    "AveragePooling2D": _t_pool("AveragePooling2D"),
    "AvgPool2D": _t_pool("AveragePooling2D"),
    "GlobalAveragePooling2D": _t_global_pool("GlobalAveragePooling2D"),
    "GlobalAvgPool2D": _t_global_pool("GlobalAveragePooling2D"),
    "GlobalMaxPooling2D": _t_global_pool("GlobalMaxPooling2D"),
    "GlobalMaxPool2D": _t_global_pool("GlobalMaxPooling2D"),
    "Dropout": _t_dropout,
    "Flatten": _t_flatten,
    "Reshape": _t_reshape,
    "Activation": _t_activation,
    "ReLU": _t_relu,
    "Add": _t_add,
    "Concatenate": _t_concatenate,
    "ZeroPadding2D": _t_zero_padding,
    "Rescaling": _t_rescaling,
    "Normalization": _t_normalization,
}


def translate_layer(layer: Any) -> Layer:
    """One serialized Keras layer (``{"class_name", "config", ...}``) as TF.js reads it.

    >>> translate_layer({"class_name": "LSTM", "config": {"name": "lstm"}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: layer 'lstm': class 'LSTM' is not supported (supported: Activation, Add, ...)
    """
    if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
        raise ConvertError(f"malformed layer entry {str(layer)[:120]}")
    class_name, config = layer.get("class_name"), layer["config"]
    name = config.get("name", layer.get("name"))
    if not isinstance(name, str) or not name or "/" in name:
        raise ConvertError(f"layer name {name!r}: expected a non-empty name without '/'")
    if class_name in ("Functional", "Sequential", "Model"):
        raise ConvertError("nested models are not supported; build the model from layers directly", layer=name)
    translator = TRANSLATORS.get(class_name) if isinstance(class_name, str) else None
    if translator is None:
        raise ConvertError(
            f"class {class_name!r} is not supported (supported: {', '.join(sorted(_CANONICAL))})", layer=name
        )
    reader = _Reader(name, config)
    _dtype_policy(reader)
    tfjs_class, tfjs_config, weight_names = translator(reader)
    reader.finish()
    out = {"name": name, "trainable": bool(config.get("trainable", True)), "dtype": "float32", **tfjs_config}
    return Layer(tfjs_class, out, name, weight_names, keras_class=str(class_name), rewrite=reader.rewrite)


# TRANSLATORS' keys without the older spellings of the same classes: what error messages list.
_CANONICAL = frozenset(TRANSLATORS) - {
    "Convolution2D",
    "SeparableConvolution2D",
    "BatchNormalizationV1",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "GlobalMaxPool2D",
}
