"""TF.js model artifacts: ``model.json``, its weight manifest and the weight shards, read and written.

The one module that knows the format, pure Python (no ``js``, no numpy), used by every reader and
writer of model files: loading (:mod:`pyapp.model`), saving (:mod:`pyapp.saving`), quantizing
(:mod:`pyapp.quantize`), converting (:mod:`pyapp.convert`, :mod:`pyapp.keras_export`) and the build.
Where the bytes come from stays with the caller (:mod:`pyapp.fetch` for the network, the host's
disk); what they mean is here. A model's files are untrusted: :class:`ModelJson` checks
``model.json`` as :mod:`pyapp.modelcheck` says (paths inside the model's folder, sizes bounded) and
totals the bytes its weights need *before* any shard is fetched.

Example::

    >>> mj = ModelJson.parse(b'{"modelTopology": {}, "weightsManifest": [{"paths": ["w.bin"], '
    ...     b'"weights": [{"name": "k", "shape": [2, 3], "dtype": "float32"}]}]}', "model.json")
    >>> mj.weights.total, mj.weights.paths, mj.weights.entries[0].shape
    (24, ['w.bin'], (2, 3))
    >>> data = join_shards(mj.weights, [bytes(24)], "model.json")
    >>> [(spec.name, len(chunk)) for spec, chunk in split_weights(mj.weights.entries, data)]
    [('k', 24)]
    >>> {name: len(chunk) for name, chunk in split_shards(data, 16).items()}
    {'group1-shard1of2.bin': 16, 'group1-shard2of2.bin': 8}
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyapp.errors import ModelLoadError
from pyapp.modelcheck import (
    MAX_FILES,
    MAX_MODEL_JSON_BYTES,
    MAX_RANK,
    MAX_TENSOR_ELEMENTS,
    MAX_WEIGHT_BYTES,
    MAX_WEIGHTS,
    check_count,
    check_path,
    parse_json,
)

#: Bytes per stored element, by TF.js dtype (``quantization.dtype`` when quantized).
DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}
#: What a model variant's float weights may be stored as: pyapp.quantize writes each, manifests name them.
STORAGE_DTYPES = ("uint8", "uint16", "float16", "float32")
#: dtypes a weight may have; quantized storage types for those that can be quantized.
WEIGHT_DTYPES = ("float32", "int32", "bool")
QUANTIZED_DTYPES = ("uint8", "uint16", "float16")
#: The TF.js converter's default shard size.
SHARD_BYTES = 4 * 1024 * 1024
#: The shard files :func:`split_shards` names, as a glob (a rewrite removes the old ones first).
SHARD_GLOB = "group*-shard*of*.bin"


def _fail(where: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"{where}: {what}")


# ------------------------------------------------------------------------------------------ weight specs


@dataclass(frozen=True)
class WeightSpec:
    """One entry of a weight manifest: a tensor's name, shape and dtype, and how it is stored.

    >>> spec = WeightSpec("b", (10,), "float32", {"dtype": "uint8", "min": -1, "scale": 0.01})
    >>> spec.stored, spec.nbytes, WeightSpec("k", (2, 3), "float32").to_dict()
    ('uint8', 10, {'name': 'k', 'shape': [2, 3], 'dtype': 'float32'})
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    #: TF.js's ``quantization`` object (``dtype``, and ``min``/``scale`` for the affine types), or None.
    quantization: Mapping[str, Any] | None = None

    @property
    def stored(self) -> str:
        """The dtype of the bytes in the shard: the quantized one, else the weight's own."""
        return str(self.quantization["dtype"]) if self.quantization else self.dtype

    @property
    def count(self) -> int:
        """Elements in the tensor."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the weight occupies in its shards."""
        return self.count * DTYPE_BYTES[self.stored]

    def to_dict(self) -> dict[str, Any]:
        """The spec as model.json writes it."""
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.quantization:
            out["quantization"] = dict(self.quantization)
        return out

    @classmethod
    def from_dict(cls, spec: Any, where: str) -> WeightSpec:
        """A weight spec read from an untrusted model.json: name, shape and dtype checked.

        >>> WeightSpec.from_dict({"name": "b", "shape": [10], "dtype": "float32",
        ...                       "quantization": {"dtype": "uint8", "min": -1, "scale": 0.01}}, "w").nbytes
        10
        >>> WeightSpec.from_dict({"name": "b", "shape": [-1], "dtype": "float32"}, "w")
        Traceback (most recent call last):
        ...
        pyapp.errors.ModelLoadError: w ('b'): negative dimension -1
        """
        if not isinstance(spec, dict):
            raise _fail(where, f"a weight spec must be an object, got {spec!r:.60}")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(where, "a weight spec needs a name (a non-empty string)")
        where = f"{where} ({name!r:.80})"
        shape = spec.get("shape")
        if not isinstance(shape, list):
            raise _fail(where, f"shape must be a list of integers, got {shape!r:.40}")
        if len(shape) > MAX_RANK:
            raise _fail(where, f"rank {len(shape)} is more than the {MAX_RANK} allowed")
        count = 1
        for dim in shape:
            count *= _dim(dim, where)
            if count > MAX_TENSOR_ELEMENTS:
                raise _fail(
                    where, f"shape {shape} has more than the {MAX_TENSOR_ELEMENTS:,} elements a tensor may have"
                )
        dtype = spec.get("dtype")
        if not isinstance(dtype, str) or dtype not in WEIGHT_DTYPES:
            raise _fail(where, f"unsupported dtype {dtype!r:.40}; expected one of {WEIGHT_DTYPES}")
        quant = spec.get("quantization")
        if quant is not None:
            if not isinstance(quant, dict):
                raise _fail(where, f"quantization must be an object, got {quant!r:.40}")
            qdtype = quant.get("dtype")
            if not isinstance(qdtype, str) or qdtype not in QUANTIZED_DTYPES:
                raise _fail(where, f"unsupported quantization dtype {qdtype!r:.40}; expected one of {QUANTIZED_DTYPES}")
            if dtype not in ("float32", "int32"):
                raise _fail(where, f"quantization applies to float32 and int32 weights, not {dtype}")
            if qdtype in ("uint8", "uint16"):
                _finite(quant, "scale", where)
                _finite(quant, "min", where)
        return cls(name, tuple(shape), dtype, quant)


