"""Convert a Keras model file (``.keras`` or legacy ``.h5``) into a pyapp model, without TensorFlow.

The output is what :meth:`pyapp.model.Model.load` reads: a ``manifest.json`` (labels, input
size, normalisation, sha256 of every file) and one TF.js *layers* model per weight dtype
(``uint8/``, ``float16/``, ``float32/``), written through :mod:`pyapp.quantize`::

    python -m pyapp.convert model.keras out/ --quantize uint8 --labels cat,dog

The same code runs in Pyodide (with ``pyfive`` reading the HDF5 weights), so a file
dropped on a page converts there too. What TF.js cannot compute exactly as Keras does is
refused with :class:`~pyapp.errors.ConvertError` naming the layer and the reason
(:mod:`pyapp.keras_layers`); a converted model computes what the Keras model computes.

Example::

    >>> import tempfile, pathlib
    >>> config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    ...     {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 2, 2, 3]}},
    ...     {"class_name": "Flatten", "config": {"name": "flat"}},
    ...     {"class_name": "Dense", "config": {"name": "out", "units": 2}}]}}
    >>> import numpy as np
    >>> keras_file = KerasFile(config, {"out": [np.ones((12, 2), np.float32), np.zeros(2, np.float32)]},
    ...                        keras_version="3.0.0", source=".keras")
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> result = convert_file(keras_file, out, dtypes=("uint8",), labels=["a", "b"])
    >>> sorted(p.name for p in (out / "uint8").iterdir())
    ['group1-shard1of1.bin', 'model.json']
    >>> result.manifest["input"]["size"], result.manifest["labels"]
    (2, ['a', 'b'])
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyapp import quantize
from pyapp._js import JsException, error_message, tf
from pyapp.errors import ConvertError
from pyapp.hdf5 import Reader
from pyapp.keras_format import MAX_WEIGHT_BYTES, KerasFile, read_keras
from pyapp.keras_layers import Layer, translate_layer
from pyapp.manifest import ModelManifest

DEFAULT_DTYPES: tuple[quantize.Dtype, ...] = ("uint8", "float16", "float32")  # smallest first: load order
Weights = list[tuple[dict[str, Any], np.ndarray]]


@dataclass
class TfjsModel:
    """A translated model: TF.js's ``modelTopology`` and the weights as ``(spec, float32 array)``.

    >>> TfjsModel({"class_name": "Sequential"}, [], []).weights
    []
    """

    topology: dict[str, Any]
    weights: Weights
    layers: list[Layer]
    input_shape: list[int | None] = field(default_factory=list)
    output_units: int | None = None


# --------------------------------------------------------------------------- topology


def _history(obj: Any, where: str) -> list[list[Any]]:
    """Every ``__keras_tensor__`` in a Keras 3 call's args, as ``[layer, node, tensor, {}]``."""
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        history = (obj.get("config") or {}).get("keras_history")
        if (
            not isinstance(history, list)
            or len(history) != 3
            or not isinstance(history[0], str)
            or not all(isinstance(i, int) and i >= 0 for i in history[1:])
        ):
            raise ConvertError(f"{where}: malformed keras_history {history!r}")
        return [[history[0], history[1], history[2], {}]]
    if isinstance(obj, list | tuple):
        return [h for item in obj for h in _history(item, where)]
    raise ConvertError(f"{where}: a call argument that is not a tensor ({str(obj)[:80]}) is not supported")


