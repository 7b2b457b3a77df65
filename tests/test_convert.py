"""pyapp.convert against real Keras 3: models built and saved by Keras (numpy backend), converted
without TensorFlow, and checked weight for weight and prediction for prediction.

The translated config is checked by rebuilding it *in Keras* from the written model.json
and the written weights: the rebuilt model must predict what the original does. The
browser-side parity (TF.js on wasm) is tests/test_convert_browser.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MODEL_BACKENDS

os.environ.setdefault("KERAS_BACKEND", "numpy")  # before keras is imported: no TensorFlow, no jax backend
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
pytest.importorskip("pyfive")

from pyapp import quantize  # noqa: E402
from pyapp.convert import ConvertResult, convert, main, to_tfjs  # noqa: E402
from pyapp.errors import ConvertError, PyAppError  # noqa: E402
from pyapp.hdf5 import READERS, open_hdf5  # noqa: E402
from pyapp.keras_format import read_keras  # noqa: E402
from pyapp.manifest import ModelManifest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 1234
# Quantized weights (each within the format's own bound, checked exactly) move the calibrated MobileNetV2's
# probabilities by up to 4.8e-2 for uint8 (measured, host and TF.js alike; float16 ~1e-2); the other models'
# by under 1e-3. top-1 is compared where Keras's own margin is clear.
QUANTIZED_TOLERANCE = 1e-1
TOP1_MARGIN = 0.05


# --------------------------------------------------------------------------- the models


def small_cnn() -> Any:
    """The seed's small CNN shape: conv/pool blocks, dropout, dense softmax (Sequential)."""
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.AveragePooling2D(pool_size=2, strides=2),
            keras.layers.Dropout(0.25),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(4, activation="softmax"),
        ],
        name="small_cnn",
    )


def mobilenet() -> Any:
    """keras.applications's MobileNetV2, no downloaded weights: ZeroPadding2D, DepthwiseConv2D, ReLU(6), Add."""
    return keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35, classes=10)


def residual() -> Any:
    """A Functional model with a residual Add and a Concatenate, separable convs, global max pooling."""
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("swish")(x)
    y = keras.layers.SeparableConv2D(8, 3, padding="same", depth_multiplier=2)(x)
    y = keras.layers.ReLU()(y)
    added = keras.layers.Add()([x, y])
    z = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
    pooled = keras.layers.MaxPooling2D()(added)
    joined = keras.layers.Concatenate()([pooled, z])
    g = keras.layers.GlobalMaxPooling2D()(joined)
    g = keras.layers.Reshape((4, 6))(g)
    g = keras.layers.Flatten()(g)
    out = keras.layers.Dense(3, activation="softmax")(g)
    return keras.Model(inp, out, name="residual")


def preprocessing() -> Any:
    """Rescaling and Normalization inside the model (scalar, per-channel, adapted and given)."""
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(SEED).uniform(0, 1, (64, 16, 16, 3)).astype("float32"))
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255.0),
            norm,
            keras.layers.Rescaling([2.0, -1.0, 0.5], offset=[0.1, 0.0, -0.2]),
            keras.layers.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.5, 0.0, 4.0]),
            keras.layers.ZeroPadding2D(((1, 0), (2, 1))),
            keras.layers.Conv2D(4, 3, strides=2, activation="tanh"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="sigmoid"),
        ],
        name="preprocessing",
    )


MODELS: dict[str, Callable[[], Any]] = {
    "small_cnn": small_cnn,
    "mobilenet_v2": mobilenet,
    "residual": residual,
    "preprocessing": preprocessing,
}
FORMATS = (".keras", ".h5")


