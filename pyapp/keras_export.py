"""A TF.js layers model (as :func:`pyapp.saving.to_files` gives it) as a Keras 3 ``.keras`` file, with numpy only.

The reverse of :mod:`pyapp.convert`, for the models pyapp trains in the browser (the teach
panel's head: ``Dense``, ``Dropout``, ``Dense``): the ``.keras`` zip holds ``config.json``
(Keras 3's serialized Sequential model), ``metadata.json`` and ``model.weights.h5``
(written by :mod:`pyapp.hdf5_write`, so it runs in Pyodide). ``keras.saving.load_model``
reads it back. A layer or option this does not translate is a
:class:`~pyapp.errors.ConvertError` naming the layer, never a silently different model.

On the host, the files the teach panel's Download gives convert the same way::

    python -m pyapp.keras_export my-classifier.json my-classifier.keras

Example::

    >>> import numpy as np, json
    >>> topology = {"class_name": "Sequential", "config": {"name": "head", "layers": [
    ...     {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "softmax",
    ...      "use_bias": True, "batch_input_shape": [None, 3]}}]}}
    >>> specs = [{"name": "d/kernel", "shape": [3, 2], "dtype": "float32"},
    ...          {"name": "d/bias", "shape": [2], "dtype": "float32"}]
    >>> weights = np.arange(8, dtype=np.float32).tobytes()
    >>> manifest = [{"paths": ["w.bin"], "weights": specs}]
    >>> model_json = json.dumps({"modelTopology": topology, "weightsManifest": manifest})
    >>> data = to_keras({"m.json": model_json.encode(), "w.bin": weights})
    >>> import zipfile, io
    >>> sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())
    ['config.json', 'metadata.json', 'model.weights.h5']
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pyapp.artifacts import ModelJson, WeightSpec, split_weights
from pyapp.errors import ConvertError, PyAppError
from pyapp.hdf5_write import write_hdf5
from pyapp.keras_format import _state_paths
from pyapp.saving import read_files

#: The Keras version the files claim to need: the .keras format and the configs below are Keras 3's.
KERAS_VERSION = "3.0.0"
#: TF.js activation names Keras 3 knows by the same name and computes the same way.
ACTIVATIONS = frozenset({"linear", "relu", "relu6", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus"})
_LAYER_OPTIONS = {
    "Dense": {"units", "activation", "use_bias"},
    "Dropout": {"rate"},
}
# What TF.js writes into every layer config that does not change inference (initializers,
# regularizers: training-time only) or that is rewritten below (names, shapes, dtype).
_IGNORED = frozenset(
    {
        "name",
        "trainable",
        "batch_input_shape",
        "dtype",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "bias_constraint",
        "noise_shape",
        "seed",
    }
)


def _layer(entry: Any, index: int, units_in: int) -> tuple[dict[str, Any], int]:
    """One TF.js layer as Keras 3 serializes it, and the size of its output."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConvertError(f"layer {index}: malformed TF.js layer config")
    cls, config = entry.get("class_name"), entry["config"]
    name = str(config.get("name", f"layer_{index}"))
    if cls not in _LAYER_OPTIONS:
        raise ConvertError(f"{cls} layers cannot be exported to Keras yet (only {sorted(_LAYER_OPTIONS)})", layer=name)
    unknown = sorted(set(config) - _LAYER_OPTIONS[cls] - _IGNORED)
    if unknown:
        raise ConvertError(f"options {unknown} are not exported", layer=name)
    if config.get("dtype", "float32") != "float32":
        raise ConvertError(f"dtype {config['dtype']!r}: only float32 is exported", layer=name)
    keras_config: dict[str, Any] = {"name": name, "trainable": bool(config.get("trainable", True)), "dtype": "float32"}
    units_out = units_in
    if cls == "Dense":
        activation = config.get("activation", "linear")
        if activation not in ACTIVATIONS:
            raise ConvertError(f"activation {activation!r} is not exported", layer=name)
        units_out = int(config["units"])
        keras_config |= {"units": units_out, "activation": activation, "use_bias": bool(config.get("use_bias", True))}
    else:
        if config.get("noise_shape") is not None:
            raise ConvertError("noise_shape is not exported", layer=name)
        keras_config |= {"rate": float(config["rate"]), "seed": None, "noise_shape": None}
    return {
        "module": "keras.layers",
        "class_name": cls,
        "config": keras_config,
        "registered_name": None,
        "build_config": {"input_shape": [None, units_in]},
    }, units_out


