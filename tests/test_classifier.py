"""pyapp.classifier in Chromium: labels, top-k, one result per image, batching, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import MODEL_BACKENDS
from harness import run_in_pyodide

from pyapp.classifier import top_k
from pyapp.errors import InvalidInput
from pyapp.predictions import Predictions


def test_top_k_orders_and_clamps() -> None:
    probs = np.array([0.05, 0.6, 0.1, 0.2, 0.05], np.float32)
    labels = ["a", "b", "c", "d", "e"]
    assert [label for label, _ in top_k(probs, labels, 3)] == ["b", "d", "c"]
    assert len(top_k(probs, labels, 99)) == 5
    assert len(top_k(probs, labels, 0)) == 1
    with pytest.raises(InvalidInput, match="expected 5 probabilities"):
        top_k(probs[:4], labels, 2)


def test_results_are_predictions_that_notebooks_show_as_a_table() -> None:
    """What classify() returns is still a list of (label, probability) pairs, with the top label at hand
    and a table for notebooks and the playground (before, a bare list showed as its repr)."""
    top = top_k(np.array([0.1, 0.7, 0.2], np.float32), ["cat", "dog", "fox"], 2)
    assert isinstance(top, Predictions)
    assert top == [("dog", 0.7), ("fox", 0.2)]
    assert (top.label, top.probability) == ("dog", 0.7)
    assert top._repr_html_().count("<meter") == 2


@pytest.mark.parametrize("backend", MODEL_BACKENDS, indirect=True)
@run_in_pyodide
async def test_classify_real_photos(pyodide: Any, backend: str) -> None:
    """Safe-for-work photos from scikit-image come out safe (Neutral/Drawing), as sorted (label, prob) pairs."""
    import testutil

    clf = await testutil.classifier(backend)
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        top = await clf.classify(await testutil.fetch(f"/vendor/samples/{name}"))
        assert top[0][0] in ("Neutral", "Drawing"), (name, top)
        assert sum(p for label, p in top if label in ("Porn", "Hentai", "Sexy")) < 0.1, (name, top)
        assert len(top) == 5
        probs = [p for _, p in top]
        assert probs == sorted(probs, reverse=True)
        assert abs(sum(probs) - 1) < 1e-3
    assert len(await clf.classify(await testutil.fetch("/vendor/samples/chelsea.png"), top=2)) == 2


@run_in_pyodide
async def test_classify_many_is_one_result_per_image(pyodide: Any) -> None:
    import testutil

    from pyapp.errors import InvalidInput

    clf = await testutil.classifier("wasm")
    photos = [await testutil.fetch(f"/vendor/samples/{n}") for n in ("chelsea.png", "astronaut.png", "camera.png")]
    many = await clf.classify_many(photos, batch_size=2)
    assert len(many) == 3
    for photo, result in zip(photos, many, strict=True):
        single = await clf.classify(photo)
        assert [lbl for lbl, _ in single] == [lbl for lbl, _ in result]
        assert max(abs(a - b) for (_, a), (_, b) in zip(single, result, strict=True)) < 1e-4
    assert await clf.classify_many([]) == []
    try:
        await clf.classify_many(photos[0])
    except InvalidInput as exc:
        assert "list of images" in str(exc)
    else:
        raise AssertionError("bytes accepted as a list")


@run_in_pyodide
async def test_bad_image_is_invalid_image_and_leaks_nothing(pyodide: Any, backend: str) -> None:
    import testutil

    from pyapp.errors import InvalidImage
    from pyapp.memory import assert_no_leaks

    clf = await testutil.classifier(backend)
    with assert_no_leaks():
        for data, cause in [(b"", "empty"), (b"<!doctype html><p>hi", "HTML"), (b"\x89PNG\r\n\x1a\nxx", "")]:
            try:
                await clf.classify(data)
            except InvalidImage as exc:
                assert cause in str(exc)
            else:
                raise AssertionError(f"{data[:10]!r} accepted")


@run_in_pyodide
async def test_a_disposed_classifier_refuses_async_with(pyodide: Any) -> None:
    """One lifecycle for every disposable (pyapp.lifecycle): dispose() twice is fine, and afterwards `async with`
    raises DisposedError instead of handing back a classifier without weights (it used to)."""
    import testutil

    from pyapp.classifier import ImageClassifier
    from pyapp.errors import DisposedError

    await testutil.use_backend("wasm")
    clf = await ImageClassifier.load(testutil.MANIFEST)
    async with clf:
        assert not clf.disposed
    assert clf.disposed  # the block disposed it
    clf.dispose()
    try:
        async with clf:
            raise AssertionError("a disposed classifier was usable in async with")
    except DisposedError as exc:
        assert str(exc) == "async with: model 'nsfw-mobilenet-v2' was disposed"