def _inbound_nodes(entry: dict[str, Any], name: str) -> list[list[list[Any]]]:
    """A functional layer's calls in the list form TF.js reads: ``[[[layer, node, tensor, {}], ...], ...]``."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise ConvertError("inbound_nodes: expected a list", layer=name)
    out: list[list[list[Any]]] = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            kwargs = node.get("kwargs") or {}
            extra = {k: v for k, v in kwargs.items() if not (k in ("training", "mask") and v in (None, False))}
            if extra:
                raise ConvertError(f"call arguments {sorted(extra)} are not supported", layer=name)
            out.append(_history(node.get("args", []), f"layer {name!r}"))
        elif isinstance(node, list):  # Keras 2: already [[layer, node, tensor, kwargs], ...]
            calls = []
            for call in node:
                if not isinstance(call, list) or len(call) < 3 or not isinstance(call[0], str):
                    raise ConvertError(f"malformed inbound node {str(call)[:80]}", layer=name)
                kwargs = call[3] if len(call) > 3 and isinstance(call[3], dict) else {}
                if any(v not in (None, False) for k, v in kwargs.items()):
                    raise ConvertError(f"call arguments {sorted(kwargs)} are not supported", layer=name)
                calls.append([call[0], int(call[1]), int(call[2]), {}])
            out.append(calls)
        else:
            raise ConvertError(f"malformed inbound node {str(node)[:80]}", layer=name)
    return out


def _endpoints(value: Any, key: str) -> list[list[Any]]:
    """``input_layers``/``output_layers``: one ``[name, node, tensor]`` or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConvertError(f"{key}: expected [layer, node, tensor] entries, found {str(value)[:80]}")
    for v in value:
        if not (isinstance(v, list) and len(v) == 3 and isinstance(v[0], str)):
            raise ConvertError(f"{key}: expected [layer, node, tensor] entries, found {str(value)[:80]}")
    return [[v[0], int(v[1]), int(v[2])] for v in value]


def _input_layer(entry: dict[str, Any]) -> tuple[dict[str, Any], list[int | None]]:
    config = entry.get("config") or {}
    name = config.get("name", entry.get("name"))
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if not isinstance(name, str):
        raise ConvertError(f"InputLayer without a name: {str(entry)[:80]}")
    if (
        not isinstance(shape, list)
        or len(shape) < 2
        or not all(d is None or (isinstance(d, int) and 0 < d < 1 << 20) for d in shape)
    ):
        raise ConvertError(f"input shape {shape!r}: expected [batch, dims...] with positive sizes", layer=name)
    if config.get("sparse") or config.get("ragged") or config.get("optional"):
        raise ConvertError("sparse, ragged or optional inputs are not supported", layer=name)
    if config.get("dtype", "float32") not in ("float32", None):
        raise ConvertError(f"input dtype {config.get('dtype')!r}: only float32 is supported", layer=name)
    batch_shape: list[int | None] = [None, *shape[1:]]
    tfjs = {"batch_input_shape": batch_shape, "dtype": "float32", "sparse": False, "name": name}
    return {"class_name": "InputLayer", "config": tfjs, "name": name, "inbound_nodes": []}, batch_shape


def translate_config(model_config: Any) -> tuple[dict[str, Any], list[Layer], list[int | None]]:
    """A Keras model config (Keras 3 or 2) as TF.js's ``model_config``, its layers, and its input shape.

    >>> cfg, layers, shape = translate_config({"class_name": "Sequential", "config": {"name": "s", "layers": [
    ...     {"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [None, 4]}},
    ...     {"class_name": "Dense", "config": {"name": "d", "units": 1}}]}})
    >>> cfg["config"]["layers"][0]["config"]["batch_input_shape"], shape
    ([None, 4], [None, 4])
    """
    if not isinstance(model_config, dict) or not isinstance(model_config.get("config"), dict):
        raise ConvertError("model config: expected {'class_name': ..., 'config': {...}}")
    kind, config = model_config.get("class_name"), model_config["config"]
    entries = config.get("layers")
    if not isinstance(entries, list) or not entries:
        raise ConvertError("model config: no layers")
    if kind == "Sequential":
        return _translate_sequential(config, entries)
    if kind in ("Functional", "Model"):
        return _translate_functional(config, entries)
    raise ConvertError(f"model class {kind!r} is not supported (only Sequential and Functional models)")