def keras_config(topology: Mapping[str, Any]) -> dict[str, Any]:
    """A TF.js Sequential model's topology as Keras 3's ``config.json``.

    >>> keras_config({"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 4]}}]}})
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: layer 'c': Conv2D layers cannot be exported to Keras yet (only ['Dense', 'Dropout'])
    """
    model = topology.get("model_config", topology)  # model.json nests it; TF.js's save handler does not
    if model.get("class_name") != "Sequential" or not isinstance(model.get("config"), dict):
        raise ConvertError(f"only Sequential models are exported, not {model.get('class_name')!r}")
    layers = model["config"].get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConvertError("the model has no layers")
    shape = (layers[0].get("config") or {}).get("batch_input_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0):
        raise ConvertError(f"input shape {shape!r}: only flat (batch, features) inputs are exported")
    units = shape[1]
    out: list[dict[str, Any]] = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, units], "dtype": "float32", "sparse": False, "name": "input_layer"},
            "registered_name": None,
        }
    ]
    for index, entry in enumerate(layers):
        layer, units = _layer(entry, index, units)
        out.append(layer)
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": str(model["config"].get("name", "sequential")), "trainable": True, "layers": out},
        "registered_name": None,
        "build_config": {"input_shape": [None, shape[1]]},
    }


def _weights(entries: list[WeightSpec], data: bytes) -> dict[str, dict[str, np.ndarray]]:
    """Weight bytes split by the specs: layer name -> {"kernel": ..., "bias": ...}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for spec, chunk in split_weights(entries, data):
        if spec.dtype != "float32" or spec.quantization is not None:
            raise ConvertError(f"weight {spec.name!r}: only float32 weights are exported")
        layer, _, weight = spec.name.rpartition("/")
        out.setdefault(layer, {})[weight] = np.frombuffer(chunk, "<f4", spec.count).reshape(spec.shape)
    return out


def to_keras(files: Mapping[str, bytes]) -> bytes:
    """A ``.keras`` archive from a TF.js layers model's files (``NAME.json`` and its weight shards).

    The model's TF.js ``userDefinedMetadata`` (the teach panel's class names, for one) goes into
    ``metadata.json`` as ``user_metadata``: Keras does not read it, people can.
    """
    try:
        mj, data = read_files(files)
    except PyAppError as exc:
        raise ConvertError(str(exc)) from None
    config = keras_config(mj.topology)
    weights = _weights(mj.weights.entries, data)
    layers: dict[str, Any] = {}
    for (path, name), entry in zip(_state_paths(config), config["config"]["layers"][1:], strict=True):
        own = weights.pop(name, {})
        order = ["kernel", "bias"] if entry["class_name"] == "Dense" else []
        if entry["class_name"] == "Dense" and not entry["config"]["use_bias"]:
            order = ["kernel"]
        if sorted(own) != sorted(order):
            raise ConvertError(f"has weights {sorted(own)}, expected {order}", layer=name)
        layers[path] = {"vars": {str(i): own[w] for i, w in enumerate(order)}}
    if weights:
        raise ConvertError(f"weights for layers not in the model: {sorted(weights)[:5]}")
    metadata: dict[str, Any] = {"keras_version": KERAS_VERSION, "exported_by": "pyapp.keras_export"}
    if mj.spec.get("userDefinedMetadata"):
        metadata["user_metadata"] = mj.spec["userDefinedMetadata"]
    buffer = io.BytesIO()
    # A fixed date keeps the archive's bytes a function of the model alone.
    stamp = (2020, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("metadata.json", stamp), json.dumps(metadata))
        archive.writestr(zipfile.ZipInfo("config.json", stamp), json.dumps(config))
        archive.writestr(zipfile.ZipInfo("model.weights.h5", stamp), write_hdf5({"layers": layers, "vars": {}}))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """The command line: a TF.js ``model.json`` (its shards beside it) to a ``.keras`` file; returns the status.

    >>> main(["/nonexistent.json", "/tmp/out.keras"])  # the reason goes to stderr
    1
    """
    parser = argparse.ArgumentParser(prog="python -m pyapp.keras_export", description=__doc__.splitlines()[0])
    parser.add_argument("model_json", type=Path, help="a TF.js layers model.json; its weight files beside it")
    parser.add_argument("out", type=Path, help="the .keras file to write")
    args = parser.parse_args(argv)
    try:
        text = args.model_json.read_bytes()
        names = ModelJson.parse(text, str(args.model_json)).weights.paths
        files = {args.model_json.name: text}
        files |= {name: (args.model_json.parent / name).read_bytes() for name in names}
        args.out.write_bytes(to_keras(files))
    except (OSError, ValueError, PyAppError) as exc:  # ConvertError is both
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
