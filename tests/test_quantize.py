"""pyapp.quantize: numpy-only TF.js weight quantization round-trips within the format's error bound."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MODEL_BACKENDS
from harness import run_in_pyodide

import pyapp_build
from pyapp import quantize
from pyapp.quantize import QuantizeError, dequantize_array, error_bound, quantize_array


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16"])
@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).normal(0, 0.1, 1000),
        np.random.default_rng(1).uniform(2, 5, 300),  # all positive: 0.0 is outside the range
        np.random.default_rng(2).uniform(-7, -1, 300),
        np.zeros(10),
        np.array([3.5]),
    ],
)
def test_array_round_trip_within_bound(dtype: Any, values: np.ndarray) -> None:
    w = values.astype(np.float32)
    stored, spec = quantize_array(w, dtype)
    back = dequantize_array(stored, spec)
    assert back.dtype == np.float32
    assert np.abs(back - w).max() <= error_bound(spec, w)
    if dtype != "float16":
        assert stored.dtype == np.dtype(dtype)
        # 0.0 must come back exactly (padding and ReLU zeros stay zeros).
        zero_q, zspec = quantize_array(np.array([0.0, w.min(), w.max()], np.float32), dtype)
        assert dequantize_array(zero_q, zspec)[0] == 0.0


def test_affine_range_is_the_tfjs_converters() -> None:
    """A range around 0.0 is nudged so 0.0 is exact; one that misses 0.0 is the values' own, not widened."""
    w = np.array([2.0, 2.5, 4.55], np.float32)
    _, spec = quantize_array(w, "uint8")
    assert spec["min"] == 2.0
    assert spec["scale"] == pytest.approx(2.55 / 255)
    _, spec = quantize_array(-w, "uint16")
    assert spec["min"] == pytest.approx(-4.55)
    assert spec["scale"] == pytest.approx(2.55 / 65535)
    q, spec = quantize_array(np.array([-1.0, 0.0, 2.0], np.float32), "uint8")
    assert dequantize_array(q, spec)[1] == 0.0
    assert spec["scale"] == pytest.approx(3 / 255)


def test_uint8_variant_is_byte_identical_to_the_tfjs_converters(built: None) -> None:
    """The shipped uint8 variant is pyapp.quantize's output from float32, and it is exactly what the TF.js
    converter wrote into nsfwjs: the same codes, and min/scale equal to float32 precision."""
    model, shards = pyapp_build.model.unpack_nsfwjs(pyapp_build.MODEL_SOURCE)
    theirs = b"".join(shards[p] for g in model["weightsManifest"] for p in g["paths"])
    ours_dir = pyapp_build.MODELS / "nsfw-mobilenet-v2" / "uint8"
    ours_model = json.loads((ours_dir / "model.json").read_text())
    assert ours_model["convertedBy"] == "pyapp.quantize (uint8)"
    ours = b"".join((ours_dir / p).read_bytes() for g in ours_model["weightsManifest"] for p in g["paths"])
    assert ours == theirs
    their_specs = [w for g in model["weightsManifest"] for w in g["weights"]]
    our_specs = [w for g in ours_model["weightsManifest"] for w in g["weights"]]
    assert [w["name"] for w in our_specs] == [w["name"] for w in their_specs]
    for a, b in zip(our_specs, their_specs, strict=True):
        qa, qb = a["quantization"], b["quantization"]
        assert qa["dtype"] == qb["dtype"] == "uint8"
        assert qa["scale"] == pytest.approx(qb["scale"], rel=1e-6), a["name"]
        assert qa["min"] == pytest.approx(qb["min"], rel=1e-6, abs=1e-6), a["name"]


def test_model_round_trip_and_reshard(tmp_path: Path, built: None) -> None:
    """float32 -> uint8/uint16/float16 -> float32 stays within each weight's bound; shards split at the limit."""
    f32 = pyapp_build.MODELS / "nsfw-mobilenet-v2" / "float32"
    _, original = quantize.read_model(f32)
    for dtype in ("uint8", "uint16", "float16"):
        out = tmp_path / dtype
        manifest = quantize.convert(f32, out, dtype, shard_bytes=1_000_000)
        files = manifest["variants"][0]["files"]
        assert all(size <= 1_000_000 for size in ((out / f).stat().st_size for f in files if f.endswith(".bin")))
        model = json.loads((out / "model.json").read_text())
        specs = {s["name"]: s for g in model["weightsManifest"] for s in g["weights"]}
        back_dir = tmp_path / f"{dtype}-back"
        quantize.convert(out, back_dir, "float32")
        _, back = quantize.read_model(back_dir)
        for (spec, w), (spec2, w2) in zip(original, back, strict=True):
            assert spec["name"] == spec2["name"]
            assert w.shape == w2.shape
            bound = error_bound(specs[spec["name"]].get("quantization"), w)
            assert np.abs(w - w2).max() <= bound, spec["name"]


