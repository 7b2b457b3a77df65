"""pyapp.hdf5_write and pyapp.keras_export against the real readers: h5py (libhdf5), pyfive and Keras 3.

The teach panel's export runs in the page, where neither h5py nor Keras can; here the files it
writes are read by both, and Keras's own load_model must predict what the TF.js weights compute.
The page itself (Teach panel -> Download .keras -> Keras) is in tests/test_playground.py.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "numpy")  # before keras is imported: no TensorFlow
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
pyfive = pytest.importorskip("pyfive")

from pyapp.errors import ConvertError  # noqa: E402
from pyapp.hdf5 import open_hdf5  # noqa: E402
from pyapp.hdf5_write import write_hdf5  # noqa: E402
from pyapp.keras_export import main, to_keras  # noqa: E402
from pyapp.keras_format import read_keras  # noqa: E402

SEED = 7


def _tree(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "layers": {
            f"dense_{i}" if i else "dense": {"vars": {"0": rng.normal(size=(5, 3)), "1": rng.normal(size=3)}}
            for i in range(20)
        },
        "vars": {},
        "scalar": np.float32(2.5),
        "empty": np.zeros((0, 4)),
        "big": rng.normal(size=(64, 33, 3)).astype(np.float32),
        "ints": np.arange(12).reshape(3, 4),
    }


def _walk(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            out |= _walk(value, f"{prefix}{name}/")
        else:
            out[prefix + name] = np.asarray(value, np.float32)
    return out


def test_h5py_and_pyfive_read_what_was_written() -> None:
    """Every dataset, read back by libhdf5 and by pyfive, is the float32 of what was written, bit for bit."""
    tree = _tree(np.random.default_rng(SEED))
    data = write_hdf5(tree)
    want = _walk(tree)
    with h5py.File(io.BytesIO(data), "r") as f:
        got: dict[str, np.ndarray] = {}
        f.visititems(lambda name, obj: got.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        assert sorted(f["layers"]) == sorted(tree["layers"])
        assert list(f["vars"]) == []
        assert all(f[name].dtype == np.float32 for name in got)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert np.asarray(got[name]).shape == value.shape, name
        assert np.array_equal(got[name], value), name
    root = open_hdf5(data, reader="pyfive")
    for name, value in want.items():
        group, _, leaf = name.rpartition("/")
        node = root.group(group) if group else root
        assert np.array_equal(node.array(leaf), value), name
    assert write_hdf5(tree) == data, "the same tree, the same bytes"


def test_writer_refusals() -> None:
    with pytest.raises(ConvertError, match="65 members, over the 64"):
        write_hdf5({str(i): np.zeros(1) for i in range(65)})
    with pytest.raises(ConvertError, match="only numeric arrays"):
        write_hdf5({"s": np.array(["text"])})
    with pytest.raises(ConvertError, match="NaN or infinite"):
        write_hdf5({"w": np.array([1.0, np.inf])})


def _head(rng: np.random.Generator, n_in: int, hidden: int, n_out: int, bias: bool = True) -> dict[str, bytes]:
    """What TF.js 4.22's save handler gives for the teach panel's head (Dense relu, Dropout, Dense softmax)."""
    init = {"class_name": "VarianceScaling", "config": {"scale": 1, "mode": "fan_avg", "seed": 3}}
    layers = [
        {
            "class_name": "Dense",
            "config": {
                "units": hidden,
                "activation": "relu",
                "use_bias": bias,
                "kernel_initializer": init,
                "bias_initializer": {"class_name": "Zeros", "config": {}},
                "kernel_regularizer": None,
                "bias_regularizer": None,
                "activity_regularizer": None,
                "kernel_constraint": None,
                "bias_constraint": None,
                "name": "dense_Dense1",
                "trainable": True,
                "batch_input_shape": [None, n_in],
                "dtype": "float32",
            },
        },
        {
            "class_name": "Dropout",
            "config": {"rate": 0.25, "noise_shape": None, "seed": 11, "name": "dropout_Dropout1", "trainable": True},
        },
        {
            "class_name": "Dense",
            "config": {"units": n_out, "activation": "softmax", "use_bias": True, "name": "dense_Dense2"},
        },
    ]
    weights = [("dense_Dense1/kernel", rng.normal(0, 0.3, (n_in, hidden)))]
    if bias:
        weights.append(("dense_Dense1/bias", rng.normal(0, 0.3, hidden)))
    weights += [
        ("dense_Dense2/kernel", rng.normal(0, 0.3, (hidden, n_out))),
        ("dense_Dense2/bias", rng.normal(0, 1, n_out)),
    ]
    specs = [{"name": n, "shape": list(w.shape), "dtype": "float32"} for n, w in weights]
    topology = {
        "class_name": "Sequential",
        "config": {"name": "transfer_head", "layers": layers},
        "keras_version": "tfjs-layers 4.22.0",
        "backend": "tensor_flow.js",
    }
    model_json = {
        "modelTopology": topology,
        "format": "layers-model",
        "userDefinedMetadata": {"pyapp_transfer": {"classes": ["cat", "dog", "cow"][:n_out]}},
        "weightsManifest": [{"paths": ["head.weights.bin"], "weights": specs}],
    }
    return {
        "head.json": json.dumps(model_json).encode(),
        "head.weights.bin": b"".join(np.asarray(w, "<f4").tobytes() for _, w in weights),
    }


def _numpy_head(files: dict[str, bytes], x: np.ndarray) -> np.ndarray:
    """The head's function computed from the TF.js files with numpy: what TF.js computes."""
    spec = json.loads(files["head.json"])
    data = files["head.weights.bin"]
    weights, offset = {}, 0
    for s in spec["weightsManifest"][0]["weights"]:
        n = int(np.prod(s["shape"]))
        weights[s["name"]] = np.frombuffer(data, "<f4", n, offset).reshape(s["shape"]).astype(np.float64)
        offset += 4 * n
    h = np.maximum(x @ weights["dense_Dense1/kernel"] + weights.get("dense_Dense1/bias", 0.0), 0.0)
    z = h @ weights["dense_Dense2/kernel"] + weights["dense_Dense2/bias"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("bias", [True, False])
def test_keras_loads_the_export_and_predicts_what_tfjs_computes(bias: bool, tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    files = _head(rng, 1280, 64, 3, bias=bias)
    path = tmp_path / "head.keras"
    path.write_bytes(to_keras(files))
    model = keras.saving.load_model(path)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dropout", "Dense"]
    assert model.layers[0].use_bias is bias
    x = rng.normal(0, 1, (16, 1280)).astype(np.float32)
    got = np.asarray(model.predict(x, verbose=0))
    diff = float(np.abs(got - _numpy_head(files, x)).max())
    assert diff <= 1e-5, diff
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["user_metadata"]["pyapp_transfer"]["classes"] == ["cat", "dog", "cow"]
    back = read_keras(path.read_bytes(), reader="pyfive")  # and pyapp's own reader (the page's) agrees
    assert np.array_equal(back.weights["dense_Dense2"][1], model.layers[2].get_weights()[1])


def test_export_refuses_what_it_does_not_translate() -> None:
    files = _head(np.random.default_rng(SEED), 4, 3, 2)
    spec = json.loads(files["head.json"])
    spec["modelTopology"]["config"]["layers"][2]["config"]["activation"] = "hard_sigmoid"
    with pytest.raises(ConvertError, match="layer 'dense_Dense2': activation 'hard_sigmoid' is not exported"):
        to_keras({**files, "head.json": json.dumps(spec).encode()})
    spec = json.loads(files["head.json"])
    spec["modelTopology"]["config"]["layers"][1]["class_name"] = "BatchNormalization"
    with pytest.raises(ConvertError, match="BatchNormalization layers cannot be exported"):
        to_keras({**files, "head.json": json.dumps(spec).encode()})
    spec = json.loads(files["head.json"])
    spec["weightsManifest"][0]["weights"][0]["dtype"] = "int32"  # same size: only the dtype is wrong
    with pytest.raises(ConvertError, match="only float32 weights"):
        to_keras({**files, "head.json": json.dumps(spec).encode()})
    with pytest.raises(ConvertError, match=r"hold 12 bytes but the weight specs need 92"):
        to_keras({**files, "head.weights.bin": files["head.weights.bin"][:12]})


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _head(np.random.default_rng(SEED), 6, 4, 2)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert main([str(tmp_path / "head.json"), str(tmp_path / "head.keras")]) == 0
    assert (tmp_path / "head.keras").read_bytes() == to_keras(files)
    assert main([str(tmp_path / "missing.json"), str(tmp_path / "x.keras")]) == 1
    assert "No such file" in capsys.readouterr().err