def _inputs(name: str, model: Any, n: int = 3) -> np.ndarray:
    """Seeded images in the range each model expects: raw pixels where it rescales them itself, else 0..1
    (where activations stay unsaturated, so that a wrong layer shows in the output)."""
    shape = (n, *model.input_shape[1:])
    high = 255.0 if name == "preprocessing" else 1.0
    return np.random.default_rng(SEED).uniform(0, high, shape).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each model built with a fixed seed and saved in both formats, with its predictions."""
    out = tmp_path_factory.mktemp("keras")
    models: dict[str, Any] = {}
    for name, build in MODELS.items():
        keras.utils.set_random_seed(SEED)
        model = build()
        x = _inputs(name, model)
        _calibrate(model, x, np.random.default_rng(SEED))
        models[name] = {"model": model, "x": x, "y": np.asarray(model.predict(x, verbose=0))}
        for fmt in FORMATS:
            path = out / f"{name}{fmt}"
            model.save(path)
            models[name][fmt] = path
    return models


def _calibrate(model: Any, x: np.ndarray, rng: np.random.Generator) -> None:
    """Give every batch norm its input's own statistics on ``x`` (in graph order) and random gamma/beta.

    Freshly initialized, MobileNetV2's activations shrink to ~1e-10 by its last block and its
    softmax is uniform: a wrong layer could not show. Calibrated, every layer carries signal.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            inputs = np.asarray(keras.Model(model.inputs, layer.input).predict(x, verbose=0))
            axes = tuple(range(inputs.ndim - 1))
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0.2, 0.2, beta.shape),
                    inputs.mean(axis=axes),
                    inputs.var(axis=axes) + 1e-3,
                ]
            )


def _rebuild(model_json: dict[str, Any], weights: list[tuple[dict[str, Any], np.ndarray]]) -> Any:
    """The written model.json and weights, built back into a Keras model (Keras reads Keras 2 configs)."""
    config = model_json["modelTopology"]["model_config"]
    if config["class_name"] == "Sequential":
        layers = [dict(entry, config=dict(entry["config"])) for entry in config["config"]["layers"]]
        shape = layers[0]["config"].pop("batch_input_shape")
        model = keras.Sequential(
            [keras.Input(shape[1:])] + [getattr(keras.layers, e["class_name"]).from_config(e["config"]) for e in layers]
        )
    else:
        model = keras.Model.from_config(config["config"])
    by_layer: dict[str, list[np.ndarray]] = {}
    for spec, value in weights:
        by_layer.setdefault(spec["name"].split("/")[0], []).append(value)
    for layer in model.layers:
        if layer.weights:
            names = [w.path.split("/")[-1] for w in layer.weights]
            layer.set_weights(by_layer.pop(layer.name))
            assert names, layer.name
    assert not by_layer, f"weights for layers the config does not have: {sorted(by_layer)}"
    return model


def _convert(saved: dict[str, Any], name: str, fmt: str, out: Path, **kwargs: Any) -> ConvertResult:
    return convert(saved[name][fmt], out, **kwargs)


# --------------------------------------------------------------------------- weights and config


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(MODELS))
def test_written_weights_are_kerass_own(saved: dict[str, Any], name: str, fmt: str, tmp_path: Path) -> None:
    """float32 weights come out bit for bit as get_weights() gives them, named <layer>/<weight> in Keras's order."""
    result = _convert(saved, name, fmt, tmp_path, dtypes=("float32",))
    _, weights = quantize.read_model(tmp_path / "float32")
    written: dict[str, list[tuple[str, np.ndarray]]] = {}
    for spec, value in weights:
        layer, weight = spec["name"].split("/")
        written.setdefault(layer, []).append((weight, value))
    model = saved[name]["model"]
    checked = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            continue  # rewritten as a batch norm: checked by test_normalization_becomes_an_equal_batchnorm
        if isinstance(layer, keras.layers.Rescaling) and not np.isscalar(layer.scale):
            continue
        expected = layer.get_weights()
        got = written.pop(layer.name, [])
        assert [n for n, _ in got] == [_tfjs_name(layer, w) for w in layer.weights]
        assert len(got) == len(expected), layer.name
        for (_, value), want in zip(got, expected, strict=True):
            assert value.dtype == np.float32
            np.testing.assert_array_equal(value, want)
            checked += 1
    assert checked == sum(len(layer.get_weights()) for layer in model.layers if _plain(layer))
    assert result.manifest["variants"][0]["name"] == "float32"


def _plain(layer: Any) -> bool:
    return not isinstance(layer, keras.layers.Normalization) and not (
        isinstance(layer, keras.layers.Rescaling) and not np.isscalar(layer.scale)
    )