def _translate_sequential(
    config: dict[str, Any], entries: list[Any]
) -> tuple[dict[str, Any], list[Layer], list[int | None]]:
    shape: list[int | None] | None = None
    if isinstance(entries[0], dict) and entries[0].get("class_name") == "InputLayer":
        _, shape = _input_layer(entries[0])
        entries = entries[1:]
    elif isinstance(config.get("build_input_shape"), list):
        shape = [None, *config["build_input_shape"][1:]]
    if not entries:
        raise ConvertError("model config: a Sequential model without layers")
    layers = [translate_layer(e) for e in entries]
    first = entries[0].get("config", {})
    if shape is None and isinstance(first.get("batch_input_shape", first.get("batch_shape")), list):
        shape = [None, *first.get("batch_input_shape", first.get("batch_shape"))[1:]]
    if shape is None:
        raise ConvertError("model config: the input shape is unknown (build or call the model before saving)")
    _, shape = _input_layer({"config": {"name": "input", "batch_shape": shape}})
    tfjs_layers: list[dict[str, Any]] = [
        {"class_name": layer.class_name, "config": copy.deepcopy(layer.config)} for layer in layers
    ]
    # TF.js's Sequential takes its input shape from the first layer, as Keras 2 saved it.
    tfjs_layers[0]["config"]["batch_input_shape"] = shape
    name = config.get("name", "sequential")
    return {"class_name": "Sequential", "config": {"name": name, "layers": tfjs_layers}}, layers, shape


def _translate_functional(
    config: dict[str, Any], entries: list[Any]
) -> tuple[dict[str, Any], list[Layer], list[int | None]]:
    tfjs_layers: list[dict[str, Any]] = []
    layers: list[Layer] = []
    shapes: dict[str, list[int | None]] = {}
    names: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConvertError(f"model config: malformed layer entry {str(entry)[:80]}")
        if entry.get("class_name") == "InputLayer":
            tfjs, shape = _input_layer(entry)
            shapes[tfjs["name"]] = shape
        else:
            layer = translate_layer(entry)
            layers.append(layer)
            nodes = _inbound_nodes(entry, layer.name)
            tfjs = {"class_name": layer.class_name, "config": layer.config, "name": layer.name, "inbound_nodes": nodes}
        if tfjs["name"] in names:
            raise ConvertError("the name is used by two layers", layer=tfjs["name"])
        names.add(tfjs["name"])
        tfjs_layers.append(tfjs)
    for tfjs in tfjs_layers:
        for node in tfjs["inbound_nodes"]:
            for call in node:
                if call[0] not in names:
                    raise ConvertError(f"called on the output of unknown layer {call[0]!r}", layer=tfjs["name"])
    inputs = _endpoints(config.get("input_layers"), "input_layers")
    outputs = _endpoints(config.get("output_layers"), "output_layers")
    for endpoint in inputs + outputs:
        if endpoint[0] not in names:
            raise ConvertError(f"model config: input/output layer {endpoint[0]!r} is not among the layers")
    if len(inputs) != 1 or inputs[0][0] not in shapes:
        raise ConvertError(f"model config: one InputLayer input expected, found {[i[0] for i in inputs]}")
    model = {
        "class_name": "Functional",
        "config": {
            "name": config.get("name", "model"),
            "layers": tfjs_layers,
            "input_layers": inputs,
            "output_layers": outputs,
        },
    }
    return model, layers, shapes[inputs[0][0]]


# --------------------------------------------------------------------------- weights


def _expected_shapes(layer: Layer, arrays: list[np.ndarray]) -> list[tuple[int | None, ...]]:
    """What TF.js will require of each weight, from the config (None: any size, checked by consistency)."""
    c = layer.config
    kh, kw = c.get("kernel_size", (None, None))
    cin = arrays[0].shape[2] if arrays and arrays[0].ndim == 4 else None
    table: dict[str, tuple[int | None, ...]] = {}
    if layer.class_name == "Conv2D":
        table = {"kernel": (kh, kw, None, c["filters"]), "bias": (c["filters"],)}
    elif layer.class_name == "DepthwiseConv2D":
        mult = c["depth_multiplier"]
        table = {"depthwise_kernel": (kh, kw, None, mult), "bias": (None if cin is None else cin * mult,)}
    elif layer.class_name == "SeparableConv2D":
        mult = c["depth_multiplier"]
        table = {
            "depthwise_kernel": (kh, kw, None, mult),
            "pointwise_kernel": (1, 1, None if cin is None else cin * mult, c["filters"]),
            "bias": (c["filters"],),
        }
    elif layer.class_name == "Dense":
        table = {"kernel": (None, c["units"]), "bias": (c["units"],)}
    elif layer.class_name == "BatchNormalization":
        n = arrays[0].shape[0] if arrays and arrays[0].ndim == 1 else None
        table = {k: (n,) for k in ("gamma", "beta", "moving_mean", "moving_variance")}
    return [table.get(name, ()) for name in layer.weight_names]


