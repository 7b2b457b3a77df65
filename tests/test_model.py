"""pyapp.model in Chromium: verified loading with variant fallback, lifecycle, input checks, no leaks."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import MODEL_BACKENDS, WEBGPU
from harness import run_in_pyodide

import pyapp_build

MODEL = pyapp_build.MODELS / "nsfw-mobilenet-v2"


def _broken_copy(scratch: Path, case: str, damage: dict[str, str]) -> str:
    """Copy the real model to scratch/case and damage files; returns the manifest URL.

    damage: file -> "flip" (bytes changed, manifest hash kept), "delete",
    "truncate" / "garble" / "reshape" (another input shape) (changed and the manifest
    hash updated, so only the content checks can catch it).
    """
    dest = scratch / case
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(MODEL, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    for rel, how in damage.items():
        path = dest / rel
        if how == "delete":
            path.unlink()
            continue
        data = path.read_bytes()
        if how == "flip":
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        elif how == "truncate":
            data = data[: len(data) // 2]
        elif how == "garble":
            data = b'{"modelTopology": '
        elif how == "reshape":
            data = data.replace(b'"batch_input_shape":[null,224,224,3]', b'"batch_input_shape":[null,299,299,3]')
            assert b"299,299" in data
        path.write_bytes(data)
        if how in ("truncate", "garble", "reshape"):
            for variant in manifest["variants"]:
                if rel in variant["files"]:
                    variant["files"][rel] = hashlib.sha256(data).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return f"/__scratch__/{case}/manifest.json"


@pytest.mark.parametrize("backend", [*MODEL_BACKENDS, WEBGPU], indirect=True)
@run_in_pyodide
async def test_load_verifies_warms_up_and_predicts(pyodide: Any, backend: str) -> None:
    import numpy as np
    import testutil

    from pyapp.model import ModelState

    clf = await testutil.classifier(backend)
    model = clf.model
    assert model.state is ModelState.READY
    assert model.load_info.variant == "uint8"
    assert model.load_info.attempts == {}
    assert model.load_info.warmup_ms is not None
    assert model.load_info.warmup_ms > 0
    assert model.input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 5)
    probs = await model.predict(np.zeros((2, 224, 224, 3), np.float32))
    assert probs.shape == (2, 5)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize(
    ("case", "damage", "variant", "reason"),
    [
        ("corrupt-uint8", {"uint8/group1-shard1of1.bin": "flip"}, "float16", "sha256"),
        ("missing-uint8", {"uint8/group1-shard1of1.bin": "delete"}, "float16", "HTTP 404"),
        ("truncated-uint8", {"uint8/group1-shard1of1.bin": "truncate"}, "float16", "truncated"),
        ("garbled-uint8", {"uint8/model.json": "garble"}, "float16", "malformed model.json"),
        (
            "wrong-input-uint8",
            {"uint8/model.json": "reshape"},
            "float16",
            "the model takes input (N, 299, 299, 3) but the manifest says (N, 224, 224, 3)",
        ),
        (
            "quantized-both-bad",
            {"uint8/group1-shard1of1.bin": "delete", "float16/group1-shard2of2.bin": "flip"},
            "float32",
            "HTTP 404",
        ),
    ],
)
def test_broken_quantized_variant_falls_back_to_full_precision(
    pyodide: Any, scratch: Path, case: str, damage: dict[str, str], variant: str, reason: str
) -> None:
    """Each kind of damage to the preferred variant is caught, logged with its reason, and skipped."""
    url = _broken_copy(scratch, case, damage)
    got = pyodide.run(f"""
        import numpy as np, testutil
        from pyapp.model import Model
        from pyapp.memory import assert_no_leaks
        await testutil.use_backend("wasm")
        model = await Model.load({url!r})
        probs = await model.predict(np.zeros((1, 224, 224, 3), np.float32))
        info = model.load_info
        model.dispose()
        __value__ = [info.variant, info.attempts, probs.shape]
    """)
    assert got[0] == variant
    assert "uint8" in got[1]
    assert reason in got[1]["uint8"], got[1]
    assert got[2] == [1, 5]


def test_every_variant_broken_is_one_clear_error_and_leaks_nothing(pyodide: Any, scratch: Path) -> None:
    url = _broken_copy(
        scratch,
        "all-broken",
        {"uint8/group1-shard1of1.bin": "flip", "float16/model.json": "flip", "float32/group1-shard3of3.bin": "flip"},
    )
    got = pyodide.run(f"""
        import testutil
        from pyapp.errors import ModelIntegrityError
        from pyapp.memory import assert_no_leaks
        from pyapp.model import Model
        await testutil.use_backend("wasm")
        with assert_no_leaks():
            try:
                await Model.load({url!r})
            except ModelIntegrityError as exc:
                __value__ = [str(exc), exc.attempts]
    """)
    message, attempts = got
    assert "no variant could be loaded" in message
    assert sorted(attempts) == ["float16", "float32", "uint8"]
    assert all("sha256" in why for why in attempts.values())


def test_missing_manifest_and_bad_manifest(pyodide: Any, scratch: Path) -> None:
    (scratch / "badmanifest").mkdir(exist_ok=True)
    (scratch / "badmanifest" / "manifest.json").write_text('{"name": "x", "input": {"size": -1}}')
    got = pyodide.run("""
        from pyapp.errors import ModelLoadError
        from pyapp.model import Model
        out = []
        for url in ["/__scratch__/nope/manifest.json", "/__scratch__/badmanifest/manifest.json"]:
            try:
                await Model.load(url)
            except ModelLoadError as exc:
                out.append(str(exc))
        __value__ = out
    """)
    assert got[0] == "cannot fetch /__scratch__/nope/manifest.json: HTTP 404"
    assert got[1] == "invalid model manifest: input.size: expected a positive integer, got -1"


@run_in_pyodide
async def test_lifecycle_dispose_twice_and_misuse_after(pyodide: Any) -> None:
    import js
    import numpy as np
    import testutil

    from pyapp.errors import DisposedError
    from pyapp.model import Model, ModelState

    await testutil.use_backend("wasm")
    start = int(js.tf.memory().numTensors)
    async with await Model.load(testutil.MANIFEST, warmup=False) as model:
        assert model.state is ModelState.READY
        assert int(js.tf.memory().numTensors) > start
    assert model.state is ModelState.DISPOSED
    model.dispose()  # safe twice
    assert int(js.tf.memory().numTensors) == start, "weights freed"
    for call in (model.predict(np.zeros((1, 224, 224, 3), np.float32)), model.warmup()):
        try:
            await call
        except DisposedError as exc:
            assert "disposed" in str(exc)
        else:
            raise AssertionError("use after dispose was allowed")
    try:
        async with model:
            pass
    except DisposedError:
        pass
    else:
        raise AssertionError("async with on a disposed model was allowed")
    assert "disposed" in repr(model)


@run_in_pyodide
async def test_dispose_while_predict_awaits_is_a_clear_error_and_leaks_nothing(pyodide: Any) -> None:
    """dispose() from another task while predict() waits for its result (or for a reload of the weights after
    a lost backend): the awaiting caller gets DisposedError, and every tensor is freed. On webgl, where reading
    the result back is awaited (wasm and cpu read it at once, tensors.to_numpy: nothing to race there)."""
    import asyncio

    import js
    import numpy as np
    import testutil

    from pyapp.errors import DisposedError
    from pyapp.model import Model, ModelState

    await testutil.use_backend("webgl")
    start = int(js.tf.memory().numTensors)
    x = np.zeros((1, 224, 224, 3), np.float32)
    model = await Model.load(testutil.MANIFEST, warmup=False)
    await model.predict(x)  # the first prediction compiles; the next ones are what is raced
    pending = asyncio.ensure_future(model.predict(x))
    await asyncio.sleep(0)  # the prediction runs up to its first await: reading the output back
    assert not pending.done()
    model.dispose()
    await testutil.raises(pending, DisposedError, "was disposed while this prediction ran")
    assert model.state is ModelState.DISPOSED
    assert int(js.tf.memory().numTensors) == start, "weights and the prediction's tensors freed"
    # While the weights reload after a re-created backend: the reload finishes, then is freed.
    model = await Model.load(testutil.MANIFEST, warmup=False)
    model._generation -= 1  # as after a backend re-creation: the next predict reloads the weights
    pending = asyncio.ensure_future(model.predict(x))
    await asyncio.sleep(0)
    assert model.state is ModelState.LOADING
    model.dispose()
    await testutil.raises(pending, DisposedError, "disposed while it reloaded")
    assert int(js.tf.memory().numTensors) == start, "the reloaded weights were freed too"


@run_in_pyodide
async def test_input_signature_errors_are_clear(pyodide: Any, backend: str) -> None:
    import js
    import numpy as np
    import testutil

    from pyapp.errors import InvalidInput

    model = (await testutil.classifier(backend)).model
    start = int(js.tf.memory().numTensors)
    cases = [
        (np.zeros((224, 224, 3), np.float32), "expects input of rank 4 (N, 224, 224, 3), got shape (224, 224, 3)"),
        (np.zeros((1, 224, 225, 3), np.float32), "expects shape (N, 224, 224, 3), got (1, 224, 225, 3) (axis 2)"),
        (np.zeros((0, 224, 224, 3), np.float32), "empty batch"),
        (np.array([["a"]]), "must be numeric"),
    ]
    for x, message in cases:
        try:
            await model.predict(x)
        except InvalidInput as exc:
            assert message in str(exc), str(exc)
        else:
            raise AssertionError(f"accepted {x.shape}")
    assert int(js.tf.memory().numTensors) == start


@run_in_pyodide
async def test_batched_predict_matches_one_by_one(pyodide: Any) -> None:
    import numpy as np
    import testutil

    model = (await testutil.classifier("wasm")).model
    x = np.random.default_rng(3).random((5, 224, 224, 3), dtype=np.float32)
    batched = await model.predict_batched(x, batch_size=2)
    single = np.concatenate([await model.predict(x[i : i + 1]) for i in range(5)])
    assert batched.shape == (5, 5)
    assert np.abs(batched - single).max() <= 1e-5


@run_in_pyodide
async def test_results_agree_across_backends(pyodide: Any) -> None:
    """Same real photo, three backends: probabilities agree within 1e-3."""
    import numpy as np
    import testutil

    photo = await testutil.fetch("/vendor/samples/coffee.png")
    results = {}
    for backend in ("wasm", "webgl", "cpu"):
        clf = await testutil.classifier(backend)
        results[backend] = await clf.model.predict(clf.prepare(photo))
    for backend in ("webgl", "cpu"):
        diff = float(np.abs(results[backend] - results["wasm"]).max())
        assert diff <= 1e-3, (backend, diff, results)


@pytest.mark.parametrize("backend", [WEBGPU], indirect=True)
@run_in_pyodide(timeout=600)
async def test_every_variant_on_webgpu_agrees_with_wasm(pyodide: Any, backend: str) -> None:
    """WebGPU, first in the default chain: each variant of the model (uint8, float16, float32) loads there,
    verified, and gives wasm's probabilities for two real photos within 1e-3, in one batch (a prediction
    takes seconds on SwiftShader's Vulkan here, so one batch per variant)."""
    import numpy as np
    import testutil

    from pyapp.classifier import ImageClassifier

    photos = [await testutil.fetch(f"/vendor/samples/{name}") for name in ("chelsea.png", "rocket.jpg")]
    wasm = await testutil.classifier("wasm")
    x = np.concatenate([wasm.prepare(photo) for photo in photos])
    expected = await wasm.model.predict(x)
    await testutil.use_backend("webgpu")
    for variant in ("uint8", "float16", "float32"):
        async with await ImageClassifier.load(testutil.MANIFEST, variants=(variant,)) as clf:
            assert clf.model.load_info.variant == variant
            got = await clf.model.predict(x)
        reference = expected if variant == "uint8" else got  # other variants: checked against their own wasm run
        if variant != "uint8":
            await testutil.use_backend("wasm")
            async with await ImageClassifier.load(testutil.MANIFEST, variants=(variant,)) as on_wasm:
                reference = await on_wasm.model.predict(x)
            await testutil.use_backend("webgpu")
        diff = float(np.abs(got - reference).max())
        assert diff <= 1e-3, (variant, diff, got, reference)
        assert [int(i) for i in got.argmax(axis=1)] == [int(i) for i in reference.argmax(axis=1)]


