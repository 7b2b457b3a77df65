"""The NSFWJS MobileNetV2 models as standard TF.js models, in uint8, float16 and float32 (pyapp.quantize),
each with a manifest of every file's sha256."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pyapp import quantize
from pyapp.artifacts import ModelJson, check_total, encode_model_json, write_files
from pyapp.errors import ModelLoadError
from pyapp_build.compress import sha256_file
from pyapp_build.npm import node_module
from pyapp_build.pins import GRAPH_MODEL_NAME, GRAPH_MODEL_SOURCE, MODEL_LABELS, MODEL_NAME, MODEL_SOURCE
from pyapp_build.steps import BuildError

_NODE_EXTRACT = r"""
const path = require("path");
const dir = process.argv[1];
const model = require(path.join(dir, "model.min.js"));
const files = require("fs").readdirSync(dir).filter(f => /^group\d+-shard\d+of\d+\.min\.js$/.test(f)).sort();
const shards = {};
for (const f of files) shards[f.replace(/\.min\.js$/, "")] = require(path.join(dir, f));
process.stdout.write(JSON.stringify({model, shards}));
"""


def unpack_nsfwjs(source: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """model.json content and shard bytes of one of NSFWJS's base64 JS model modules, checked."""
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is required to unpack the NSFWJS model modules")
    proc = subprocess.run([node, "-e", _NODE_EXTRACT, str(node_module(source))], capture_output=True)
    if proc.returncode != 0:
        raise BuildError(f"unpacking {source} failed:\n{proc.stderr.decode()}")
    bundle = json.loads(proc.stdout)
    model: dict[str, Any] = bundle["model"]
    shards = {k: base64.b64decode(v, validate=True) for k, v in bundle["shards"].items()}
    try:
        plan = ModelJson.from_dict(model, source).weights
        if sorted(plan.paths) != sorted(shards):
            raise BuildError(f"{source} lists shards {plan.paths} but the package has {sorted(shards)}")
        check_total(plan, [len(shards[p]) for p in plan.paths], source)
    except ModelLoadError as exc:
        raise BuildError(str(exc)) from None
    return model, shards


def _write_tfjs_model(model: dict[str, Any], shards: dict[str, bytes], fmt: str, dest: Path) -> None:
    # The npm package ships bare JSON objects; tf.load*Model wants the standard
    # fields too, and shard paths that point at real files.
    standard = {
        "format": fmt,
        "generatedBy": model.get("generatedBy") or model["modelTopology"].get("keras_version", "keras"),
        "convertedBy": "pyapp asset build from nsfwjs@4.4.0",
        "modelTopology": model["modelTopology"],
    }
    if "userDefinedMetadata" in model:
        standard["userDefinedMetadata"] = model["userDefinedMetadata"]
    groups = [([p + ".bin" for p in g["paths"]], g["weights"]) for g in model["weightsManifest"]]
    dest.mkdir(parents=True)
    write_files(
        dest, encode_model_json(standard, groups), {f"{name}.bin": data for name, data in sorted(shards.items())}
    )


def _manifest(name: str, description: str, fmt: str, dest: Path, dtypes: tuple[str, ...]) -> None:
    variants = []
    for dtype in dtypes:
        files = {
            f"{dtype}/{p.name}": sha256_file(p) for p in sorted((dest / dtype).iterdir()) if p.name != "manifest.json"
        }
        (dest / dtype / "manifest.json").unlink(missing_ok=True)
        variants.append(
            {"name": dtype, "format": fmt, "weights_dtype": dtype, "model": f"{dtype}/model.json", "files": files}
        )
    manifest = {
        "name": name,
        "description": description,
        "task": "image-classification",
        "labels": list(MODEL_LABELS),
        "input": {"size": 224, "channels": 3, "layout": "NHWC", "dtype": "float32"},
        "preprocess": {"resize": "bilinear", "align_corners": True, "normalize": "unit"},
        "variants": variants,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def build_model(out: Path) -> None:
    model, shards = unpack_nsfwjs(MODEL_SOURCE)
    dest = out / MODEL_NAME
    # NSFWJS ships uint8-quantized weights. The float32 variant is their exact
    # dequantization, and pyapp.quantize makes the other two from it: its uint8 is
    # byte for byte what the TF.js converter wrote (tests/test_quantize.py).
    # Smallest first: the loader falls back along this order when a variant is
    # missing or corrupt.
    shipped = out / ".nsfwjs-uint8"
    _write_tfjs_model(model, shards, "layers-model", shipped)
    quantize.convert(shipped, dest / "float32", "float32")
    shutil.rmtree(shipped)
    quantize.convert(dest / "float32", dest / "uint8", "uint8")
    quantize.convert(dest / "float32", dest / "float16", "float16")
    _manifest(
        MODEL_NAME,
        "NSFWJS MobileNetV2 image classifier (nsfwjs@4.4.0)",
        "layers-model",
        dest,
        ("uint8", "float16", "float32"),
    )
    # NSFWJS's MobileNetV2Mid is a TF.js *graph* model: the same task, the other loader.
    model, shards = unpack_nsfwjs(GRAPH_MODEL_SOURCE)
    dest = out / GRAPH_MODEL_NAME
    _write_tfjs_model(model, shards, "graph-model", dest / "uint8")
    _manifest(GRAPH_MODEL_NAME, "NSFWJS MobileNetV2Mid (graph model, nsfwjs@4.4.0)", "graph-model", dest, ("uint8",))