def layer_weights(layer: Layer, stored: list[np.ndarray]) -> Weights:
    """A layer's Keras weights as TF.js weight specs and float32 arrays, every shape checked.

    >>> from pyapp.keras_layers import translate_layer
    >>> dense = translate_layer({"class_name": "Dense", "config": {"name": "d", "units": 3}})
    >>> layer_weights(dense, [np.ones((4, 2)), np.ones(3)])
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: layer 'd': weight kernel has shape (4, 2), expected (*, 3)
    """
    arrays = layer.rewrite(list(stored)) if layer.rewrite else list(stored)
    if len(arrays) != len(layer.weight_names):
        raise ConvertError(
            f"{layer.keras_class} stores {len(arrays)} weights, expected {len(layer.weight_names)} "
            f"({', '.join(layer.weight_names) or 'none'})",
            layer=layer.name,
        )
    out: Weights = []
    for name, value, expected in zip(layer.weight_names, arrays, _expected_shapes(layer, arrays), strict=True):
        if value.dtype.kind not in "fiu":
            raise ConvertError(f"weight {name} has dtype {value.dtype}, expected floats", layer=layer.name)
        if expected and (
            value.ndim != len(expected)
            or any(e is not None and e != d for e, d in zip(expected, value.shape, strict=True))
        ):
            want = ", ".join("*" if e is None else str(e) for e in expected)
            raise ConvertError(f"weight {name} has shape {value.shape}, expected ({want})", layer=layer.name)
        value32 = np.ascontiguousarray(value, dtype=np.float32)
        if not np.isfinite(value32).all():
            raise ConvertError(f"weight {name} holds NaN or infinite values", layer=layer.name)
        out.append(({"name": f"{layer.name}/{name}", "shape": list(value32.shape), "dtype": "float32"}, value32))
    return out


def to_tfjs(keras_file: KerasFile) -> TfjsModel:
    """Translate a read Keras file into TF.js's topology and float32 weights (nothing written).

    >>> cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    ...     {"class_name": "InputLayer", "config": {"name": "i", "batch_shape": [None, 4]}},
    ...     {"class_name": "Dense", "config": {"name": "d", "units": 1, "use_bias": False}}]}}
    >>> m = to_tfjs(KerasFile(cfg, {"d": [np.ones((4, 1))]}, "3.0.0", ".keras"))
    >>> [spec["name"] for spec, _ in m.weights], m.output_units
    (['d/kernel'], 1)
    """
    model_config, layers, input_shape = translate_config(keras_file.config)
    if keras_file.nested:
        raise ConvertError("holds nested layers; nested models are not supported", layer=keras_file.nested[0])
    by_name = {layer.name: layer for layer in layers}
    unknown = sorted(set(keras_file.weights) - set(by_name))
    if unknown:
        raise ConvertError(f"the weights file holds weights for layers not in the config: {unknown[:5]}")
    weights: Weights = []
    for layer in layers:
        weights += layer_weights(layer, keras_file.weights.get(layer.name, []))
    topology = {
        "keras_version": keras_file.keras_version,
        "backend": "tensor_flow.js",
        "model_config": model_config,
    }
    return TfjsModel(topology, weights, layers, input_shape, _output_units(model_config, layers))


def _output_units(model_config: dict[str, Any], layers: list[Layer]) -> int | None:
    """The class count when the model ends in a Dense layer (the usual classifier), else None."""
    if model_config["class_name"] == "Sequential":
        last = layers[-1:]
    else:
        outputs = model_config["config"]["output_layers"]
        last = [layer for layer in layers if len(outputs) == 1 and layer.name == outputs[0][0]]
    if last and last[0].class_name == "Dense":
        return int(last[0].config["units"])
    return None


# --------------------------------------------------------------------------- writing