@pytest.mark.parametrize("backend", MODEL_BACKENDS, indirect=True)
@run_in_pyodide
async def test_graph_model_loads_and_predicts(pyodide: Any, backend: str) -> None:
    """A TF.js graph model (NSFWJS MobileNetV2Mid) goes through the same checked loader; NSFWJS agrees (on two
    photos; one on webgl, ~1 s a prediction on SwiftShader here)."""
    import js
    import numpy as np
    import testutil
    from pyodide.code import run_js

    from pyapp.classifier import ImageClassifier

    await testutil.use_backend(backend)
    async with await ImageClassifier.load("/models/nsfw-mobilenet-v2-mid/manifest.json") as clf:
        model = clf.model
        assert model.manifest.variants[0].format == "graph-model"
        assert model.input_shape == (None, 224, 224, 3)
        probs = await model.predict(np.zeros((2, 224, 224, 3), np.float32))
        assert probs.shape == (2, 5)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
        nsfwjs = await run_js("import('/vendor/nsfwjs/core.js')")
        options = js.Object.fromEntries([["size", 224], ["type", "graph"]])
        reference = await nsfwjs.load("/models/nsfw-mobilenet-v2-mid/uint8/model.json", options)
        for name in ("chelsea.png", "coffee.png") if backend == "wasm" else ("coffee.png",):
            img = js.document.createElement("img")
            img.src = "/vendor/samples/" + name
            await img.decode()
            theirs = {r.className: float(r.probability) for r in await reference.classify(img)}
            ours = dict(await clf.classify(await testutil.fetch("/vendor/samples/" + name), path="numpy"))
            assert max(ours, key=ours.get) == max(theirs, key=theirs.get), (name, ours, theirs)
            assert max(abs(ours[k] - theirs[k]) for k in ours) <= 0.02, (name, ours, theirs)
        reference.dispose()


