"""Checks of untrusted model files, before anything is fetched or allocated for them.

Pure Python (no ``js``), shared by every parser of ``manifest.json``, ``model.json`` and
its ``weightsManifest`` (:mod:`pyapp.manifest`, :mod:`pyapp.model`, :mod:`pyapp.saving`,
:mod:`pyapp.quantize`). A model's files come from wherever its URL points, so they are
treated as hostile: every path must stay inside the model's directory, every size is
bounded, and the bytes a model needs are totalled from its weight specs *before* any
shard is fetched, so that no download can be larger than what was declared.

Each failure is a :class:`~pyapp.errors.ModelLoadError` whose message names the field
and the problem.

Example::

    >>> check_path("group1-shard1of1.bin", "paths[0]")
    'group1-shard1of1.bin'
    >>> check_path("%2e%2e/w.bin", "paths[0]")
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: paths[0]: '%2e%2e/w.bin': percent-encoding is not allowed (it can hide '../' or '/')
    >>> plan = plan_weights([{"paths": ["w.bin"], "weights": [
    ...     {"name": "k", "shape": [2, 3], "dtype": "float32"}]}], "model.json")
    >>> plan.total, plan.groups[0].paths
    (24, ('w.bin',))
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyapp.errors import ModelLoadError

#: Largest ``manifest.json`` read (real ones are about 2 kB).
MAX_MANIFEST_BYTES = 1 << 20
#: Largest ``model.json`` read (MobileNetV2's is 135 kB; big Keras topologies a few MB).
MAX_MODEL_JSON_BYTES = 32 << 20
#: Deepest JSON nesting accepted (real model.json files nest about 11 deep). Checked before
#: parsing: Python's json recurses, and in Pyodide a deep enough recursion can exhaust the
#: WebAssembly stack rather than raise RecursionError.
MAX_JSON_DEPTH = 64
#: Largest image side ``input.size`` may ask for (each image is size**2 * channels floats).
MAX_INPUT_SIZE = 4096
#: Most weight bytes one model may declare: what a browser tab can hold twice (bytes + tensors).
MAX_WEIGHT_BYTES = 1 << 30
#: Most elements in one weight tensor (TF.js indexes with int32; 2**28 float32 is 1 GiB).
MAX_TENSOR_ELEMENTS = 1 << 28
#: Highest rank of a weight (conv3d kernels are rank 5).
MAX_RANK = 8
MAX_PATH_LENGTH = 255
MAX_FILES = 1000
MAX_WEIGHTS = 100_000
MAX_NAME_LENGTH = 256

#: Bytes per stored element, by TF.js dtype (``quantization.dtype`` when quantized).
DTYPE_BYTES = {"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}
#: What a model variant's float weights may be stored as: pyapp.quantize writes each, manifests name them.
STORAGE_DTYPES = ("uint8", "uint16", "float16", "float32")
#: dtypes a weight may have; quantized storage types for those that can be quantized.
WEIGHT_DTYPES = ("float32", "int32", "bool")
QUANTIZED_DTYPES = ("uint8", "uint16", "float16")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
#: A JSON string (its closing quote optional, and possessive: an unterminated string is consumed once,
#: so the scan stays linear on hostile text such as '"\\"\\"\\...') or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]')


def _fail(where: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"{where}: {what}")


def check_path(path: Any, where: str) -> str:
    """``path`` if it is a plain relative file path inside the model's directory, else why not.

    Allowed: segments of letters, digits, ``.``, ``_`` and ``-`` joined by ``/``, none of
    them ``.`` or ``..``. Refused with the reason: URLs with a scheme (another origin,
    ``data:``, ``blob:``, ``javascript:``), ``//host`` and absolute paths,
    percent-encoding (``%2e%2e%2f`` is ``../`` to a server), backslashes, queries,
    fragments, control characters and anything else.

    >>> check_path("float16/group1-shard1of2.bin", "files")
    'float16/group1-shard1of2.bin'
    >>> check_path("//elsewhere/w.bin", "files")
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: files: '//elsewhere/w.bin': a protocol-relative URL (another host) is not allowed
    """
    if not isinstance(path, str):
        raise _fail(where, f"expected a file path (a string), got {type(path).__name__}")
    shown = f"{path!r:.80}"
    why = _path_problem(path)
    if why:
        raise _fail(where, f"{shown}: {why}")
    return path


def _path_problem(path: str) -> str | None:
    if not path:
        return "an empty path"
    if len(path) > MAX_PATH_LENGTH:
        return f"a path longer than {MAX_PATH_LENGTH} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "a control character is not allowed"
    if _SCHEME.match(path):
        return "a URL with a scheme (another origin, a drive, data:, blob:, javascript:) is not allowed"
    if path.startswith("//"):
        return "a protocol-relative URL (another host) is not allowed"
    if path.startswith("/"):
        return "an absolute path is not allowed (paths are relative to the model's directory)"
    if "\\" in path:
        return "a backslash is not allowed (browsers read it as '/')"
    if "%" in path:
        return "percent-encoding is not allowed (it can hide '../' or '/')"
    if "?" in path:
        return "a query ('?') is not allowed"
    if "#" in path:
        return "a fragment ('#') is not allowed"
    for segment in path.split("/"):
        if not segment:
            return "an empty segment ('//') is not allowed"
        if segment in (".", ".."):
            return f"a {segment!r} segment leaves or hides the model's directory"
        if not _SEGMENT.match(segment):
            bad = next(c for c in segment if not _SEGMENT.match(c))
            return f"the character {bad!r} is not allowed (letters, digits, '.', '_', '-' and '/')"
    return None


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def parse_json(data: bytes | str, what: str, max_bytes: int) -> Any:
    """Decode untrusted JSON: at most ``max_bytes``, nested at most :data:`MAX_JSON_DEPTH` deep,
    no ``NaN``/``Infinity`` (not JSON, though Python's parser takes them).

    >>> parse_json(b'{"a": [1, 2]}', "model.json", 100)
    {'a': [1, 2]}
    >>> parse_json(b"[" * 100 + b"]" * 100, "model.json", 1000)
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: model.json: JSON nested deeper than 64 levels
    """
    if len(data) > max_bytes:
        raise _fail(what, f"too large: {len(data):,} bytes, at most {max_bytes:,} allowed")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise _fail(what, f"not JSON (not UTF-8: {exc})") from None
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _fail(what, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif token in "]}":
            depth -= 1
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _fail(what, f"not JSON ({exc})") from None


def check_count(value: Any, where: str, limit: int) -> None:
    """``value`` is a list or dict of at most ``limit`` entries."""
    if len(value) > limit:
        raise _fail(where, f"{len(value):,} entries, at most {limit:,} allowed")


@dataclass(frozen=True)
class ShardGroup:
    """One ``weightsManifest`` group: its shard paths (relative to model.json), the bytes its weights
    fill, and their specs."""

    paths: tuple[str, ...]
    nbytes: int
    specs: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class WeightsPlan:
    """A checked ``weightsManifest``: groups in order, every weight spec, and the total bytes."""

    groups: tuple[ShardGroup, ...]
    specs: tuple[dict[str, Any], ...]
    total: int

    @property
    def paths(self) -> list[str]:
        """Every shard path, in the order their bytes are concatenated."""
        return [p for g in self.groups for p in g.paths]


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


def weight_spec_bytes(spec: Any, where: str) -> int:
    """Bytes one weight spec occupies in its shards, after checking its name, shape and dtype.

    >>> weight_spec_bytes({"name": "b", "shape": [10], "dtype": "float32",
    ...                    "quantization": {"dtype": "uint8", "min": -1, "scale": 0.01}}, "w")
    10
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
            raise _fail(where, f"shape {shape} has more than the {MAX_TENSOR_ELEMENTS:,} elements a tensor may have")
    dtype = spec.get("dtype")
    if not isinstance(dtype, str) or dtype not in WEIGHT_DTYPES:
        raise _fail(where, f"unsupported dtype {dtype!r:.40}; expected one of {WEIGHT_DTYPES}")
    stored = dtype
    quant = spec.get("quantization")
    if quant is not None:
        if not isinstance(quant, dict):
            raise _fail(where, f"quantization must be an object, got {quant!r:.40}")
        qdtype = quant.get("dtype")
        if not isinstance(qdtype, str) or qdtype not in QUANTIZED_DTYPES:
            raise _fail(where, f"unsupported quantization dtype {qdtype!r:.40}; expected one of {QUANTIZED_DTYPES}")
        stored = qdtype
        if dtype not in ("float32", "int32"):
            raise _fail(where, f"quantization applies to float32 and int32 weights, not {dtype}")
        if stored in ("uint8", "uint16"):
            _finite(quant, "scale", where)
            _finite(quant, "min", where)
    return count * DTYPE_BYTES[stored]


def plan_weights(weights_manifest: Any, where: str) -> WeightsPlan:
    """Check a TF.js ``weightsManifest`` and total the bytes it declares; nothing is fetched.

    Every shard path passes :func:`check_path` and appears once; weight names are unique;
    the total is at most :data:`MAX_WEIGHT_BYTES`.
    """
    if not isinstance(weights_manifest, list):
        raise _fail(where, f"weightsManifest must be a list, got {type(weights_manifest).__name__}")
    check_count(weights_manifest, f"{where}: weightsManifest", MAX_FILES)
    groups: list[ShardGroup] = []
    specs: list[dict[str, Any]] = []
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
            nbytes += weight_spec_bytes(spec, f"{at}.weights[{i}]")
            if spec["name"] in seen_names:
                raise _fail(f"{at}.weights[{i}]", f"duplicate weight name {spec['name']!r:.80}")
            seen_names.add(spec["name"])
            specs.append(spec)
            if total + nbytes > MAX_WEIGHT_BYTES:
                raise _fail(where, f"the weights need more than {MAX_WEIGHT_BYTES:,} bytes: too large to load")
        if nbytes and not paths:
            raise _fail(at, f"its weights need {nbytes:,} bytes but it names no shard")
        total += nbytes
        groups.append(ShardGroup(tuple(paths), nbytes, tuple(specs[first:])))
    return WeightsPlan(tuple(groups), tuple(specs), total)


def check_model_json(spec: Any, where: str) -> WeightsPlan:
    """Check a decoded ``model.json`` (an object with an object ``modelTopology``) and plan its weights."""
    if not isinstance(spec, dict):
        raise _fail(where, f"expected a JSON object, got {type(spec).__name__}")
    if "modelTopology" not in spec:
        raise _fail(where, "no modelTopology (not a TF.js model.json)")
    if not isinstance(spec["modelTopology"], dict):
        raise _fail(where, f"modelTopology must be an object, got {type(spec['modelTopology']).__name__}")
    return plan_weights(spec.get("weightsManifest", []), where)


def check_total(plan: WeightsPlan, got: Sequence[int], where: str) -> None:
    """The shards' byte counts (per path, in plan order) add up to what each group's weights need."""
    sizes = iter(got)
    for g, group in enumerate(plan.groups):
        held = sum(next(sizes) for _ in group.paths)
        if held != group.nbytes:
            raise _fail(
                where,
                f"weightsManifest[{g}]: the shards hold {held:,} bytes but the weight specs need {group.nbytes:,}"
                " (truncated or wrong shard)",
            )