@dataclass
class ConvertResult:
    """What :func:`convert_file` wrote: the manifest, bytes per variant, seconds taken, notes.

    >>> ConvertResult(Path("out"), {}, {"uint8": 10}, 0.5).sizes
    {'uint8': 10}
    """

    out_dir: Path
    manifest: dict[str, Any]
    sizes: dict[str, int]
    seconds: float
    notes: list[str] = field(default_factory=list)


def _image_input(shape: list[int | None], size: int | None) -> tuple[int, int]:
    if len(shape) != 4:
        raise ConvertError(f"input shape {shape}: pyapp models take images (batch, height, width, channels)")
    _, h, w, c = shape
    if c not in (1, 3, 4):
        raise ConvertError(f"input shape {shape}: expected 1, 3 or 4 channels")
    if size is None:
        if h is None or h != w:
            raise ConvertError(f"input shape {shape}: not a fixed square image; pass the size (--size)")
        size = h
    elif (h is not None and h != size) or (w is not None and w != size):
        raise ConvertError(f"input shape {shape}: does not take {size}x{size} images")
    return size, c


def convert_file(
    keras_file: KerasFile,
    out_dir: Path,
    *,
    dtypes: Sequence[quantize.Dtype] = DEFAULT_DTYPES,
    labels: Sequence[str] | None = None,
    name: str = "model",
    size: int | None = None,
    normalize: str | None = None,
    description: str = "",
) -> ConvertResult:
    """Write a read Keras file as a pyapp model (manifest + one TF.js model per dtype) in ``out_dir``."""
    start = time.perf_counter()
    if not dtypes or any(d not in quantize.DTYPES for d in dtypes) or len(set(dtypes)) != len(dtypes):
        raise ConvertError(f"dtypes {list(dtypes)}: expected distinct values from {quantize.DTYPES}")
    model = to_tfjs(keras_file)
    input_size, channels = _image_input(model.input_shape, size)
    notes: list[str] = []
    if labels is not None and model.output_units is not None and len(labels) != model.output_units:
        raise ConvertError(f"{len(labels)} labels given for a model with {model.output_units} outputs")
    if normalize is None:
        first = model.layers[0].keras_class if model.layers else ""
        # A model that scales its own input wants raw 0..255 pixels; otherwise 0..1 is Keras's usual.
        normalize = "none" if first in ("Rescaling", "Normalization") else "unit"
        notes.append(
            f"normalize={normalize!r} "
            + ("(the model rescales its own input)" if normalize == "none" else "(a guess; pass --normalize)")
        )
    model_json = {
        "format": "layers-model",
        "generatedBy": f"keras v{keras_file.keras_version}",
        "convertedBy": "pyapp.convert",
        "modelTopology": model.topology,
    }
    variants = []
    sizes: dict[str, int] = {}
    out_dir = Path(out_dir)
    for dtype in dtypes:
        files = quantize.write_model(model_json, model.weights, out_dir / dtype, dtype, converted_by="pyapp.convert")
        variants.append(
            {
                "name": dtype,
                "format": "layers-model",
                "weights_dtype": dtype,
                "model": f"{dtype}/model.json",
                "files": {f"{dtype}/{f}": digest for f, digest in sorted(files.items())},
            }
        )
        sizes[dtype] = sum((out_dir / dtype / f).stat().st_size for f in files)
    manifest: dict[str, Any] = {
        "name": name,
        "description": description or f"converted from a Keras {keras_file.source} file by pyapp.convert",
        "task": "image-classification",
        "labels": list(labels or []),
        "input": {"size": input_size, "channels": channels, "layout": "NHWC", "dtype": "float32"},
        "preprocess": {"resize": "bilinear", "align_corners": True, "normalize": normalize},
        "variants": variants,
    }
    ModelManifest.from_dict(manifest)  # what Model.load will check, checked now
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return ConvertResult(out_dir, manifest, sizes, time.perf_counter() - start, notes)