def test_load_reports_typed_progress_in_order(pyodide: Any, scratch: Path) -> None:
    """progress=callback gets frozen LoadProgress events: the manifest, every file's bytes up to its
    size, a skipped (broken) variant, build, warm-up, ready; totals are the manifest's files' sizes.
    Through ImageClassifier.load (its **kwargs) and TransferClassifier.create as well."""
    # A shard, not model.json, is missing: model.json is fetched (and checked) before the shards.
    url = _broken_copy(scratch, "progress", {"uint8/group1-shard1of1.bin": "delete"})
    manifest = json.loads((MODEL / "manifest.json").read_text())
    sizes = {
        v["name"]: {f"{url.rsplit('/', 1)[0]}/{rel}": (MODEL / rel).stat().st_size for rel in v["files"]}
        for v in manifest["variants"]
    }
    got = pyodide.run(
        f"""
import dataclasses, testutil
from pyapp.classifier import ImageClassifier
from pyapp.progress import LoadProgress
from pyapp.transfer import TransferClassifier
await testutil.use_backend("wasm")
events = []
async def on_progress(event):  # a coroutine function is awaited
    events.append(event)
clf = await ImageClassifier.load({url!r}, progress=on_progress)
clf.dispose()
assert all(isinstance(e, LoadProgress) for e in events)
try:
    events[0].loaded = 1
except dataclasses.FrozenInstanceError:
    frozen = True
learner_events = []
learner = await TransferClassifier.create({url!r}, ["a", "b"], progress=learner_events.append)
learner.dispose()
__value__ = {{
    "frozen": frozen,
    "events": [dataclasses.asdict(e) for e in events],
    "learner": [e.stage for e in learner_events],
}}
"""
    )
    assert got["frozen"] is True
    events = got["events"]
    stages = [e["stage"] for e in events]
    # The uint8 variant is broken (its shard is missing): skipped, then float16 loads.
    first_skip, build = stages.index("skipped"), stages.index("build")
    manifest_done = stages.index("download")
    assert set(stages[:manifest_done]) == {"manifest"}
    assert stages[-3:] == ["build", "warmup", "ready"]
    assert set(stages[manifest_done:first_skip]) == {"download"}
    assert set(stages[first_skip + 1 : build]) == {"download"}
    assert events[first_skip]["variant"] == "uint8"
    assert "group1-shard1of1.bin" in events[first_skip]["detail"]
    manifest_events = [e for e in events if e["stage"] == "manifest"]
    assert manifest_events[-1]["loaded"] == manifest_events[-1]["total"] > 0
    loaded = [e for e in events[first_skip + 1 : build]]
    assert {e["variant"] for e in loaded} == {"float16"}
    per_file: dict[str, list[dict[str, Any]]] = {}
    for e in loaded:
        per_file.setdefault(e["file"], []).append(e)
    assert per_file.keys() == sizes["float16"].keys(), "every file of the variant, each once"
    for file, file_events in per_file.items():
        assert file_events[0]["loaded"] == 0
        counts = [e["loaded"] for e in file_events]
        assert counts == sorted(counts), f"{file}: bytes only grow"
        assert file_events[-1]["loaded"] == file_events[-1]["total"] == sizes["float16"][file], file
        assert all(e["total"] in (None, sizes["float16"][file]) for e in file_events), "a total is never wrong"
    total = sum(sizes["float16"].values())
    assert events[-1] == {
        "stage": "ready",
        "file": "",
        "loaded": total,
        "total": total,
        "variant": "float16",
        "detail": "",
    }
    assert got["learner"][0] == "manifest"
    assert got["learner"][-1] == "ready"


