"""Quantize TF.js models with numpy alone (no TensorFlow): uint8, uint16, float16, and back.

Reads a TF.js layers or graph model (``model.json`` + binary shards), decodes
every weight to float32 (dequantizing whatever it was stored as), encodes it
in the TF.js weight-quantization format, reshards, and writes a
``manifest.json`` with the sha256 of every file::

    python -m pyapp.quantize models/nsfw-mobilenet-v2/float32 --dtype uint8 --out /tmp/uint8
    python -m pyapp.quantize /tmp/uint8 --dtype float32 --out /tmp/back   # dequantize

Format (what TF.js's ``decodeWeights`` reads): uint8/uint16 are per-tensor
affine, ``value = q * scale + min`` with ``min``/``scale`` in the weight spec's
``quantization``; the range is nudged so that 0.0 is exact (as the TF.js
converter does). float16 stores IEEE half floats. Only float32 weights are
quantized; int32/bool weights are copied. The error bound per weight is
``scale / 2`` for the affine types and float16's rounding for float16.

Example::

    >>> import numpy as np
    >>> w = np.array([-1.0, 0.0, 0.5, 1.0], np.float32)
    >>> q, spec = quantize_array(w, "uint8")
    >>> bool(np.abs(dequantize_array(q, spec) - w).max() <= spec["scale"] / 2 + 1e-7)
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pyapp.artifacts import (
    DTYPE_BYTES,
    SHARD_BYTES,
    STORAGE_DTYPES,
    ModelJson,
    check_total,
    encode_model_json,
    join_shards,
    split_shards,
    split_weights,
    write_files,
)
from pyapp.errors import ModelLoadError
from pyapp.modelcheck import MAX_MANIFEST_BYTES, MAX_MODEL_JSON_BYTES, parse_json

Dtype = Literal["uint8", "uint16", "float16", "float32"]
DTYPES: tuple[str, ...] = STORAGE_DTYPES
_STORED: dict[str, Any] = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.uint8,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float16": np.float16,
}


class QuantizeError(ModelLoadError):
    """The input model is malformed or incomplete; the message names the file and field."""


# ----------------------------------------------------------------------------- arrays


def _affine_range(lo: float, hi: float, dtype: Dtype) -> tuple[float, float]:
    """(min, scale) over the weights' own range, as the TF.js converter chooses them.

    When the range covers 0.0 it is shifted (by under half a step) so that 0.0 is exact:
    zero padding and ReLU zeros stay zeros. A range that does not cover 0.0 is left
    alone; widening it to reach 0.0 would make every step coarser (4.7x for
    MobileNetV2's batch-norm gammas, all in 4.06..5.15).

    >>> _affine_range(0.5, 1.52, "uint8")
    (0.5, 0.004)
    >>> lo, scale = _affine_range(-1.0, 2.0, "uint8")
    >>> float(-lo / scale).is_integer()
    True
    """
    qmax = float(2 ** (8 * DTYPE_BYTES[dtype]) - 1)
    if hi == lo:
        return lo, 1.0
    scale = (hi - lo) / qmax
    if not lo <= 0.0 <= hi:
        return lo, scale
    zero_point = round(-lo / scale)
    return -zero_point * scale, scale


def quantize_array(values: np.ndarray, dtype: Dtype) -> tuple[np.ndarray, dict[str, Any]]:
    """float32 weights -> (stored array, ``quantization`` spec or {} for float32)."""
    w = np.asarray(values, dtype=np.float32)
    if dtype == "float32":
        return w, {}
    if dtype == "float16":
        return w.astype(np.float16), {"dtype": "float16"}
    if dtype not in ("uint8", "uint16"):
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {DTYPES}")
    lo, scale = _affine_range(float(w.min()) if w.size else 0.0, float(w.max()) if w.size else 0.0, dtype)
    qmax = 2 ** (8 * DTYPE_BYTES[dtype]) - 1
    q = np.clip(np.rint((w.astype(np.float64) - lo) / scale), 0, qmax).astype(_STORED[dtype])
    return q, {"dtype": dtype, "min": lo, "scale": scale}


def dequantize_array(stored: np.ndarray, quantization: dict[str, Any] | None) -> np.ndarray:
    """Stored weights -> float32, as TF.js decodes them."""
    if not quantization:
        return np.asarray(stored, dtype=np.float32)
    if quantization["dtype"] == "float16":
        return np.asarray(stored, dtype=np.float16).astype(np.float32)
    return (stored.astype(np.float32) * np.float32(quantization["scale"]) + np.float32(quantization["min"])).astype(
        np.float32
    )


def error_bound(quantization: dict[str, Any] | None, values: np.ndarray) -> float:
    """The largest |original - dequantized| the format allows for ``values``."""
    if not quantization:
        return 0.0
    if quantization["dtype"] == "float16":
        # Half of float16's spacing at the largest magnitude (relative 2**-11).
        peak = float(np.abs(values).max()) if values.size else 0.0
        return float(np.spacing(np.float16(peak))) / 2 + 6e-8
    # Half a quantization step, plus float32 rounding of ``q * scale + min`` (TF.js
    # dequantizes in float32 too), which matters for large values at uint16.
    peak = float(np.abs(values).max()) if values.size else 0.0
    eps = float(np.finfo(np.float32).eps)
    return float(quantization["scale"]) / 2 + 4 * eps * (peak + abs(float(quantization["min"])))


# ----------------------------------------------------------------------------- models


def _read_json(path: Path, max_bytes: int = MAX_MODEL_JSON_BYTES) -> Any:
    try:
        size = path.stat().st_size
        if size > max_bytes:  # checked before reading: a huge file is never loaded
            raise QuantizeError(f"{path}: too large ({size:,} bytes, at most {max_bytes:,} allowed)")
        return parse_json(path.read_bytes(), str(path), max_bytes)
    except FileNotFoundError:
        raise QuantizeError(f"{path}: not found") from None
    except QuantizeError:
        raise
    except ModelLoadError as exc:
        message = str(exc).replace(f"{path}: not JSON", f"{path}: malformed JSON", 1)
        raise QuantizeError(message) from None


def read_model(model_dir: Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], np.ndarray]]]:
    """model.json and every weight as (spec without quantization, float32-or-int array).

    model.json is checked (:mod:`pyapp.artifacts`) and every shard's size compared with what
    its weight specs declare before any shard is read; shard paths cannot leave ``model_dir``.
    """
    model_json_path = model_dir / "model.json"
    model = _read_json(model_json_path)
    if not isinstance(model, dict):
        raise QuantizeError(f"{model_json_path}: expected a JSON object")
    if "weightsManifest" not in model:
        raise QuantizeError(f"{model_json_path}: weightsManifest missing or not a list")
    try:
        mj = ModelJson.from_dict(model, str(model_json_path))
        shards = [model_dir / rel for rel in mj.weights.paths]
        for rel, shard in zip(mj.weights.paths, shards, strict=True):
            # check_path refused '..' and absolute paths; resolving also catches a symlink pointing out.
            if not shard.is_file() or model_dir.resolve() not in shard.resolve().parents:
                raise QuantizeError(f"{model_json_path}: shard {rel!r} is missing")
        # Sizes first: a shard larger than declared is never read.
        check_total(mj.weights, [shard.stat().st_size for shard in shards], str(model_json_path))
        data = join_shards(mj.weights, [shard.read_bytes() for shard in shards], str(model_json_path))
    except QuantizeError:
        raise
    except ModelLoadError as exc:
        raise QuantizeError(str(exc)) from None
    weights: list[tuple[dict[str, Any], np.ndarray]] = []
    for spec, chunk in split_weights(mj.weights.entries, data):
        stored = np.frombuffer(chunk, dtype=_STORED[spec.stored], count=spec.count).reshape(spec.shape)
        if spec.dtype == "float32":
            value = dequantize_array(stored, dict(spec.quantization) if spec.quantization else None)
        else:
            value = stored.astype(_STORED[spec.dtype]).copy()
        weights.append((dataclasses.replace(spec, quantization=None).to_dict(), value))
    return model, weights


def write_model(
    model: dict[str, Any],
    weights: Sequence[tuple[dict[str, Any], np.ndarray]],
    out_dir: Path,
    dtype: Dtype,
    shard_bytes: int = SHARD_BYTES,
    converted_by: str = "pyapp.quantize",
) -> dict[str, str]:
    """Encode ``weights`` as ``dtype``, write model.json + shards; return {file: sha256}.

    ``converted_by`` names the writer in model.json's ``convertedBy`` (with the dtype).
    """
    specs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for spec, value in weights:
        out_spec = dict(spec)
        if spec["dtype"] == "float32":
            stored, quant = quantize_array(value, dtype)
            if quant:
                out_spec["quantization"] = quant
        else:
            stored = value.astype(_STORED[spec["dtype"]])
        specs.append(out_spec)
        blobs.append(np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<")).tobytes())
    shards = split_shards(b"".join(blobs), shard_bytes)
    fields = {**model, "convertedBy": f"{converted_by} ({dtype})"}
    return write_files(out_dir, encode_model_json(fields, [(list(shards), specs)]), shards)


def convert(model_dir: Path, out_dir: Path, dtype: Dtype, shard_bytes: int = SHARD_BYTES) -> dict[str, Any]:
    """Read ``model_dir``, write it as ``dtype`` into ``out_dir`` with a manifest; return the manifest."""
    if dtype not in DTYPES:
        raise QuantizeError(f"unknown dtype {dtype!r}; expected one of {DTYPES}")
    if Path(out_dir).resolve() == Path(model_dir).resolve():
        raise QuantizeError("--out must differ from the input directory")
    model, weights = read_model(Path(model_dir))
    files = write_model(model, weights, Path(out_dir), dtype, shard_bytes)
    source_manifest = Path(model_dir) / "manifest.json"
    manifest: dict[str, Any] = (
        _read_json(source_manifest, MAX_MANIFEST_BYTES) if source_manifest.exists() else {"name": Path(model_dir).name}
    )
    fmt = model.get("format") or ("graph-model" if "signature" in model else "layers-model")
    manifest["variants"] = [
        {"name": dtype, "format": fmt, "weights_dtype": dtype, "model": "model.json", "files": files}
    ]
    (Path(out_dir) / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyapp.quantize", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="directory with model.json and its shards")
    parser.add_argument("--dtype", required=True, choices=DTYPES, help="float32 dequantizes")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--shard-bytes", type=int, default=SHARD_BYTES)
    args = parser.parse_args(argv)
    try:
        manifest = convert(args.model_dir, args.out, args.dtype, args.shard_bytes)
    except QuantizeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = sum((args.out / f).stat().st_size for f in manifest["variants"][0]["files"])
    print(f"wrote {args.out} ({args.dtype}, {size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
