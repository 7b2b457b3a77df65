"""pyapp.layers on the host: each layer's TF.js configuration, and bad arguments refused before any browser work."""

from __future__ import annotations

import pytest

from pyapp.errors import InvalidInput
from pyapp.layers import (
    Activation,
    AveragePool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePool2D,
    MaxPool2D,
    Reshape,
)


def test_configs_are_what_tfjs_layers_take() -> None:
    assert Dense(10, activation="softmax", name="out").tfjs() == (
        "dense",
        {"units": 10, "activation": "softmax", "useBias": True, "name": "out"},
    )
    assert Conv2D(8, (3, 5), strides=2, padding="same", input_shape=(28, 28, 1)).tfjs() == (
        "conv2d",
        {
            "filters": 8,
            "kernelSize": [3, 5],
            "strides": [2, 2],
            "padding": "same",
            "activation": "linear",
            "useBias": True,
            "inputShape": [28, 28, 1],
        },
    )
    assert MaxPool2D(2).tfjs() == ("maxPooling2d", {"poolSize": [2, 2], "strides": [2, 2], "padding": "valid"})
    assert AveragePool2D(3, strides=1).tfjs()[1]["strides"] == [1, 1]
    assert AveragePool2D(3).tfjs()[0] == "averagePooling2d"
    assert Dropout(0.5).tfjs() == ("dropout", {"rate": 0.5})
    assert Flatten().tfjs() == ("flatten", {})
    assert GlobalAveragePool2D().tfjs() == ("globalAveragePooling2d", {})
    assert BatchNorm().tfjs() == ("batchNormalization", {"momentum": 0.99, "epsilon": 1e-3})
    assert Reshape(target_shape=(4, 4)).tfjs() == ("reshape", {"targetShape": [4, 4]})
    assert Activation("hard_sigmoid").tfjs() == ("activation", {"activation": "hardSigmoid"})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Dense(0), "Dense: units must be a positive integer, got 0"),
        (lambda: Dense(3.5), "Dense: units must be a positive integer, got 3.5"),
        (lambda: Dense(2, activation="relu7"), "Dense: unknown activation 'relu7'"),
        (lambda: Conv2D(8, 0), "Conv2D: kernel_size must be a positive integer, got 0"),
        (lambda: Conv2D(8, (3, 3, 3)), "Conv2D: kernel_size must be an int or a pair of ints"),
        (lambda: Conv2D(8, padding="full"), "Conv2D: padding must be 'valid' or 'same'"),
        (lambda: MaxPool2D(2, padding="x"), "MaxPool2D: padding must be 'valid' or 'same'"),
        (lambda: Dropout(1.0), "Dropout: rate must be in [0, 1), got 1.0"),
        (lambda: Dropout(-0.1), "Dropout: rate must be in [0, 1)"),
        (lambda: BatchNorm(momentum=1.5), "BatchNorm: momentum must be in (0, 1)"),
        (lambda: Reshape(), "Reshape: target_shape is required"),
        (lambda: Dense(2, input_shape=(0, 3)), "Dense: every input_shape dimension must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused_with_the_layer_named(make: object, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make()  # type: ignore[operator]
    assert message in str(info.value)


def test_layers_are_immutable_values() -> None:
    layer = Dense(4)
    with pytest.raises(AttributeError):
        layer.units = 5  # type: ignore[misc]
    assert Dense(4) == layer
    assert Dense(4, input_shape=[3]).input_shape == (3,)  # type: ignore[arg-type]


def test_a_seed_reaches_the_initializer_of_layers_that_draw_random_weights() -> None:
    seeded = {"className": "GlorotNormal", "config": {"seed": 5}}  # TF.js's default initializer, seeded
    assert Conv2D(8, 3).tfjs(seed=5)[1]["kernelInitializer"] == seeded
    assert Dense(2).tfjs(seed=5)[1]["kernelInitializer"] == seeded
    assert "kernelInitializer" not in Dense(2).tfjs()[1]  # unseeded: exactly as before
    for layer in (Dropout(0.5), MaxPool2D(2), BatchNorm(), Flatten()):
        assert layer.tfjs(seed=5) == layer.tfjs()
    for bad in (0, -3, 2**31, 1.5):  # TF.js reads a seed of 0 as "no seed"
        with pytest.raises(InvalidInput, match=r"Dense: seed must be an integer in \[1, 2\*\*31\)"):
            Dense(2).tfjs(seed=bad)  # type: ignore[arg-type]