@run_in_pyodide
async def test_predict_now_is_predict_without_a_turn_where_nothing_needs_awaiting(pyodide: Any) -> None:
    """``predict_now`` (a video frame callback's prediction) gives ``predict``'s answer on wasm and cpu, at once;
    None where it would have to await (webgl's readback, weights that need a reload), so the caller awaits
    ``predict``; DisposedError once disposed; and it leaves no tensor behind."""
    import js
    import numpy as np
    import testutil

    from pyapp.errors import DisposedError

    x = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    for backend in ("wasm", "webgl"):
        model = (await testutil.classifier(backend)).model
        start = int(js.tf.memory().numTensors)
        now = model.predict_now(x)
        if backend == "wasm":
            assert now is not None
            np.testing.assert_allclose(now, await model.predict(x), rtol=0, atol=1e-6)
        else:
            assert now is None
        assert int(js.tf.memory().numTensors) == start
    await testutil.use_backend("wasm")
    model = (await testutil.classifier("wasm")).model
    model._generation -= 1  # as after a backend re-creation: the weights need a reload, which is awaited
    try:
        assert model.predict_now(x) is None
    finally:
        model._generation += 1
    from pyapp.model import Model

    other = await Model.load(testutil.MANIFEST, warmup=False)
    other.dispose()

    async def now() -> Any:
        return other.predict_now(x)

    await testutil.raises(now(), DisposedError, "predict_now")