def convert(
    source: Path | str | bytes,
    out_dir: Path | str,
    *,
    dtypes: Sequence[quantize.Dtype] = DEFAULT_DTYPES,
    labels: Sequence[str] | None = None,
    name: str | None = None,
    size: int | None = None,
    normalize: str | None = None,
    reader: Reader | None = None,
    limit_bytes: int = MAX_WEIGHT_BYTES,
) -> ConvertResult:
    """Read a ``.keras``/``.h5`` file (a path or its bytes) and write it as a pyapp model in ``out_dir``.

    >>> convert(b"not a model", "/tmp/never-written")
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: neither a .keras archive (zip) nor a Keras .h5 file (starts with b'not a mo')
    """
    start = time.perf_counter()
    if isinstance(source, bytes):
        data, stem = source, name or "model"
    else:
        path = Path(source)
        try:
            if path.stat().st_size > limit_bytes + (64 << 20):
                raise ConvertError(f"{path}: {path.stat().st_size} bytes, over the {limit_bytes}-byte limit")
            data = path.read_bytes()
        except OSError as exc:
            raise ConvertError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        stem = name or path.stem
    keras_file = read_keras(data, reader=reader, limit_bytes=limit_bytes)
    result = convert_file(
        keras_file,
        Path(out_dir),
        dtypes=dtypes,
        labels=labels,
        name=stem,
        size=size,
        normalize=normalize,
        description=f"converted from {stem}{keras_file.source} (keras {keras_file.keras_version}) by pyapp.convert",
    )
    result.seconds = time.perf_counter() - start
    result.notes.insert(0, f"sha256 of the source: {hashlib.sha256(data).hexdigest()}")
    return result


# --------------------------------------------------------------------------- in the browser

#: Key of a converted model's TF.js ``userDefinedMetadata`` that holds its pyapp manifest, so that
#: a converted model saved to IndexedDB classifies again after a reload, labels and preprocessing
#: included (TF.js saves that metadata with the weights).
MANIFEST_KEY = "pyapp_manifest"


def store_name(file_name: str) -> str:
    """An IndexedDB model name from a dropped file's name: its stem, other characters as ``-``.

    >>> store_name("My model (v2).keras")
    'My-model-v2-'
    """
    import re

    stem = file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).lstrip("._-")[:100] or "model"


def default_labels(manifest: dict[str, Any], outputs: int) -> dict[str, Any]:
    """``manifest`` with ``class 0``... as labels when it has none (a Keras file does not name its classes).

    >>> default_labels({"labels": []}, 3)["labels"]
    ['class 0', 'class 1', 'class 2']
    """
    if manifest.get("labels"):
        return manifest
    return {**manifest, "labels": [f"class {i}" for i in range(outputs)]}


async def _classifier(manifest_dict: dict[str, Any], js_model: Any, info: Any) -> Any:
    """An :class:`~pyapp.classifier.ImageClassifier` over a built TF.js model, warmed up, memory-guarded."""
    from pyapp.classifier import ImageClassifier
    from pyapp.memory import CleanupPolicy, MemoryGuard
    from pyapp.model import Model

    try:
        manifest_dict = default_labels(manifest_dict, int(js_model.outputs[0].shape[-1]))
        model = Model(ModelManifest.from_dict(manifest_dict), js_model, info)
    except BaseException:
        js_model.dispose()
        raise
    try:
        await model.warmup()
        model.memory = MemoryGuard(CleanupPolicy())
        model.memory.start()
    except BaseException:
        model.dispose()
        raise
    return ImageClassifier(model)