def _dim(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, f"a dimension must be an integer, got {value!r:.40}")
    if value < 0:
        raise _fail(where, f"negative dimension {value}")
    if value > MAX_TENSOR_ELEMENTS:
        raise _fail(where, f"dimension {value:,} is more than the {MAX_TENSOR_ELEMENTS:,} elements a tensor may have")
    return value


def _finite(quant: dict[str, Any], key: str, where: str) -> None:
    value = quant.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _fail(where, f"quantization.{key} must be a finite number, got {value!r:.40}")


# ------------------------------------------------------------------------------------------ weight manifests


@dataclass(frozen=True)
class ShardGroup:
    """One ``weightsManifest`` group: its shard paths (relative to model.json), the bytes its weights
    fill, their specs as read (what TF.js is given) and the same parsed.

    >>> ShardGroup(("w.bin",), 8).paths
    ('w.bin',)
    """

    paths: tuple[str, ...]
    nbytes: int
    specs: tuple[dict[str, Any], ...] = ()
    entries: tuple[WeightSpec, ...] = ()


@dataclass(frozen=True)
class WeightsPlan:
    """A checked ``weightsManifest``: groups in order, every weight spec, and the total bytes.

    >>> plan_weights([{"paths": ["a.bin", "b.bin"], "weights": []}], "model.json").paths
    ['a.bin', 'b.bin']
    """

    groups: tuple[ShardGroup, ...]
    specs: tuple[dict[str, Any], ...]
    total: int

    @property
    def paths(self) -> list[str]:
        """Every shard path, in the order their bytes are concatenated."""
        return [p for g in self.groups for p in g.paths]

    @property
    def entries(self) -> list[WeightSpec]:
        """Every weight spec, parsed, in the order their bytes are concatenated."""
        return [e for g in self.groups for e in g.entries]


