"""pyapp.saving: trained models saved to IndexedDB and as files reload in a fresh page and predict the same;
file checks on the host."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import Pyodide

from pyapp.errors import InvalidInput, ModelLoadError
from pyapp.saving import artifacts_from_files, check_destination, model_json


def test_files_are_checked_before_tfjs_sees_them() -> None:
    spec = json.loads(
        model_json(
            {"modelTopology": {}, "weightSpecs": [{"name": "w", "shape": [2], "dtype": "float32"}]}, "m.weights.bin"
        )
    )
    files = {"m.json": json.dumps(spec).encode(), "m.weights.bin": b"\0" * 8}
    artifacts, weights = artifacts_from_files(files)
    assert artifacts["weightSpecs"][0]["name"] == "w"
    assert weights == b"\0" * 8
    assert artifacts_from_files({"dir/m.json": files["m.json"], "dir/m.weights.bin": b"\0" * 8})[1] == weights
    for bad, message in [
        ({"m.weights.bin": b""}, "expected one .json model file"),
        ({"m.json": b"{", "m.weights.bin": b""}, "m.json is not JSON"),
        ({"m.json": b"{}"}, "no modelTopology"),
        ({"m.json": files["m.json"]}, "names weight file 'm.weights.bin', which was not given"),
        ({"m.json": files["m.json"], "m.weights.bin": b"\0" * 5}, "hold 5 bytes but the weight specs need 8"),
    ]:
        with pytest.raises(ModelLoadError) as info:
            artifacts_from_files(bad)
        assert message in str(info.value)
    for url in ("downloads://x", "indexeddb://", "indexeddb://../x", "http://x/model.json"):
        with pytest.raises(InvalidInput):
            check_destination(url)


TRAIN_AND_SAVE = """
import numpy as np, testutil
from pyapp import datasets, saving
from pyapp.layers import Conv2D, Dense, Flatten, MaxPool2D
from pyapp.memory import assert_no_leaks
from pyapp.training import Sequential

await testutil.use_backend("wasm")
x, y = await datasets.digits()
with assert_no_leaks():
    model = Sequential([Conv2D(16, 3, activation="relu", padding="same", input_shape=(8, 8, 1)), MaxPool2D(2),
                        Flatten(), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    await model.fit(x[:600], y[:600], epochs=3)
    probs = await model.predict(x[1700:1710])
    info = await model.save("indexeddb://pytest-digits")
    files = await model.to_files("pytest-digits")
    model.dispose()
assert info["weightDataBytes"] > 0
assert "indexeddb://pytest-digits" in await saving.list_saved()
__value__ = {"probs": probs.tolist(), "files": {k: list(v) for k, v in files.items()}}
"""

RELOAD = """
import numpy as np, testutil, warnings
from pyapp import datasets, saving, training
await testutil.use_backend("wasm")
x, _ = await datasets.digits()
from_db = await training.load("indexeddb://pytest-digits")
with warnings.catch_warnings(record=True) as caught:  # the old name still works, and says what to use
    warnings.simplefilter("always")
    from_files = await saving.load({k: bytes(v) for k, v in FILES.items()})
deprecation = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
out = [(await m.predict(x[1700:1710])).tolist() for m in (from_db, from_files)]
again = await from_db.evaluate(x[1700:], _[1700:])  # still compiled: the training config came along
from_db.dispose()
from_files.dispose()
await saving.remove_saved("indexeddb://pytest-digits")
missing = None
try:
    await training.load("indexeddb://pytest-digits")
except saving.ModelLoadError as exc:
    missing = str(exc)
__value__ = {
    "out": out, "scores": again, "missing": missing, "left": list(await saving.list_saved()), "deprecation": deprecation
}
"""


def test_trained_model_reloads_from_indexeddb_and_files_in_a_fresh_page(browser: Any, server_url: str) -> None:
    """Train and save in one page; in another page (same browser profile) both copies predict the same."""
    import numpy as np

    context = browser.new_context()
    try:
        first = Pyodide.boot(context.new_page(), server_url)
        saved = first.run(TRAIN_AND_SAVE, timeout=600)
        first.page.close()
        assert sorted(saved["files"]) == ["pytest-digits.json", "pytest-digits.weights.bin"]
        spec = json.loads(bytes(saved["files"]["pytest-digits.json"]))
        assert spec["weightsManifest"][0]["paths"] == ["pytest-digits.weights.bin"]
        assert spec["format"] == "layers-model"
        second = Pyodide.boot(context.new_page(), server_url)
        got = second.run(f"FILES = {json.dumps(saved['files'])}\n" + RELOAD, timeout=600)
        for reloaded in got["out"]:
            assert np.abs(np.array(reloaded) - np.array(saved["probs"])).max() < 1e-6
        assert set(got["scores"]) == {"loss", "accuracy"}
        assert "could not load indexeddb://pytest-digits" in got["missing"]
        assert "indexeddb://pytest-digits" not in got["left"]
        assert got["deprecation"] == [
            "pyapp.saving.load is deprecated; use pyapp.training.load (the same arguments and result)"
        ]
    finally:
        context.close()