async def load_in_browser(
    data: bytes,
    name: str = "model",
    *,
    labels: Sequence[str] | None = None,
    dtype: quantize.Dtype = "float32",
    size: int | None = None,
    normalize: str | None = None,
    save_to: str | None = None,
) -> tuple[Any, ConvertResult]:
    """Convert a Keras file's bytes here in the page and load it: ``(ImageClassifier, ConvertResult)``.

    The same :func:`convert` as on the host, with pyfive reading the weights (loaded into
    Pyodide on first use), written to Pyodide's in-memory file system and built by TF.js
    from there. ``dtype`` is the one variant built (float32: what Keras computes). With
    ``save_to`` (``indexeddb://NAME``) the model is also saved in the browser, manifest
    included; :func:`load_saved` loads it back. Without labels, classes are ``class 0``...
    Browser only.
    """
    import shutil
    import tempfile

    from pyapp import saving
    from pyapp.hdf5 import load_reader
    from pyapp.model import LoadInfo, build_artifacts, memory_handler

    if save_to is not None:
        saving.check_destination(save_to)
    reader = await load_reader()
    out = Path(tempfile.mkdtemp(prefix="pyapp-convert-"))  # Pyodide's MEMFS: nothing leaves the page
    try:
        result = convert(
            data, out, dtypes=(dtype,), labels=labels, name=name, size=size, normalize=normalize, reader=reader
        )
        variant = ModelManifest.from_dict(result.manifest).variants[0]
        files = {f: (out / f).read_bytes() for f in variant.files}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    artifacts, weights = build_artifacts(files[variant.model], files, variant)
    artifacts["userDefinedMetadata"] = {MANIFEST_KEY: result.manifest}
    try:
        js_model = await tf().loadLayersModel(memory_handler(artifacts, weights))
    except JsException as exc:
        raise ConvertError(f"TF.js could not build the converted model: {error_message(exc)}") from None
    info = LoadInfo(
        variant=variant.name, bytes=sum(map(len, files.values())), build_ms=(time.perf_counter() - started) * 1e3
    )
    classifier = await _classifier(result.manifest, js_model, info)
    if save_to is not None:
        try:
            await saving.save(js_model, save_to)
        except BaseException:
            classifier.dispose()
            raise
        result.notes.append(f"saved in this browser as {save_to}")
    return classifier, result


async def load_saved(url: str) -> Any:
    """A converted model saved by :func:`load_in_browser` (``indexeddb://NAME``), as an ImageClassifier."""
    from pyapp import saving
    from pyapp.errors import ModelLoadError
    from pyapp.model import LoadInfo

    saving.check_destination(url)
    started = time.perf_counter()
    try:
        js_model = await tf().loadLayersModel(url)
    except JsException as exc:
        raise ModelLoadError(f"could not load {url}: {error_message(exc)}") from None
    meta = js_model.getUserDefinedMetadata()
    manifest = meta.to_py().get(MANIFEST_KEY) if meta is not None else None
    if not isinstance(manifest, dict):
        js_model.dispose()
        raise ModelLoadError(f"{url} was not saved by pyapp.convert (no {MANIFEST_KEY} in its metadata)")
    info = LoadInfo(variant=str(manifest["variants"][0]["name"]), build_ms=(time.perf_counter() - started) * 1e3)
    return await _classifier(manifest, js_model, info)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status.

    >>> main(["/nonexistent.keras", "/tmp/out"])  # the reason goes to stderr
    1
    """
    parser = argparse.ArgumentParser(prog="python -m pyapp.convert", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a Keras 3 .keras archive or a legacy .h5 model")
    parser.add_argument("out_dir", type=Path, help="directory for manifest.json and one folder per dtype")
    parser.add_argument(
        "--quantize",
        action="append",
        choices=quantize.DTYPES,
        help="weight dtype of a variant; repeat for several (default: uint8, float16 and float32)",
    )
    parser.add_argument("--labels", help="class names, comma-separated, or @file with one per line")
    parser.add_argument("--name", help="model name in the manifest (default: the file's stem)")
    parser.add_argument("--size", type=int, help="input image size, when the model's input shape leaves it open")
    parser.add_argument("--normalize", choices=("unit", "symmetric", "none", "imagenet"))
    parser.add_argument("--reader", choices=("h5py", "pyfive"), help="HDF5 reader (default: h5py if installed)")
    args = parser.parse_args(argv)
    labels: list[str] | None = None
    if args.labels:
        text = Path(args.labels[1:]).read_text() if args.labels.startswith("@") else args.labels.replace(",", "\n")
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        result = convert(
            args.model,
            args.out_dir,
            dtypes=tuple(args.quantize or DEFAULT_DTYPES),
            labels=labels,
            name=args.name,
            size=args.size,
            normalize=args.normalize,
            reader=args.reader,
        )
    except ConvertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}")
    for dtype, nbytes in result.sizes.items():
        print(f"wrote {args.out_dir / dtype} ({nbytes} bytes)")
    print(f"wrote {args.out_dir / 'manifest.json'} in {result.seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
