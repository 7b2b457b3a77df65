"""pyapp.tensors: numpy <-> tf.Tensor on each backend, tidy/keep, awaiting inside tidy, no leaks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import BACKENDS, WEBGPU
from harness import run_in_pyodide

from pyapp.errors import InvalidInput
from pyapp.tensors import prepare, tf_dtype


def test_dtype_map_is_documented_and_total() -> None:
    """Every numpy dtype pyapp accepts maps to one of TF.js's three numeric dtypes."""
    assert tf_dtype(np.float64) == "float32"
    assert tf_dtype(np.float16) == "float32"
    assert tf_dtype(np.uint8) == "int32"
    assert tf_dtype(np.int64) == "int32"
    assert tf_dtype(np.bool_) == "bool"
    with pytest.raises(InvalidInput, match=r"complex128 has no TF\.js equivalent"):
        tf_dtype(np.complex128)


def test_prepare_checks_what_tfjs_would_silently_get_wrong() -> None:
    with pytest.raises(InvalidInput, match=r"do not fit TF\.js int32"):
        prepare(np.array([2**40], np.int64))
    with pytest.raises(InvalidInput, match="truncate a float array"):
        prepare(np.ones(3), dtype="int32")
    with pytest.raises(InvalidInput, match="object array"):
        prepare(np.array([object()]))
    flat, dt = prepare(np.arange(12, dtype=np.float64).reshape(3, 4).T)  # non-contiguous view
    assert dt == "float32"
    assert flat.flags.c_contiguous
    assert flat.tolist() == np.arange(12).reshape(3, 4).T.reshape(-1).tolist()


@pytest.mark.parametrize("backend", [*BACKENDS, WEBGPU], indirect=True)
@run_in_pyodide
async def test_roundtrip_every_dtype(pyodide: Any, backend: str) -> None:
    """Values, shapes and dtypes survive numpy -> TF.js -> numpy on each backend."""
    import numpy as np

    from pyapp.memory import assert_no_leaks
    from pyapp.tensors import to_numpy, to_numpy_sync, to_tensor

    rng = np.random.default_rng(1)
    cases = [
        (rng.random((2, 3, 4), dtype=np.float32), np.float32),
        (rng.random((5,)).astype(np.float64), np.float32),
        (rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), np.int32),
        (rng.integers(-(2**31), 2**31 - 1, (7,), dtype=np.int64), np.int32),
        (rng.random((3, 2)) > 0.5, np.bool_),
        (np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2].T, np.float32),  # strided view
        (np.float32(3.5), np.float32),  # scalar
    ]
    with assert_no_leaks():
        for arr, want in cases:
            t = to_tensor(arr)
            assert tuple(t.shape) == np.shape(arr)
            back = await to_numpy(t)
            again = to_numpy_sync(t, dispose=True)
            assert back.dtype == want
            assert back.shape == np.shape(arr)
            np.testing.assert_array_equal(back, np.asarray(arr).astype(want))
            np.testing.assert_array_equal(again, back)


@pytest.mark.parametrize("backend", [*BACKENDS, WEBGPU], indirect=True)
@run_in_pyodide
def test_tidy_disposes_all_but_kept(pyodide: Any, backend: str) -> None:
    import js
    import numpy as np

    from pyapp.tensors import tidy, to_numpy_sync, to_tensor

    start = int(js.tf.memory().numTensors)
    with tidy() as scope:
        a = to_tensor(np.ones((2, 2), np.float32))
        b = a.add(a)
        kept = scope.keep(b.mul(3))
        assert int(js.tf.memory().numTensors) == start + 3
    assert int(js.tf.memory().numTensors) == start + 1
    assert bool(a.isDisposed)
    assert bool(b.isDisposed)
    np.testing.assert_array_equal(to_numpy_sync(kept, dispose=True), np.full((2, 2), 6, np.float32))
    assert int(js.tf.memory().numTensors) == start
    # An exception inside the block still closes the scope.
    try:
        with tidy():
            to_tensor(np.zeros(3, np.float32))
            raise KeyError("boom")
    except KeyError:
        pass
    assert int(js.tf.memory().numTensors) == start


@run_in_pyodide
async def test_awaiting_inside_tidy_is_refused(pyodide: Any) -> None:
    """An await in a tidy block raises TidyError, pyapp's async calls refuse up front, and nothing leaks."""
    import asyncio

    import js
    import numpy as np
    import testutil

    from pyapp.errors import TidyError
    from pyapp.tensors import tidy, to_tensor

    clf = await testutil.classifier("wasm")
    start = int(js.tf.memory().numTensors)
    try:
        with tidy():
            to_tensor(np.zeros(3, np.float32))
            await asyncio.sleep(0)
    except TidyError as exc:
        assert "await" in str(exc)
    else:
        raise AssertionError("await inside tidy was not detected")
    try:
        with tidy():
            await clf.model.predict(np.zeros((1, 224, 224, 3), np.float32))
    except TidyError as exc:
        assert "Model.predict" in str(exc)
    else:
        raise AssertionError("predict inside tidy was not refused")
    assert int(js.tf.memory().numTensors) == start
    # The engine is still usable and balanced afterwards.
    with tidy():
        to_tensor(np.ones(2, np.float32))
    assert int(js.tf.memory().numTensors) == start


@run_in_pyodide
async def test_conversion_errors_are_specific_and_leave_nothing(pyodide: Any, backend: str) -> None:
    import numpy as np

    from pyapp.errors import InvalidInput
    from pyapp.memory import assert_no_leaks
    from pyapp.tensors import to_tensor

    with assert_no_leaks():
        for bad, message in [
            (np.array([2**40]), "do not fit"),
            (np.array(["a"]), "no TF.js equivalent"),
            (np.array([1 + 2j]), "no TF.js equivalent"),
        ]:
            try:
                to_tensor(bad)
            except InvalidInput as exc:
                assert message in str(exc), exc
            else:
                raise AssertionError(f"{bad!r} accepted")
