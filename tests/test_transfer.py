"""pyapp.transfer in Chromium: MobileNetV2 features + a head trained on a few labelled real photos separates
faces from non-faces; the learner saves, reloads in a fresh page and predicts the same; misuse is clear."""

from __future__ import annotations

import json
from typing import Any

from harness import Pyodide, run_in_pyodide

from pyapp.errors import InvalidInput
from pyapp.transfer import feature_layer


def test_feature_layer_is_the_input_of_the_first_dense() -> None:
    layers = [("in", "InputLayer"), ("conv", "Conv2D"), ("flatten_1", "Flatten"), ("d1", "Dense"), ("d2", "Dense")]
    assert feature_layer(layers) == "flatten_1"
    assert feature_layer(layers, "conv") == "conv"
    for bad, wanted in [(layers, "nope"), ([("a", "Conv2D")], None)]:
        try:
            feature_layer(bad, wanted)
        except InvalidInput:
            pass
        else:
            raise AssertionError(wanted)


TRAIN = """
import gc, numpy as np, testutil
from pyapp import datasets, memory
from pyapp.transfer import TransferClassifier

await testutil.use_backend("wasm")
images, labels = await datasets.faces()
rng = np.random.default_rng(7)
faces = rng.permutation(np.flatnonzero(labels == 1))
others = rng.permutation(np.flatnonzero(labels == 0))
held_out = np.concatenate([faces[10:], others[10:]])
base = await testutil.classifier("wasm")
gc.collect()
before = memory.snapshot()
learner = await TransferClassifier.create(base, ["not a face", "face"])
assert learner.extractor.layer == "flatten_1" and learner.extractor.dim == 1280
await learner.add_many([images[i] for i in others[:10]], "not a face")
for i in faces[:10]:
    await learner.add(images[i], "face")
assert learner.counts() == {"not a face": 10, "face": 10}
history = await learner.train(epochs=40, seed=0)  # seeded: the same head every run
predictions = await learner.classify_many([images[i] for i in held_out])
right = sum((p[0][0] == "face") == bool(labels[i]) for p, i in zip(predictions, held_out))
probe = [images[i] for i in held_out[:4]]
probe_out = [[list(x) for x in p] for p in await learner.classify_many(probe)]
files = await learner.to_files("faces")
await learner.save("indexeddb://pytest-faces")
learner.dispose()
gc.collect()
after = memory.snapshot()
__value__ = {
    "accuracy": right / len(held_out), "n": len(held_out), "train_accuracy": history.epochs[-1].logs["accuracy"],
    "leaks": memory.leak_report(before, after), "probe": [p.tolist() for p in probe], "probe_out": probe_out,
    "files": {k: list(v) for k, v in files.items()},
}
"""

RELOAD = """
import numpy as np, testutil
from pyapp.transfer import TransferClassifier
from pyapp import saving
await testutil.use_backend("wasm")
probe = [np.array(p, np.uint8) for p in PROBE]
out = []
for source in ("indexeddb://pytest-faces", {k: bytes(v) for k, v in FILES.items()}):
    learner = await TransferClassifier.load(source)   # loads the base model named in the metadata
    assert learner.classes == ["not a face", "face"]
    out.append([[list(x) for x in p] for p in await learner.classify_many(probe)])
    learner.dispose()
await saving.remove_saved("indexeddb://pytest-faces")
__value__ = out
"""


def test_head_on_mobilenet_features_separates_real_faces_and_reloads(browser: Any, server_url: str) -> None:
    """10 labelled photos per class; 180 held-out photos classified; no leak; the same answers after a reload.

    The head is trained with seed 0 (weights, shuffles, dropout), so the run is the same every time. Over
    training seeds 0-19 (benchmarks/seeds.py, wasm, this split) the held-out accuracy was min 0.9667
    (174/180), median 0.9778, max 0.9778 (176); seed 0 gives 0.9778. The 0.90 bar (162 right) keeps a
    margin of 12 photos below the worst seed.
    """
    context = browser.new_context()
    try:
        trainer = Pyodide.boot(context.new_page(), server_url)
        got = trainer.run(TRAIN, timeout=600)
        trainer.page.close()
        assert got["n"] == 180
        assert got["accuracy"] >= 0.9, got["accuracy"]
        assert got["leaks"] == []
        assert sorted(got["files"]) == ["faces.json", "faces.weights.bin"]
        meta = json.loads(bytes(got["files"]["faces.json"]))["userDefinedMetadata"]
        assert meta["pyapp_transfer"]["classes"] == ["not a face", "face"]
        assert meta["pyapp_transfer"]["base"] == "/models/nsfw-mobilenet-v2/manifest.json"
        assert meta["pyapp_compile"]["loss"] == "sparse_categorical_crossentropy"
        code = f"PROBE = {json.dumps(got['probe'])}\nFILES = {json.dumps(got['files'])}\n" + RELOAD
        reloaded = Pyodide.boot(context.new_page(), server_url).run(code, timeout=600)
        for answers in reloaded:
            for ours, theirs in zip(answers, got["probe_out"], strict=True):
                assert [label for label, _ in ours] == [label for label, _ in theirs]
                assert max(abs(a[1] - b[1]) for a, b in zip(ours, theirs, strict=True)) < 1e-5
    finally:
        context.close()


@run_in_pyodide
async def test_misuse_is_a_clear_error(pyodide: Any) -> None:
    import numpy as np
    import testutil

    from pyapp.classifier import ImageClassifier
    from pyapp.errors import InvalidInput, ModelLoadError, StateError
    from pyapp.transfer import TransferClassifier

    base = await testutil.classifier("wasm")
    for classes in (["only"], ["a", "a"], ["a", ""]):
        try:
            TransferClassifier(None, classes)  # type: ignore[arg-type]
        except InvalidInput:
            pass
        else:
            raise AssertionError(classes)
    learner = await TransferClassifier.create(base, ["cat", "dog"])
    image = np.zeros((32, 32, 3), np.uint8)
    for call, error, message in [
        (learner.add(image, "bird"), InvalidInput, "unknown class 'bird'"),
        (learner.classify(image), StateError, "train() first"),
        (learner.train(), StateError, "no examples of ['cat', 'dog'] yet"),
    ]:
        try:
            await call
        except error as exc:
            assert message in str(exc), exc
        else:
            raise AssertionError(message)
    graph = await ImageClassifier.load("/models/nsfw-mobilenet-v2-mid/manifest.json", warmup=False)
    try:
        await TransferClassifier.create(graph, ["a", "b"])
    except InvalidInput as exc:
        assert "needs a layers model" in str(exc)
    else:
        raise AssertionError("a graph model cannot be cut")
    graph.dispose()
    try:
        await TransferClassifier.load("indexeddb://never-saved")
    except ModelLoadError as exc:
        assert "could not load" in str(exc)
    learner.dispose()
