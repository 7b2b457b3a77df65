"""pyapp.training in Chromium: the seed's CNN trained from Python on real digits, progress, states and errors,
training where a backend lacks a kernel, and no tensor or proxy left by a whole run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from harness import run_in_pyodide

from pyapp.errors import InvalidInput
from pyapp.training import check_targets, log_name, one_hot


def test_targets_are_checked_for_the_loss_on_the_host() -> None:
    assert check_targets([[1], [0]], "sparse_categorical_crossentropy", 2, 3).tolist() == [[1.0], [0.0]]
    assert check_targets(one_hot([1, 2], 3), "categorical_crossentropy", 2, 3).shape == (2, 3)
    assert check_targets([0.5, 2.0], "mse", 2, 1).shape == (2, 1)
    for args, message in [
        (([0, 1], "categorical_crossentropy", 2, 3), "needs one-hot targets of shape (2, 3)"),
        (([0.5, 1], "sparse_categorical_crossentropy", 2, 3), "labels must be integers in [0, 3)"),
        (([0, 1, 2], "sparse_categorical_crossentropy", 2, 3), "x has 2 examples but y has 3"),
        (([[0, 1]], "mse", 1, 3), "targets must have shape (1, 3)"),
        (([np.nan], "mse", 1, 1), "NaN"),
        ((["a"], "mse", 1, 1), "numeric"),
    ]:
        with pytest.raises(InvalidInput) as info:
            check_targets(*args)
        assert message in str(info.value)
    assert log_name("val_acc") == "val_accuracy"


@run_in_pyodide(timeout=600)
async def test_seed_cnn_learns_digits_on_wasm_with_no_leaks(pyodide: Any) -> None:
    """conv 32/64/128 + max-pooling, dense 256, dropout, softmax, from Python, on scikit-learn's digits:
    at least 95% on 397 held-out digits; the whole run leaves tf.memory() and the proxy count as they were."""
    import gc

    import numpy as np
    import testutil

    from pyapp import datasets
    from pyapp.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
    from pyapp.memory import assert_no_leaks
    from pyapp.training import EpochEnd, Sequential, TrainingState

    await testutil.use_backend("wasm")
    x, y = await datasets.digits()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    events: list[EpochEnd] = []

    async def on_epoch(event: EpochEnd) -> None:  # async callbacks are awaited before the next epoch
        events.append(event)

    gc.collect()
    with assert_no_leaks():
        model = Sequential(
            [
                Conv2D(32, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
                MaxPool2D(2),
                Conv2D(64, 3, activation="relu", padding="same"),
                MaxPool2D(2),
                Conv2D(128, 3, activation="relu", padding="same"),
                MaxPool2D(2),
                Flatten(),
                Dense(256, activation="relu"),
                Dropout(0.5),
                Dense(10, activation="softmax"),
            ],
            name="digits_cnn",
        )
        assert model.state is TrainingState.BUILT
        assert model.count_params() == 128_266
        assert "dense_Dense" in model.summary()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = await model.fit(x[:1400], y[:1400], epochs=12, batch_size=32, validation_split=0.1, on_epoch=on_epoch)
        assert history.backend == "wasm", history.note
        scores = await model.evaluate(x[1400:], y[1400:])
        probs = await model.predict(x[1400:1410])
        model.dispose()
        gc.collect()
    assert [e.epoch for e in events] == list(range(12))
    assert events[-1].progress == 1.0
    assert set(events[-1].logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert scores["accuracy"] >= 0.95, scores
    assert probs.shape == (10, 10)
    assert np.allclose(probs.sum(1), 1, atol=1e-4)


@run_in_pyodide
async def test_states_and_bad_input_are_clear_errors_that_leak_nothing(pyodide: Any) -> None:
    import numpy as np
    import testutil

    from pyapp.errors import DisposedError, InvalidInput, StateError, TidyError
    from pyapp.layers import Dense
    from pyapp.memory import assert_no_leaks
    from pyapp.tensors import tidy
    from pyapp.training import Sequential

    await testutil.use_backend("wasm")
    with assert_no_leaks():
        for layers, message in [
            ([], "at least one layer"),
            ([Dense(2)], "first layer needs input_shape"),
            (["dense"], "not a pyapp.layers layer"),
        ]:
            try:
                Sequential(layers)
            except InvalidInput as exc:
                assert message in str(exc), exc
            else:
                raise AssertionError(f"accepted {layers}")
        model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
        x = np.ones((5, 4), np.float32)
        y = np.array([0, 1, 2, 0, 1])
        try:
            await model.fit(x, y)
        except StateError as exc:
            assert "call compile() first" in str(exc)
        model.compile(loss="sparse_categorical_crossentropy")
        for bad_x, bad_y, kwargs, message in [
            (np.ones((5, 3)), y, {}, "takes inputs of shape (N, 4), got (5, 3)"),
            (x, y[:4], {}, "x has 5 examples but y has 4"),
            (x, y + 5, {}, "labels must be integers in [0, 3)"),
            (x[:0], y[:0], {}, "no examples"),
            (x, y, {"epochs": 0}, "epochs must be a positive integer"),
            (x, y, {"validation_split": 1.0}, "validation_split must be in [0, 1)"),
        ]:
            try:
                await model.fit(bad_x, bad_y, **kwargs)
            except InvalidInput as exc:
                assert message in str(exc), exc
            else:
                raise AssertionError(message)
        for call, message in [
            (lambda: model.compile(optimizer="adamw"), "unknown optimizer"),
            (lambda: model.compile(loss="focal"), "unknown loss"),
        ]:
            try:
                call()
            except InvalidInput as exc:
                assert message in str(exc)
        with tidy():
            try:
                await model.fit(x, y)
            except TidyError:
                pass
            else:
                raise AssertionError("fit inside tidy was allowed")
        model.dispose()
        model.dispose()  # safe twice
    try:
        await model.predict(x)
    except DisposedError as exc:
        assert "disposed" in str(exc)
    else:
        raise AssertionError("predict after dispose was allowed")


@run_in_pyodide
async def test_stop_from_the_callback_ends_training_early(pyodide: Any) -> None:
    import numpy as np
    import testutil

    from pyapp.layers import Dense
    from pyapp.training import Sequential

    await testutil.use_backend("wasm")
    async with Sequential([Dense(1, input_shape=(2,))]) as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[], learning_rate=0.05)
        history = await model.fit(
            np.ones((8, 2)), np.full(8, 2.0), epochs=50, on_epoch=lambda e: model.stop() if e.epoch == 2 else None
        )
        assert len(history.epochs) == 3
        assert history.stopped_early
        await model.fit(np.ones((8, 2)), np.full(8, 2.0), epochs=100)
        assert abs(float((await model.predict(np.ones((1, 2))))[0, 0]) - 2.0) < 0.05


@run_in_pyodide(timeout=600)
async def test_a_backend_without_a_gradient_kernel_trains_on_cpu_and_comes_back(pyodide: Any) -> None:
    """Take wasm's Conv2DBackpropFilter away (as stock TF.js has it): fit says so, trains on cpu, returns to wasm."""
    import js
    import numpy as np
    import testutil

    from pyapp import kernels, runtime
    from pyapp.layers import Conv2D, Dense, Flatten
    from pyapp.training import Sequential

    await testutil.use_backend("wasm")
    js.tf.unregisterKernel("Conv2DBackpropFilter", "wasm")
    try:
        model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 1)), Flatten(), Dense(2, activation="softmax")])
        assert model.missing_gradients("wasm") == ["Conv2DBackpropFilter"]
        model.compile(loss="sparse_categorical_crossentropy")
        history = await model.fit(np.random.default_rng(0).random((16, 6, 6, 1)), np.arange(16) % 2, epochs=2)
        assert history.backend == "cpu"
        assert history.note == "trained on cpu: TF.js's wasm backend has no Conv2DBackpropFilter kernel"
        assert str(js.tf.getBackend()) == "wasm"
        assert runtime.current().backend == "wasm"
        assert (await model.predict(np.zeros((1, 6, 6, 1)))).shape == (1, 2)
        model.dispose()
    finally:
        kernels.register_wasm_kernels()
    assert js.tf.getKernel("Conv2DBackpropFilter", "wasm") is not None