def _tfjs_name(layer: Any, variable: Any) -> str:
    """The name TF.js looks a Keras 3 variable up by: Keras 3 calls DepthwiseConv2D's kernel 'kernel'."""
    name = str(variable.path.split("/")[-1])
    return "depthwise_kernel" if isinstance(layer, keras.layers.DepthwiseConv2D) and name == "kernel" else name


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(MODELS))
def test_config_round_trips_through_keras(saved: dict[str, Any], name: str, fmt: str, tmp_path: Path) -> None:
    """Keras itself, reading the written model.json and weights, predicts what the original model does."""
    _convert(saved, name, fmt, tmp_path, dtypes=("float32",))
    model_json, weights = quantize.read_model(tmp_path / "float32")
    assert model_json["format"] == "layers-model"
    text = json.dumps(model_json)
    for keras3_only in ('"module"', '"registered_name"', '"build_config"', '"batch_shape"', "DTypePolicy", "__keras"):
        assert keras3_only not in text
    rebuilt = _rebuild(model_json, weights)
    x, y = saved[name]["x"], saved[name]["y"]
    got = np.asarray(rebuilt.predict(x, verbose=0))
    assert got.shape == y.shape
    assert float(np.abs(got - y).max()) <= 1e-5
    # Layer by layer too: a saturated softmax at the end would hide a wrong ReLU cap or epsilon.
    want_acts, got_acts = _activations(saved[name]["model"], x), _activations(rebuilt, x)
    assert list(want_acts) == list(got_acts)
    for layer, want in want_acts.items():
        scale = float(np.abs(want).max())
        assert scale > 1e-3, f"{layer}: no signal left to compare"
        assert float(np.abs(got_acts[layer] - want).max()) <= 1e-5 * max(1.0, scale), layer