def plan_weights(weights_manifest: Any, where: str) -> WeightsPlan:
    """Check a TF.js ``weightsManifest`` and total the bytes it declares; nothing is fetched.

    Every shard path passes :func:`~pyapp.modelcheck.check_path` and appears once; weight names are
    unique; the total is at most :data:`~pyapp.modelcheck.MAX_WEIGHT_BYTES`.

    >>> plan_weights([{"paths": ["a.bin"], "weights": [{"name": "k", "shape": [3, 3], "dtype": "float32",
    ...     "quantization": {"dtype": "uint8", "min": 0, "scale": 1}}]}], "model.json").total
    9
    """
    if not isinstance(weights_manifest, list):
        raise _fail(where, f"weightsManifest must be a list, got {type(weights_manifest).__name__}")
    check_count(weights_manifest, f"{where}: weightsManifest", MAX_FILES)
    groups: list[ShardGroup] = []
    specs: list[dict[str, Any]] = []
    entries: list[WeightSpec] = []
    seen_paths: set[str] = set()
    seen_names: set[str] = set()
    total = 0
    for g, group in enumerate(weights_manifest):
        at = f"{where}: weightsManifest[{g}]"
        if not isinstance(group, dict):
            raise _fail(at, "expected an object with 'paths' and 'weights'")
        paths, weights = group.get("paths", []), group.get("weights")
        if not isinstance(paths, list):
            raise _fail(at, f"paths must be a list, got {type(paths).__name__}")
        if not isinstance(weights, list):
            raise _fail(at, f"weights must be a list, got {type(weights).__name__}")
        check_count(paths, f"{at}.paths", MAX_FILES)
        for i, path in enumerate(paths):
            check_path(path, f"{at}.paths[{i}]")
            if path in seen_paths:
                raise _fail(f"{at}.paths[{i}]", f"shard {path!r} is listed twice")
            seen_paths.add(path)
        nbytes = 0
        first = len(specs)
        for i, spec in enumerate(weights):
            if len(specs) >= MAX_WEIGHTS:
                raise _fail(where, f"more than {MAX_WEIGHTS:,} weights")
            entry = WeightSpec.from_dict(spec, f"{at}.weights[{i}]")
            nbytes += entry.nbytes
            if entry.name in seen_names:
                raise _fail(f"{at}.weights[{i}]", f"duplicate weight name {entry.name!r:.80}")
            seen_names.add(entry.name)
            specs.append(spec)
            entries.append(entry)
            if total + nbytes > MAX_WEIGHT_BYTES:
                raise _fail(where, f"the weights need more than {MAX_WEIGHT_BYTES:,} bytes: too large to load")
        if nbytes and not paths:
            raise _fail(at, f"its weights need {nbytes:,} bytes but it names no shard")
        total += nbytes
        groups.append(ShardGroup(tuple(paths), nbytes, tuple(specs[first:]), tuple(entries[first:])))
    return WeightsPlan(tuple(groups), tuple(specs), total)


# ------------------------------------------------------------------------------------------ model.json


@dataclass(frozen=True)
class ModelJson:
    """A checked ``model.json``: the object as read (``modelTopology``, ``format`` and the rest) and its
    weights planned.

    >>> mj = ModelJson.from_dict({"format": "layers-model", "modelTopology": {"a": 1}}, "m.json")
    >>> mj.topology, mj.weights.total, mj.artifacts()
    ({'a': 1}, 0, {'format': 'layers-model', 'modelTopology': {'a': 1}, 'weightSpecs': []})
    """

    spec: dict[str, Any]
    weights: WeightsPlan

    @property
    def topology(self) -> dict[str, Any]:
        """``modelTopology``: the Keras config of a layers model, the graph of a graph model."""
        topology: dict[str, Any] = self.spec["modelTopology"]
        return topology

    def artifacts(self) -> dict[str, Any]:
        """TF.js's ``ModelArtifacts`` without ``weightData``: every field, the weight specs flattened."""
        artifacts = {k: v for k, v in self.spec.items() if k != "weightsManifest"}
        artifacts["weightSpecs"] = list(self.weights.specs)
        return artifacts

    @classmethod
    def from_dict(cls, spec: Any, where: str) -> ModelJson:
        """Check a decoded ``model.json`` (an object with an object ``modelTopology``) and plan its weights."""
        if not isinstance(spec, dict):
            raise _fail(where, f"expected a JSON object, got {type(spec).__name__}")
        if "modelTopology" not in spec:
            raise _fail(where, "no modelTopology (not a TF.js model.json)")
        if not isinstance(spec["modelTopology"], dict):
            raise _fail(where, f"modelTopology must be an object, got {type(spec['modelTopology']).__name__}")
        return cls(spec, plan_weights(spec.get("weightsManifest", []), where))

    @classmethod
    def parse(cls, data: bytes | str, where: str, what: str | None = None) -> ModelJson:
        """Decode (at most :data:`~pyapp.modelcheck.MAX_MODEL_JSON_BYTES`) and check a ``model.json``;
        ``what`` names it in JSON errors (default ``where``).

        >>> ModelJson.parse(b"{", "m.json")
        Traceback (most recent call last):
        ...
        pyapp.errors.ModelLoadError: m.json: not JSON (Expecting property name enclosed in double quotes: \
line 1 column 2 (char 1))
        """
        return cls.from_dict(parse_json(data, what or where, MAX_MODEL_JSON_BYTES), where)


