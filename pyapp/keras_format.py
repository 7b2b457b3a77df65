"""Read Keras model files without Keras: a Keras 3 ``.keras`` archive or a legacy ``.h5``.

Both come out as one :class:`KerasFile`: the model's config (as Keras wrote it) and each
layer's weights in Keras's own order. Pure Python plus numpy and an HDF5 reader
(:mod:`pyapp.hdf5`), so it runs in Pyodide too. Bounded: the archive's members are
checked against size limits from their declared sizes before anything is inflated, and
every weight's declared size is checked before it is read.

Formats (keras/src/saving/saving_lib.py and legacy/saving/legacy_h5_format.py):

- ``.keras``: a zip of ``config.json`` (the model's serialized config), ``metadata.json``
  (``keras_version``) and ``model.weights.h5``, where layer ``L``'s variables are the
  datasets ``layers/L/vars/0``, ``1``... in the order the layer created them.
- ``.h5``: the attribute ``model_config`` (JSON) on the root; group ``model_weights``
  lists ``layer_names``, and each layer group lists ``weight_names`` (paths of its
  datasets) in order.

Example::

    >>> read_keras(b"PK\\x05\\x06" + bytes(18))
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: .keras archive: no config.json in it (members: [])
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyapp.errors import ConvertError
from pyapp.hdf5 import Group, Reader, open_hdf5

MAX_CONFIG_BYTES = 32 << 20  # a MobileNetV2 config is ~0.2 MiB
MAX_WEIGHT_BYTES = 1 << 30
# A stored member inflating past this ratio is not a Keras file (an h5 of float weights
# deflates by ~1.1x; a JSON config by ~10x).
MAX_RATIO = 200


@dataclass
class KerasFile:
    """A model read from a Keras file.

    ``config`` is the model's serialized config as Keras wrote it; ``weights`` maps each
    layer name to its arrays in Keras's order (layers without weights are absent).

    >>> KerasFile(config={}, weights={}, keras_version="3.0.0", source=".keras").source
    '.keras'
    """

    config: dict[str, Any]
    weights: dict[str, list[np.ndarray]]
    keras_version: str
    source: str
    backend: str = ""
    # Layers whose state holds sub-layers (nested models, wrappers): refused once the
    # config has been checked, so that an unsupported layer class is named first.
    nested: list[str] = field(default_factory=list)


def read_keras(
    data: bytes, reader: Reader | None = None, limit_bytes: int = MAX_WEIGHT_BYTES, name: str = ""
) -> KerasFile:
    """Read a ``.keras`` archive or a legacy ``.h5`` file from its bytes (which one is sniffed).

    >>> read_keras(b"GIF89a")
    Traceback (most recent call last):
    ...
    pyapp.errors.ConvertError: neither a .keras archive (zip) nor a Keras .h5 file (starts with b'GIF89a')
    """
    if data.startswith(b"\x89HDF\r\n\x1a\n"):
        return _read_h5(data, reader, limit_bytes)
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _read_archive(data, reader, limit_bytes)
    raise ConvertError(
        f"neither a .keras archive (zip) nor a Keras .h5 file (starts with {data[:8]!r})"
        + (f": {name}" if name else "")
    )


# --------------------------------------------------------------------------- .keras


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """One member's bytes, refused on its declared sizes before it is inflated."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ConvertError(f".keras archive: no {name} in it (members: {archive.namelist()[:10]})") from None
    if info.file_size > limit:
        raise ConvertError(f".keras archive: {name} declares {info.file_size} bytes, over the {limit}-byte limit")
    if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 20:
        raise ConvertError(
            f".keras archive: {name} declares {info.file_size} bytes from {info.compress_size} compressed "
            f"(ratio over {MAX_RATIO}: a zip bomb?)"
        )
    try:
        with archive.open(info) as stream:
            # zipfile stops at the declared size and checks the CRC, so a member lying
            # about its size fails here instead of inflating without bound.
            out = stream.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise ConvertError(f".keras archive: {name} is damaged ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # zlib.error and friends: a corrupt deflate stream
        raise ConvertError(f".keras archive: {name} is damaged ({type(exc).__name__}: {exc})") from None
    if len(out) > limit:
        raise ConvertError(f".keras archive: {name} inflates past the {limit}-byte limit")
    return out


def _json(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConvertError(f"{where}: not JSON ({exc})") from None


def _read_archive(data: bytes, reader: Reader | None, limit_bytes: int) -> KerasFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ConvertError(f".keras archive: not a readable zip, truncated or damaged ({exc})") from None
    with archive:
        config = _json(_member(archive, "config.json", MAX_CONFIG_BYTES), ".keras config.json")
        metadata: Any = {}
        if "metadata.json" in archive.namelist():
            metadata = _json(_member(archive, "metadata.json", MAX_CONFIG_BYTES), ".keras metadata.json")
        if "model.weights.npz" in archive.namelist():
            raise ConvertError(".keras archive: weights saved as .npz are not supported; save with the default h5")
        weights_raw = _member(archive, "model.weights.h5", limit_bytes)
    if not isinstance(config, dict) or not isinstance(metadata, dict):
        raise ConvertError(".keras archive: config.json and metadata.json must be JSON objects")
    root = open_hdf5(weights_raw, reader, limit_bytes)
    weights: dict[str, list[np.ndarray]] = {}
    nested: list[str] = []
    stored = set(root.group("layers").keys()) if "layers" in root else set()
    for path, name in _state_paths(config):
        if path not in stored:
            continue
        stored.discard(path)
        group = root.group("layers").group(path)
        # Keras 3 records the layer's name beside its variables; a mismatch means the
        # order below is not the order Keras saved in, and the weights would be misplaced.
        if "vars" in group:
            saved_name = group.group("vars").attr_text("name")
            if saved_name is not None and saved_name != name:
                raise ConvertError(f".keras archive: layers/{path} holds the weights of {saved_name!r}", layer=name)
        if any(n != "vars" for n in group):
            nested.append(name)
            continue
        values = _vars(group)
        if values:
            weights[name] = values
    leftover = sorted(p for p in stored if _holds_state(root.group("layers").group(p)))
    if leftover:
        raise ConvertError(f".keras archive: weights for layers not in the config: {leftover[:5]}")
    if "vars" in root and list(root.group("vars").keys()):
        raise ConvertError(".keras archive: the model itself holds variables (a subclassed model?), not supported")
    return KerasFile(
        config=config,
        weights=weights,
        keras_version=str(metadata.get("keras_version", "3")),
        source=".keras",
        backend=root.reader,
        nested=nested,
    )


def _snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: ``DepthwiseConv2D`` -> ``depthwise_conv2d``.

    >>> [_snake_case(n) for n in ("Conv2D", "ReLU", "BatchNormalization", "GlobalAveragePooling2D")]
    ['conv2d', 're_lu', 'batch_normalization', 'global_average_pooling2d']
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _state_paths(config: Any) -> list[tuple[str, str]]:
    """(path under ``layers/``, layer name) for each layer, as Keras 3's saving_lib names them.

    Keras does not use layer names there (they are not reproducible) but the snake-cased
    class name, numbered in ``model.layers`` order: ``conv2d``, ``conv2d_1``... A
    Sequential model's ``layers`` leave its InputLayer out; a Functional model's keep it.

    >>> _state_paths({"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "InputLayer", "config": {"name": "in"}},
    ...     {"class_name": "Dense", "config": {"name": "a"}},
    ...     {"class_name": "Dense", "config": {"name": "b"}}]}})
    [('dense', 'a'), ('dense_1', 'b')]
    """
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ConvertError(".keras config.json: expected {'class_name': ..., 'config': {...}}")
    layers = config["config"].get("layers")
    if not isinstance(layers, list):
        raise ConvertError(".keras config.json: the model has no layers list")
    used: dict[str, int] = {}
    out: list[tuple[str, str]] = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
            raise ConvertError(f".keras config.json: malformed layer {index}")
        if config.get("class_name") == "Sequential" and index == 0 and layer["class_name"] == "InputLayer":
            continue
        name = (layer.get("config") or {}).get("name", layer.get("name"))
        if not isinstance(name, str):
            raise ConvertError(f".keras config.json: layer {index} has no name")
        base = _snake_case(layer["class_name"])
        if base in used:
            used[base] += 1
            out.append((f"{base}_{used[base]}", name))
        else:
            used[base] = 0
            out.append((base, name))
    return out


def _holds_state(group: Group) -> bool:
    """Whether a layer's group holds any variable, its own or a sub-layer's (datasets are not read)."""
    return any(group.is_dataset(n) or _holds_state(group.group(n)) for n in group)


def _vars(layer: Group) -> list[np.ndarray]:
    """A layer's variables in creation order: ``vars/0``, ``vars/1``... (numeric, not text order)."""
    if "vars" not in layer:
        return []
    group = layer.group("vars")
    names = list(group.keys())
    if not all(n.isdigit() for n in names) or sorted(int(n) for n in names) != list(range(len(names))):
        raise ConvertError(f"{group.path}: expected variables named 0..n-1, found {names[:10]}")
    return [group.array(str(i)) for i in range(len(names))]


# --------------------------------------------------------------------------- .h5


def _read_h5(data: bytes, reader: Reader | None, limit_bytes: int) -> KerasFile:
    root = open_hdf5(data, reader, limit_bytes)
    raw_config = root.attr_text("model_config")
    if raw_config is None:
        raise ConvertError(".h5 file: no model_config attribute (a weights-only file? save the whole model)")
    if len(raw_config) > MAX_CONFIG_BYTES:
        raise ConvertError(f".h5 file: model_config is over {MAX_CONFIG_BYTES} bytes")
    config = _json(raw_config.encode(), ".h5 model_config")
    if not isinstance(config, dict):
        raise ConvertError(".h5 model_config: expected a JSON object")
    if "model_weights" not in root:
        raise ConvertError(".h5 file: no model_weights group")
    group = root.group("model_weights")
    layer_names = group.attr_texts("layer_names")
    if layer_names is None:
        raise ConvertError(".h5 file: model_weights has no layer_names attribute")
    if "top_level_model_weights" in group and group.group("top_level_model_weights").attr_texts("weight_names"):
        raise ConvertError(".h5 file: the model itself holds variables (a subclassed model?), not supported")
    weights: dict[str, list[np.ndarray]] = {}
    for layer in layer_names:
        if layer not in group:
            raise ConvertError(f".h5 file: layer {layer!r} is listed but has no group")
        layer_group = group.group(layer)
        names = layer_group.attr_texts("weight_names") or []
        if names:
            weights[layer] = [layer_group.array(n) for n in names]
    return KerasFile(
        config=config,
        weights=weights,
        keras_version=root.attr_text("keras_version") or "",
        source=".h5",
        backend=root.reader,
    )