def _activations(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output on ``x``, by layer name."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    return {layer.name: np.asarray(out) for layer, out in zip(layers, probe.predict(x, verbose=0), strict=True)}


@pytest.mark.parametrize("dtype", ["uint8", "float16"])
def test_quantized_variants_within_the_formats_bound(saved: dict[str, Any], dtype: Any, tmp_path: Path) -> None:
    """uint8/float16 variants decode to the float32 weights within quantize.error_bound, and still classify alike."""
    _convert(saved, "mobilenet_v2", ".keras", tmp_path, dtypes=(dtype, "float32"))
    _, exact = quantize.read_model(tmp_path / "float32")
    model_json = json.loads((tmp_path / dtype / "model.json").read_text())
    specs = model_json["weightsManifest"][0]["weights"]
    _, decoded = quantize.read_model(tmp_path / dtype)
    for spec, (_, want), (_, got) in zip(specs, exact, decoded, strict=True):
        assert spec["quantization"]["dtype"] == dtype
        assert float(np.abs(got - want).max(initial=0)) <= quantize.error_bound(spec["quantization"], want)
    rebuilt = _rebuild(model_json, decoded)
    x, y = saved["mobilenet_v2"]["x"], saved["mobilenet_v2"]["y"]
    got_y = np.asarray(rebuilt.predict(x, verbose=0))
    assert float(np.abs(got_y - y).max()) <= QUANTIZED_TOLERANCE
    top2 = np.sort(y, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > TOP1_MARGIN
    assert clear.any(), "no sample with a clear top-1"
    assert (got_y.argmax(1) == y.argmax(1))[clear].all()


def test_normalization_becomes_an_equal_batchnorm(saved: dict[str, Any], tmp_path: Path) -> None:
    """Normalization (adapted and given) and per-channel Rescaling compute the same as the batch norm they become."""
    _convert(saved, "preprocessing", ".keras", tmp_path, dtypes=("float32",))
    model_json, weights = quantize.read_model(tmp_path / "float32")
    rebuilt = _rebuild(model_json, weights)
    original = saved["preprocessing"]["model"]
    x = saved["preprocessing"]["x"]
    kinds = [type(layer).__name__ for layer in rebuilt.layers[:4]]
    assert kinds == ["Rescaling", "BatchNormalization", "BatchNormalization", "BatchNormalization"]
    for before, after in zip(original.layers[:4], rebuilt.layers[:4], strict=True):
        want = np.asarray(before(x))
        got = np.asarray(after(x))
        scale = max(1.0, float(np.abs(want).max()))
        assert float(np.abs(got - want).max()) <= 1e-6 * scale, before.name
        x = want
    # variance 0 is floored at Keras's epsilon (1e-7), not divided by.
    floored = next(v for s, v in weights if s["name"] == "normalization_1/moving_variance")
    assert floored[1] == np.float32(1e-14)


def _keras2(obj: Any) -> Any:
    """A Keras 3 config written the way Keras 2 (TensorFlow 2.x) wrote it: no module/registered_name/
    build_config, dtype policies as strings, InputLayer's batch_input_shape, calls as nested lists."""
    if isinstance(obj, list):
        return [_keras2(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if obj.get("class_name") == "DTypePolicy":
        return obj["config"]["name"]
    out = {k: _keras2(v) for k, v in obj.items() if k not in ("module", "registered_name", "build_config")}
    if isinstance(out.get("config"), dict):
        out["config"].pop("shared_object_id", None)
    if "batch_shape" in out:
        out["batch_input_shape"] = out.pop("batch_shape")
    if "inbound_nodes" in out:
        out["inbound_nodes"] = [
            [[*t["config"]["keras_history"], {}] for t in _tensors(node["args"])] for node in obj["inbound_nodes"]
        ]
    return out


def _tensors(args: Any) -> list[dict[str, Any]]:
    if isinstance(args, dict):
        return [args]
    return [t for a in args for t in _tensors(a)]


def test_keras2_h5(saved: dict[str, Any], tmp_path: Path) -> None:
    """A TensorFlow 2.x Keras .h5 (Keras 2 config, weights named 'layer/kernel:0' in nested groups) converts too."""
    model = saved["residual"]["model"]
    config = _keras2(json.loads(model.to_json()))
    path = tmp_path / "keras2.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            group = weights.create_group(layer.name)
            names = [f"{layer.name}/{_tfjs_name(layer, w)}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, value in zip(names, layer.get_weights(), strict=True):
                group.create_dataset(name, data=value)
    assert '"inbound_nodes": [[["' in json.dumps(config)
    for reader in READERS:
        _convert({"m": {".h5": path}}, "m", ".h5", tmp_path / reader, dtypes=("float32",))
        model_json, weights_out = quantize.read_model(tmp_path / reader / "float32")
        assert model_json["generatedBy"] == "keras v2.15.0"
        rebuilt = _rebuild(model_json, weights_out)
        got = np.asarray(rebuilt.predict(saved["residual"]["x"], verbose=0))
        np.testing.assert_allclose(got, saved["residual"]["y"], atol=1e-6)


# --------------------------------------------------------------------------- readers and manifest


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(MODELS))
def test_h5py_and_pyfive_read_the_same(saved: dict[str, Any], name: str, fmt: str) -> None:
    """The pure-Python reader (Pyodide's) gives exactly what h5py gives, for both file formats."""
    data = saved[name][fmt].read_bytes()
    files = [read_keras(data, reader=reader) for reader in READERS]
    assert files[0].config == files[1].config
    assert files[0].keras_version == files[1].keras_version == keras.__version__
    assert list(files[0].weights) == list(files[1].weights)
    assert files[0].weights, "no weights read"
    for layer, values in files[0].weights.items():
        for a, b in zip(values, files[1].weights[layer], strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(MODELS))
def test_formats_and_readers_write_the_same_bytes(saved: dict[str, Any], name: str, tmp_path: Path) -> None:
    """.keras and .h5 of one model, read by h5py or pyfive, convert to byte-identical files."""
    digests = set()
    for fmt in FORMATS:
        for reader in READERS:
            result = convert(saved[name][fmt], tmp_path / f"{fmt}-{reader}", dtypes=("uint8",), reader=reader)
            digests.add(json.dumps(result.manifest["variants"]))
    assert len(digests) == 1


def test_manifest_lists_every_file_with_its_sha256(saved: dict[str, Any], tmp_path: Path) -> None:
    """Variants smallest first, every written file (and only those) with its sha256, loadable by ModelManifest."""
    import hashlib

    result = _convert(saved, "small_cnn", ".h5", tmp_path, labels=["a", "b", "c", "d"])
    manifest = ModelManifest.from_json((tmp_path / "manifest.json").read_text())
    assert [v.name for v in manifest.variants] == ["uint8", "float16", "float32"]
    assert manifest.labels == ("a", "b", "c", "d")
    assert manifest.input.size == 32
    assert manifest.input.channels == 3
    assert manifest.preprocess.normalize == "unit"
    listed = {f for v in manifest.variants for f in v.files}
    on_disk = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == on_disk
    for v in manifest.variants:
        for f, digest in v.files.items():
            assert hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() == digest
    assert result.sizes["uint8"] < result.sizes["float16"] < result.sizes["float32"]
    # A model that rescales its own input takes raw pixels.
    other = _convert(saved, "preprocessing", ".keras", tmp_path / "p")
    assert other.manifest["preprocess"]["normalize"] == "none"


def test_labels_must_match_the_outputs(saved: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="3 labels given for a model with 4 outputs"):
        _convert(saved, "small_cnn", ".keras", tmp_path, labels=["a", "b", "c"])


def test_cli(saved: dict[str, Any], tmp_path: Path) -> None:
    """python -m pyapp.convert model.keras out/ --quantize uint8 --labels ..., as the README shows."""
    labels = ",".join(f"class{i}" for i in range(10))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyapp.convert",
            str(saved["mobilenet_v2"][".keras"]),
            str(tmp_path / "out"),
            "--quantize",
            "uint8",
            "--labels",
            labels,
            "--name",
            "mine",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    assert "wrote" in run.stdout
    assert "uint8" in run.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["name"] == "mine"
    assert manifest["labels"][-1] == "class9"
    assert [v["name"] for v in manifest["variants"]] == ["uint8"]
    bad = subprocess.run(
        [sys.executable, "-m", "pyapp.convert", str(tmp_path / "out" / "manifest.json"), str(tmp_path / "x")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert bad.returncode == 1
    assert "error: neither a .keras archive" in bad.stderr
    assert main([str(tmp_path / "missing.keras"), str(tmp_path / "y")]) == 1


# --------------------------------------------------------------------------- refusals


def _refused(model: Any, tmp_path: Path, fmt: str = ".keras") -> ConvertError:
    path = tmp_path / f"m{fmt}"
    model.save(path)
    with pytest.raises(ConvertError) as info:
        convert(path, tmp_path / "out", dtypes=("float32",))
    assert isinstance(info.value, PyAppError)
    assert isinstance(info.value, ValueError)
    return info.value


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("layer", "layer_name", "reason"),
    [
        (lambda: keras.layers.LSTM(2, name="lstm"), "lstm", "class 'LSTM' is not supported"),
        (lambda: keras.layers.Conv2D(6, 3, groups=3, name="grouped"), "grouped", "groups=3"),
        (lambda: keras.layers.ReLU(negative_slope=0.1, name="leaky"), "leaky", "negative_slope=0.1"),
        (lambda: keras.layers.Activation("hard_sigmoid", name="hs"), "hs", "'hard_sigmoid' is not supported"),
        (lambda: keras.layers.GlobalAveragePooling2D(keepdims=True, name="gap"), "gap", "keepdims=True"),
        (lambda: keras.layers.Conv2D(4, 3, dtype="mixed_float16", name="half"), "half", "'mixed_float16'"),
        (lambda: keras.layers.Normalization(invert=True, mean=0.5, variance=2.0, name="inv"), "inv", "invert=True"),
    ],
)
def test_unsupported_layers_are_refused_by_name(
    layer: Callable[[], Any], layer_name: str, reason: str, fmt: str, tmp_path: Path
) -> None:
    keras.utils.set_random_seed(SEED)
    inp = keras.Input((6, 6, 3))
    x = layer()(inp if layer_name != "lstm" else keras.layers.Reshape((36, 3))(inp))
    model = keras.Model(inp, keras.layers.Flatten()(x) if layer_name not in ("lstm", "gap") else x)
    error = _refused(model, tmp_path, fmt)
    assert error.layer == layer_name
    assert reason in str(error)


def test_nested_models_are_refused(tmp_path: Path) -> None:
    keras.utils.set_random_seed(SEED)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="inner")
    inp = keras.Input((4,))
    error = _refused(keras.Model(inp, inner(inp)), tmp_path)
    assert error.layer == "inner"
    assert "nested models are not supported" in str(error)


def test_truncated_archive(saved: dict[str, Any]) -> None:
    data = saved["small_cnn"][".keras"].read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        with pytest.raises(ConvertError, match=r"\.keras archive"):
            read_keras(data[:cut])


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_bomb_is_refused_before_inflating(saved: dict[str, Any]) -> None:
    """Members are refused on their declared size and ratio, and one lying about its size stops at it."""
    with zipfile.ZipFile(saved["small_cnn"][".keras"]) as z:
        config, metadata = z.read("config.json"), z.read("metadata.json")
    bomb = _zip({"config.json": config, "metadata.json": metadata, "model.weights.h5": bytes(64 << 20)})
    assert len(bomb) < 200_000
    with pytest.raises(ConvertError, match="zip bomb"):
        read_keras(bomb)
    with pytest.raises(ConvertError, match="over the 1048576-byte limit"):
        read_keras(bomb, limit_bytes=1 << 20)
    huge_config = _zip({"config.json": b" " * (40 << 20)})
    with pytest.raises(ConvertError, match=r"config\.json declares"):
        read_keras(huge_config)
    # A member whose directory entry understates its size: zipfile stops at the declared size, the CRC fails.
    small = _zip({"config.json": config, "metadata.json": metadata, "model.weights.h5": b"\x89HDF" + bytes(5000)})
    entry = small.rindex(b"model.weights.h5") - 46  # its central directory entry (the name's last occurrence)
    assert small[entry : entry + 4] == b"PK\x01\x02"
    lying = bytearray(small)
    struct.pack_into("<I", lying, entry + 24, 100)  # uncompressed size in the central directory
    with pytest.raises(ConvertError, match="damaged"):
        read_keras(bytes(lying))


@pytest.mark.parametrize("reader", READERS)
def test_absurd_hdf5_shapes_are_refused_before_reading(saved: dict[str, Any], reader: Any, tmp_path: Path) -> None:
    """A weights file declaring a 4 TiB dataset (unallocated, so the file is small) is refused, not read."""
    with zipfile.ZipFile(saved["small_cnn"][".keras"]) as z:
        members = {n: z.read(n) for n in z.namelist()}
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/conv2d/vars/0", shape=(1 << 20, 1 << 20), dtype="float32", chunks=(64, 64))
        f.create_dataset("layers/conv2d/vars/1", data=np.zeros(8, np.float32))
    members["model.weights.h5"] = path.read_bytes()
    assert len(members["model.weights.h5"]) < 100_000
    with pytest.raises(ConvertError, match=r"declares 4398046511104 bytes"):
        read_keras(_zip(members), reader=reader)


def test_wrong_weight_shapes_are_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    """Weights that do not fit the config (a swapped file) are refused with the layer and the shapes."""
    keras_file = read_keras(saved["small_cnn"][".keras"].read_bytes())
    first = next(iter(keras_file.weights))
    keras_file.weights[first] = [np.zeros((3, 3, 3, 5), np.float32), np.zeros(5, np.float32)]
    with pytest.raises(ConvertError, match=r"weight kernel has shape \(3, 3, 3, 5\), expected \(3, 3, \*, 8\)"):
        to_tfjs(keras_file)


@pytest.mark.parametrize("data", [b"", b"\x89HDF\r\n\x1a\n" + bytes(100), b"PK\x03\x04" + bytes(50)])
@pytest.mark.parametrize("reader", READERS)
def test_garbage_is_a_convert_error(data: bytes, reader: Any) -> None:
    with pytest.raises(ConvertError):
        read_keras(data, reader=reader)
    if data.startswith(b"\x89HDF"):
        with pytest.raises(ConvertError, match="not a readable HDF5 file"):
            open_hdf5(data, reader=reader)


# --------------------------------------------------------------------------- in TF.js


@pytest.fixture(scope="module")
def converted(saved: dict[str, Any], scratch: Path) -> list[str]:
    """Every model in both formats converted (float32 and uint8) under /__scratch__/convert/, with its inputs."""
    cases = []
    for name in MODELS:
        for fmt in FORMATS:
            case = f"{name}{fmt.replace('.', '-')}"
            out = scratch / "convert" / case
            convert(saved[name][fmt], out, dtypes=("uint8", "float32"))
            np.save(out / "x.npy", saved[name]["x"])
            cases.append(case)
    return cases


@pytest.mark.parametrize("backend", MODEL_BACKENDS, indirect=True)
def test_tfjs_predicts_what_keras_predicts(
    pyodide: Any, backend: str, converted: list[str], saved: dict[str, Any]
) -> None:
    """The converted models, loaded by TF.js's loadLayersModel through pyapp's Model, predict what Keras does:
    float32 within 1e-4, uint8 with the same top-1 wherever Keras's own margin is clear."""
    got = pyodide.run(f"""
        import io
        import numpy as np
        import testutil
        from pyapp.model import Model
        await testutil.use_backend({backend!r})
        out = {{}}
        for case in {converted!r}:
            x = np.load(io.BytesIO(await testutil.fetch(f"/__scratch__/convert/{{case}}/x.npy")))
            for variant in ("float32", "uint8"):
                url = f"/__scratch__/convert/{{case}}/manifest.json"
                model = await Model.load(url, variants=[variant], warmup=False)
                try:
                    out[f"{{case}}/{{variant}}"] = (await model.predict(x)).tolist()
                finally:
                    model.dispose()
        __value__ = out
    """)
    table = []
    clear_top1 = 0
    for case in converted:
        name = case.rsplit("-", 1)[0]
        want = saved[name]["y"]
        exact = np.asarray(got[f"{case}/float32"], np.float32)
        quant = np.asarray(got[f"{case}/uint8"], np.float32)
        assert exact.shape == want.shape, case
        diff = float(np.abs(exact - want).max())
        table.append(f"{case:28} {backend:6} float32 {diff:.2e}  uint8 {float(np.abs(quant - want).max()):.2e}")
        assert diff <= 1e-4, table[-1]
        assert float(np.abs(quant - want).max()) <= QUANTIZED_TOLERANCE, table[-1]
        if want.shape[1] > 1:
            top2 = np.sort(want, axis=1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > TOP1_MARGIN
            clear_top1 += int(clear.sum())
            assert (quant.argmax(1) == want.argmax(1))[clear].all(), table[-1]
    print("\n" + "\n".join(table) + f"\nuint8 top-1 compared on {clear_top1} samples with a clear margin")
    assert clear_top1 > 0, "no sample had a clear enough top-1 to compare the uint8 variants"


# --------------------------------------------------------------------------- in the playground


def _run_cell(page: Any, code: str) -> dict[str, str]:
    from test_playground import _run_cell as run

    return run(page, code)


def _cell_json(page: Any, code: str) -> Any:
    cell = _run_cell(page, code + "\nimport json\nprint('JSON' + json.dumps(__out__))")
    assert cell["state"] == "ok", cell["text"]
    return json.loads(cell["text"].split("JSON", 1)[1].strip())


def test_playground_converts_a_dropped_keras_file_saves_it_and_classifies(
    playground: Any, saved: dict[str, Any], tmp_path: Path
) -> None:
    """A visitor picks MobileNetV2's .keras in the Keras panel and drops the small CNN's .h5 on Files: each is
    converted in the page (pyfive loaded only then), predicts what Keras predicted, classifies a photo, is saved
    in IndexedDB and loads back after a reload. A broken file says why."""
    import pyapp_build

    page = playground
    x_file = tmp_path / "x.npy"
    np.save(x_file, saved["mobilenet_v2"]["x"])
    page.set_input_files("#upload-input", [x_file])
    page.wait_for_selector("#uploads li:has-text('x.npy')")
    assert _cell_json(page, "import sys\n__out__ = 'pyfive' in sys.modules") is False, "not loaded at boot"

    def convert(selector: str, path: Path, name: str) -> float:
        page.evaluate("delete document.getElementById('keras').dataset.state")
        page.set_input_files(selector, [path])
        page.wait_for_function(
            "(n) => ['ready', 'error'].includes(document.getElementById('keras').dataset.state)"
            " && (document.getElementById('keras').dataset.state === 'error'"
            " || document.getElementById('keras').dataset.model === n)",
            arg=name,
            timeout=120_000,
        )
        status = page.inner_text("#keras-status")
        assert page.get_attribute("#keras", "data-state") == "ready", status
        match = re.search(r"Converted \S+ in ([0-9.]+) s .* ([0-9.]+) s with loading and saving", status)
        assert match, status
        print(f"\n{path.name}: converted in the page in {match[1]} s ({match[2]} s with loading and saving)")
        return float(match[1])

    convert("#keras-input", saved["mobilenet_v2"][".keras"], "mobilenet_v2")
    convert("#upload-input", saved["small_cnn"][".h5"], "small_cnn")
    predict = """
        import io
        import numpy as np
        x = np.load(io.BytesIO(uploads["x.npy"]))
        __out__ = {name: (await keras_models[name].model.predict(x[:, :size, :size])).tolist()
                   for name, size in (("mobilenet_v2", 96), ("small_cnn", 32)) if name in keras_models}
    """
    got = _cell_json(page, textwrap.dedent(predict).strip())
    x = saved["mobilenet_v2"]["x"]
    want = {
        "mobilenet_v2": saved["mobilenet_v2"]["y"],
        "small_cnn": np.asarray(saved["small_cnn"]["model"].predict(x[:, :32, :32], verbose=0)),
    }
    for name, y in want.items():
        diff = float(np.abs(np.asarray(got[name], np.float32) - y).max())
        print(f"{name}: max abs diff against Keras predict {diff:.2e}")
        assert diff <= 1e-4, name

    page.set_input_files("#keras-try", [pyapp_build.VENDOR / "samples" / "chelsea.png"])
    page.wait_for_function("() => document.getElementById('keras-result').dataset.top1 !== undefined")
    assert page.get_attribute("#keras-result", "data-top1") in [f"class {i}" for i in range(4)]
    assert page.locator("#keras-result meter").count() == 4

    # The README's in-browser example, as written, with the files it names added under Files.
    from test_playground import readme_examples

    (block,) = [b for b in readme_examples() if "convert.load_in_browser" in b]
    page.evaluate("delete document.getElementById('keras').dataset.state")
    page.set_input_files(
        "#upload-input", [saved["small_cnn"][".keras"], pyapp_build.VENDOR / "samples" / "chelsea.png"]
    )
    page.wait_for_selector("#uploads li:has-text('chelsea.png')")
    page.wait_for_selector("#keras[data-state='ready']")  # the .keras added under Files was converted too
    page.click("#reset")
    cell = _run_cell(page, block)
    assert cell["state"] == "ok", cell["text"]
    assert re.search(r"converted in [0-9.]+ s: \{'float32': \d+\}", cell["text"]), cell["text"]
    print("README example:", cell["text"].replace("\n", " | "))

    broken = tmp_path / "broken.keras"
    broken.write_bytes(saved["small_cnn"][".keras"].read_bytes()[:200])
    page.evaluate("delete document.getElementById('keras').dataset.state")
    page.set_input_files("#keras-input", [broken])
    page.wait_for_selector("#keras[data-state='error']")
    assert "broken.keras: .keras archive: not a readable zip" in page.inner_text("#keras-status")

    page.reload()
    page.wait_for_selector("#playground[data-ready='true']")
    page.select_option("#saved", "indexeddb://mobilenet_v2")
    page.click("#load")
    page.wait_for_function("() => document.getElementById('keras-status').textContent.startsWith('Loaded')")
    page.set_input_files("#upload-input", [x_file])
    page.wait_for_selector("#uploads li:has-text('x.npy')")
    again = _cell_json(page, textwrap.dedent(predict).strip())
    assert np.abs(np.asarray(again["mobilenet_v2"], np.float32) - want["mobilenet_v2"]).max() <= 1e-4
    cleanup = (
        "for n in ('mobilenet_v2', 'small_cnn'):\n    await pyapp.saving.remove_saved(f'indexeddb://{n}')\n__out__ = 1"
    )
    assert _cell_json(page, cleanup) == 1
    assert page.errors == []