def test_graph_model_round_trip(tmp_path: Path, built: None) -> None:
    """Graph models (NSFWJS MobileNetV2Mid) quantize and dequantize the same way; the format is kept."""
    src = pyapp_build.MODELS / "nsfw-mobilenet-v2-mid" / "uint8"
    manifest = quantize.convert(src, tmp_path / "f32", "float32")
    assert manifest["variants"][0]["format"] == "graph-model"
    quantize.convert(tmp_path / "f32", tmp_path / "u16", "uint16")
    _, a = quantize.read_model(tmp_path / "f32")
    _, b = quantize.read_model(tmp_path / "u16")
    model = json.loads((tmp_path / "u16" / "model.json").read_text())
    assert model["format"] == "graph-model"
    specs = {s["name"]: s for g in model["weightsManifest"] for s in g["weights"]}
    for (spec, w), (_, w2) in zip(a, b, strict=True):
        assert np.abs(w - w2).max() <= error_bound(specs[spec["name"]].get("quantization"), w)


def test_cli_and_clear_errors(tmp_path: Path, built: None) -> None:
    src = tmp_path / "src"
    shutil.copytree(pyapp_build.MODELS / "nsfw-mobilenet-v2" / "uint8", src)
    ok = subprocess.run(
        [sys.executable, "-m", "pyapp.quantize", str(src), "--dtype", "float16", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=pyapp_build.ROOT,
    )
    assert ok.returncode == 0, ok.stderr
    assert "float16" in ok.stdout
    (src / "group1-shard1of1.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(QuantizeError, match="truncated shard"):
        quantize.read_model(src)
    (src / "group1-shard1of1.bin").unlink()
    with pytest.raises(QuantizeError, match=r"shard 'group1-shard1of1\.bin' is missing"):
        quantize.read_model(src)
    (src / "model.json").write_text("{not json")
    with pytest.raises(QuantizeError, match="malformed JSON"):
        quantize.read_model(src)
    (src / "model.json").write_text('{"weightsManifest": []}')
    with pytest.raises(QuantizeError, match="no modelTopology"):
        quantize.read_model(src)
    bad = subprocess.run(
        [sys.executable, "-m", "pyapp.quantize", str(src), "--dtype", "uint8", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        cwd=pyapp_build.ROOT,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ")


@pytest.mark.parametrize("backend", MODEL_BACKENDS, indirect=True)
@run_in_pyodide
async def test_every_variant_loads_and_agrees_with_float32(pyodide: Any, backend: str) -> None:
    """uint8, float16 and float32 variants load in the browser and give float32's top-1 on real photos (one on
    webgl, where a prediction takes ~1 s on SwiftShader here: the variants' numbers are the backend's business
    only in how it runs the same float32 graph)."""
    import numpy as np
    import testutil

    from pyapp.classifier import ImageClassifier
    from pyapp.model import Model

    await testutil.use_backend(backend)
    names = ("chelsea.png", "rocket.jpg", "coffee.png") if backend == "wasm" else ("rocket.jpg",)
    photos = [await testutil.fetch(f"/vendor/samples/{n}") for n in names]
    outputs = {}
    for variant in ("float32", "float16", "uint8"):
        async with await Model.load(testutil.MANIFEST, variants=[variant], warmup=False) as model:
            assert model.load_info.variant == variant
            clf = ImageClassifier(model)
            outputs[variant] = np.concatenate([await model.predict(clf.prepare(p)) for p in photos])
    for variant in ("float16", "uint8"):
        assert (outputs[variant].argmax(1) == outputs["float32"].argmax(1)).all(), variant
    # uint8 holds NSFWJS's own codes (byte-identical) and float32 their exact dequantization: same numbers.
    assert float(np.abs(outputs["uint8"] - outputs["float32"]).max()) < 1e-3
    assert float(np.abs(outputs["float16"] - outputs["float32"]).max()) < 1e-2
