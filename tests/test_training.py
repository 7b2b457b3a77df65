"""pyapp.training in Chromium: the seed's CNN trained from Python on real digits, progress, states and errors,
training where a backend lacks a kernel, and no tensor or proxy left by a whole run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from harness import run_in_pyodide

from pyapp.errors import InvalidInput
from pyapp.training import check_seed, check_targets, derive_seed, log_name, one_hot


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


def test_seeds_are_checked_and_each_use_gets_its_own() -> None:
    assert check_seed(None) is None
    assert check_seed(np.uint8(7)) == 7
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(InvalidInput, match="seed must be a non-negative integer or None"):
            check_seed(bad)
    seeds = {derive_seed(s, p, *w) for s in (0, 1) for p in (0, 1, 2) for w in ((), (0,), (0, 0), (1, 0), (0, 1))}
    assert len(seeds) == 30  # no two uses share a stream (SeedSequence alone maps [x] and [x, 0] alike)
    assert all(1 <= s < 2**31 for s in seeds)  # TF.js reads a seed of 0 as "no seed"


@run_in_pyodide(timeout=600)
async def test_seed_cnn_learns_digits_on_wasm_with_no_leaks(pyodide: Any) -> None:
    """conv 32/64/128 + max-pooling, dense 256, dropout, softmax, from Python, on scikit-learn's digits:
    at least 95% on 397 held-out digits; the whole run leaves tf.memory() and the proxy count as they were.

    Seeded (weights, shuffles, dropout), so the run is the same every time. Over training seeds 0-19
    (benchmarks/seeds.py, wasm, 2-core machine) the held-out accuracy was min 0.9647 (383/397, seed 17),
    median 0.9798, max 0.9924 (394); seed 0, used here, gives 0.9773 (388). The 0.95 bar (378 right)
    keeps a margin of 5 digits below the worst seed, 10 below seed 0. Unseeded runs went as low as 0.929.
    """
    import gc

    import numpy as np
    import testutil

    from pyapp import datasets
    from pyapp.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
    from pyapp.memory import assert_no_leaks
    from pyapp.training import EpochEnd, Sequential, TrainingState

    seed = 0  # the training seed (benchmarks/seeds.py measures others)
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
            seed=seed,
        )
        assert model.state is TrainingState.BUILT
        assert model.count_params() == 128_266
        assert "dense_Dense" in model.summary()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = await model.fit(
            x[:1400], y[:1400], epochs=12, batch_size=32, validation_split=0.1, on_epoch=on_epoch, seed=seed
        )
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


@run_in_pyodide(timeout=300)
async def test_the_same_seed_trains_the_same_model_and_another_seed_does_not(pyodide: Any) -> None:
    """Seeded weights, shuffles and dropout masks: two runs with one seed end with the same weights, bit for
    bit, and the same logs; another seed, or none, ends elsewhere. Dropout's seed changes as training goes
    (one fixed seed would give every batch the same mask) and is taken off when fit ends."""
    import numpy as np
    import testutil

    from pyapp.layers import Dense, Dropout
    from pyapp.training import Sequential

    await testutil.use_backend("wasm")
    rng = np.random.default_rng(0)
    x = rng.random((60, 8), dtype=np.float32)
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).astype(int)

    async def train(seed: int | None) -> tuple[bytes, dict[str, list[float]], list[Any], Any]:
        layers = [Dense(16, activation="relu", input_shape=(8,)), Dropout(0.5), Dense(2, activation="softmax")]
        async with Sequential(layers, seed=seed) as model:
            dropout = model.js_model.layers[1]
            model.compile(loss="sparse_categorical_crossentropy")
            seen: list[Any] = []

            def record(_: Any) -> None:  # Dropout's seed at each epoch's end
                seen.append(dropout.seed)

            history = await model.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, seed=seed, on_epoch=record)
            weights = (await model.to_files())["model.weights.bin"]
            return weights, history.history, seen, dropout.seed

    first, again, other, unseeded = [await train(s) for s in (7, 7, 8, None)]
    assert first[0] == again[0]
    assert first[1] == again[1]
    assert len(first[1]["val_loss"]) == 3
    assert first[0] != other[0]
    assert first[1]["loss"] != other[1]["loss"]
    assert unseeded[0] not in (first[0], other[0])
    assert len(set(first[2])) == 3, first[2]
    assert None not in first[2]
    assert first[3] is None  # taken off when the seeded fit ended
    assert unseeded[2] == [None] * 3  # never set without a seed


@run_in_pyodide
async def test_dispose_during_fit_stops_it_with_a_clear_error_and_frees_everything(pyodide: Any) -> None:
    """dispose() during fit(), from an epoch callback and from another task mid-epoch: fit raises
    DisposedError after the current batch, the weights are freed once TF.js lets go, nothing leaks."""
    import asyncio

    import js
    import numpy as np
    import testutil

    from pyapp.errors import DisposedError
    from pyapp.layers import Dense
    from pyapp.training import Sequential, TrainingState

    await testutil.use_backend("wasm")
    start = int(js.tf.memory().numTensors)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int32)
    for seed in (None, 3):
        for how in ("callback", "task"):
            model = Sequential([Dense(16, activation="relu", input_shape=(8,)), Dense(2, activation="softmax")], seed=1)
            model.compile(loss="sparse_categorical_crossentropy", learning_rate=0.01)
            epochs_seen = []

            def on_epoch(event, model=model, how=how, epochs_seen=epochs_seen):
                epochs_seen.append(event.epoch)
                if how == "callback" and event.epoch == 1:
                    model.dispose()

            run = asyncio.ensure_future(model.fit(x, y, epochs=50, batch_size=8, on_epoch=on_epoch, seed=seed))
            if how == "task":
                while not epochs_seen:  # mid-training, between two batches of the second epoch at the latest
                    await asyncio.sleep(0.001)
                model.dispose()
            await testutil.raises(run, DisposedError, "was disposed during training")
            assert model.state is TrainingState.DISPOSED
            assert len(epochs_seen) < 50, (how, seed, epochs_seen)
            assert int(js.tf.memory().numTensors) == start, (how, seed, int(js.tf.memory().numTensors), start)
            await testutil.raises(model.predict(x[:1]), DisposedError, "disposed")


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
        for layers, seed, message in [
            ([], None, "at least one layer"),
            ([Dense(2)], None, "first layer needs input_shape"),
            (["dense"], None, "not a pyapp.layers layer"),
            ([Dense(2, input_shape=(1,))], "1", "seed must be a non-negative integer or None, got '1'"),
        ]:
            try:
                Sequential(layers, seed=seed)
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
            (x, y, {"seed": -1}, "seed must be a non-negative integer or None, got -1"),
            (x, y, {"seed": 0.5}, "seed must be a non-negative integer or None"),
            (x[:1], y[:1], {"seed": 0, "validation_split": 0.5}, "validation_split=0.5 leaves no examples to train on"),
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
    async with Sequential([Dense(1, input_shape=(2,))], seed=0) as model:
        model.compile(optimizer="sgd", loss="mse", metrics=[], learning_rate=0.05)
        for seed in (None, 0):  # TF.js runs the epochs, or pyapp runs them one by one
            history = await model.fit(
                np.ones((8, 2)),
                np.full(8, 2.0),
                epochs=50,
                seed=seed,
                on_epoch=lambda e: model.stop() if e.epoch == 2 else None,
            )
            assert len(history.epochs) == 3
            assert history.stopped_early
        await model.fit(np.ones((8, 2)), np.full(8, 2.0), epochs=100, seed=0)
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
        model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 1)), Flatten(), Dense(2, activation="softmax")], seed=0)
        assert model.missing_gradients("wasm") == ["Conv2DBackpropFilter"]
        model.compile(loss="sparse_categorical_crossentropy")
        history = await model.fit(np.random.default_rng(0).random((16, 6, 6, 1)), np.arange(16) % 2, epochs=2, seed=0)
        assert history.backend == "cpu"
        assert history.note == "trained on cpu: TF.js's wasm backend has no Conv2DBackpropFilter kernel"
        assert str(js.tf.getBackend()) == "wasm"
        assert runtime.current().backend == "wasm"
        assert (await model.predict(np.zeros((1, 6, 6, 1)))).shape == (1, 2)
        model.dispose()
    finally:
        kernels.register_wasm_kernels()
    assert js.tf.getKernel("Conv2DBackpropFilter", "wasm") is not None
