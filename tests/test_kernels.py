"""pyapp.kernels in Chromium: the Conv2DBackpropFilter that wasm lacks agrees with TF.js's own (cpu) kernel
and leaves nothing behind; the plan it follows is checked on the host."""

from __future__ import annotations

from typing import Any

import pytest
from harness import run_in_pyodide

from pyapp.errors import InvalidInput
from pyapp.kernels import filter_gradient_plan


def test_plan_refuses_inconsistent_shapes() -> None:
    with pytest.raises(InvalidInput, match="inconsistent shapes"):
        filter_gradient_plan((2, 8, 8, 3), (2, 8, 8, 5), (3, 3, 4, 5), (1, 1), (1, 1, 1, 1))
    with pytest.raises(InvalidInput, match="too large"):
        filter_gradient_plan((1, 4, 4, 1), (1, 9, 9, 1), (3, 3, 1, 1), (1, 1), (0, 0, 0, 0))


@run_in_pyodide
async def test_wasm_filter_gradient_matches_tfjs_cpu_kernel(pyodide: Any) -> None:
    """Strides 1-3, same/valid padding, odd sizes, non-square filters: within 1e-4 of TF.js's cpu kernel."""
    import js
    import numpy as np

    import pyapp
    from pyapp._js import js_object
    from pyapp.memory import assert_no_leaks
    from pyapp.tensors import to_numpy, to_tensor

    rng = np.random.default_rng(1)
    configs = [
        ((2, 8, 8, 3), (3, 3, 3, 5), [1, 1], "same"),
        ((2, 8, 8, 3), (3, 3, 3, 5), [2, 2], "same"),
        ((1, 7, 9, 2), (2, 3, 2, 4), [2, 1], "valid"),
        ((3, 5, 5, 4), (5, 5, 4, 2), [1, 1], "same"),
        ((2, 10, 10, 1), (3, 3, 1, 6), [3, 3], "valid"),
        ((2, 9, 9, 2), (4, 4, 2, 3), [2, 2], "same"),
    ]
    for x_shape, f_shape, strides, pad in configs:
        info = js.tf.backend_util.computeConv2DInfo(list(x_shape), list(f_shape), strides, 1, pad, None, False)
        x = rng.standard_normal(x_shape).astype(np.float32)
        dy = rng.standard_normal((x_shape[0], int(info.outHeight), int(info.outWidth), f_shape[3]))
        got = {}
        for backend in ("cpu", "wasm"):
            await pyapp.init(backends=(backend,))
            with assert_no_leaks():
                xt, dyt = to_tensor(x), to_tensor(dy.astype(np.float32))
                attrs = {"strides": strides, "pad": pad, "dataFormat": "NHWC", "filterShape": list(f_shape)}
                out = js.tf.engine().runKernel(
                    "Conv2DBackpropFilter", js_object({"x": xt, "dy": dyt}), js_object(attrs)
                )
                got[backend] = await to_numpy(out, dispose=True)
                assert float(np.abs(await to_numpy(xt) - x).max()) == 0, "the input is left as it was"
                xt.dispose()
                dyt.dispose()
        assert got["wasm"].shape == f_shape
        diff = float(np.abs(got["wasm"] - got["cpu"]).max())
        assert diff < 1e-4, (x_shape, f_shape, strides, pad, diff)