def encode_model_json(fields: Mapping[str, Any], groups: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> bytes:
    """model.json's bytes: ``fields`` (``modelTopology``, ``format``...; any ``weightsManifest`` or
    ``weightSpecs`` left out) and a ``weightsManifest`` of ``groups``, each (shard paths, weight specs).

    >>> encode_model_json({"modelTopology": {}, "weightSpecs": []}, [(["w.bin"], [])])
    b'{"modelTopology":{},"weightsManifest":[{"paths":["w.bin"],"weights":[]}]}'
    """
    out = {k: v for k, v in fields.items() if k not in ("weightsManifest", "weightSpecs")}
    out["weightsManifest"] = [{"paths": list(paths), "weights": list(weights)} for paths, weights in groups]
    return json.dumps(out, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------------------ shards


def check_total(plan: WeightsPlan, got: Sequence[int], where: str) -> None:
    """The shards' byte counts (per path, in plan order) add up to what each group's weights need.

    >>> check_total(plan_weights([{"paths": ["w.bin"], "weights": [
    ...     {"name": "b", "shape": [2], "dtype": "float32"}]}], "m"), [7], "m")
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: m: weightsManifest[0]: the shards hold 7 bytes but the weight specs need 8 \
(a truncated shard or the wrong one)
    """
    sizes = iter(got)
    for g, group in enumerate(plan.groups):
        held = sum(next(sizes) for _ in group.paths)
        if held != group.nbytes:
            raise _fail(
                where,
                f"weightsManifest[{g}]: the shards hold {held:,} bytes but the weight specs need {group.nbytes:,}"
                " (a truncated shard or the wrong one)",
            )


def join_shards(plan: WeightsPlan, shards: Sequence[bytes], where: str) -> bytes:
    """The weight bytes: ``shards`` (one per path of ``plan``, in its order) joined, once their sizes are
    what the weight specs need (:func:`check_total`).

    >>> plan = plan_weights([{"paths": ["a", "b"], "weights": [{"name": "w", "shape": [2], "dtype": "int32"}]}], "m")
    >>> join_shards(plan, [b"1234", b"5678"], "m")
    b'12345678'
    """
    check_total(plan, [len(b) for b in shards], where)
    return b"".join(shards)


def split_weights(entries: Sequence[WeightSpec], data: bytes) -> Iterator[tuple[WeightSpec, memoryview]]:
    """Each weight's stored bytes (``entries`` in order, as the shards hold them), without copying.

    >>> [(s.name, bytes(b)) for s, b in split_weights([WeightSpec("a", (1,), "bool"), WeightSpec("b", (2,), "bool")],
    ...                                                 b"xyz")]
    [('a', b'x'), ('b', b'yz')]
    """
    view = memoryview(data)
    offset = 0
    for entry in entries:
        yield entry, view[offset : offset + entry.nbytes]
        offset += entry.nbytes


def split_shards(data: bytes, shard_bytes: int = SHARD_BYTES) -> dict[str, bytes]:
    """``data`` cut into TF.js's shard files of at most ``shard_bytes`` each, by name (one, maybe empty, at least).

    >>> split_shards(b"abcde", 2)
    {'group1-shard1of3.bin': b'ab', 'group1-shard2of3.bin': b'cd', 'group1-shard3of3.bin': b'e'}
    """
    n = max(1, -(-len(data) // shard_bytes))
    return {f"group1-shard{i + 1}of{n}.bin": data[i * shard_bytes : (i + 1) * shard_bytes] for i in range(n)}


def write_files(out_dir: Path, model_json: bytes, shards: Mapping[str, bytes]) -> dict[str, str]:
    """Write a model's shards and ``model.json`` into ``out_dir`` (created; shards of an earlier write
    removed) and return each file's sha256, by name.

    >>> import tempfile
    >>> sorted(write_files(Path(tempfile.mkdtemp()) / "m", b"{}", {"group1-shard1of1.bin": b""}))
    ['group1-shard1of1.bin', 'model.json']
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(SHARD_GLOB):
        old.unlink()
    files: dict[str, str] = {}
    for name, data in shards.items():
        (out_dir / name).write_bytes(data)
        files[name] = hashlib.sha256(data).hexdigest()
    (out_dir / "model.json").write_bytes(model_json)
    files["model.json"] = hashlib.sha256(model_json).hexdigest()
    return files
