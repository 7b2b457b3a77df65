"""Kernels pyapp adds to TF.js backends, so that training works where a backend lacks one.

TF.js 4.22's wasm backend has no ``Conv2DBackpropFilter``, the gradient of a
convolution with respect to its filter: a convolutional model could not train
on wasm. The gradient is itself a convolution, which wasm has (XNNPACK)::

    dW[i, j, ci, co] = sum over n, h, w of  xpad[n, h*sh + i, w*sw + j, ci] * dy[n, h, w, co]

that is, ``conv2d`` of the padded input with batch and channels swapped
(``[ci, H, W, n]``) by the output gradient as a filter (``[h, w, n, co]``),
stride 1, dilated by the forward strides, cut to the filter size.
:func:`pyapp.runtime.init` registers it when the wasm backend starts.

Example (in the browser)::

    import js
    import pyapp
    await pyapp.init(backends=("wasm",))
    print(js.tf.getKernel("Conv2DBackpropFilter", "wasm") is not None)   # True
"""

from __future__ import annotations

from typing import Any

from pyapp._js import create_proxy, js_object, tf
from pyapp.errors import InvalidInput

#: The kernel functions stay alive as long as the page: TF.js holds them.
_keepalive: list[Any] = []


def filter_gradient_plan(
    x_shape: tuple[int, int, int, int],
    dy_shape: tuple[int, int, int, int],
    filter_shape: tuple[int, int, int, int],
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> dict[str, Any]:
    """The shapes and amounts of the computation above (pure; host-testable).

    ``pads`` is (top, bottom, left, right). Returns the padding of x, the
    dilation, and the filter shape the result is cut to.

    >>> filter_gradient_plan((2, 8, 8, 3), (2, 4, 4, 5), (3, 3, 3, 5), (2, 2), (0, 1, 0, 1))
    {'pad': [[0, 0], [0, 1], [0, 1], [0, 0]], 'dilations': [2, 2], 'out': [3, 3, 3, 5]}
    """
    n, h, w, cin = x_shape
    dn, ho, wo, cout = dy_shape
    kh, kw, fcin, fcout = filter_shape
    top, bottom, left, right = pads
    sh, sw = strides
    if dn != n or fcin != cin or fcout != cout:
        raise InvalidInput(f"inconsistent shapes: x {x_shape}, dy {dy_shape}, filter {filter_shape}")
    full_h = h + top + bottom - sh * (ho - 1)
    full_w = w + left + right - sw * (wo - 1)
    if full_h < kh or full_w < kw:
        raise InvalidInput(f"dy {dy_shape} is too large for x {x_shape} with strides {strides} and pads {pads}")
    return {"pad": [[0, 0], [top, bottom], [left, right], [0, 0]], "dilations": [sh, sw], "out": [kh, kw, cin, cout]}


def _conv2d_backprop_filter(args: Any) -> Any:
    """TF.js kernel function: ``{inputs: {x, dy}, backend, attrs: {strides, pad, dimRoundingMode, filterShape}}``.

    Built from the backend's own kernels on ``TensorInfo``s (not from tf ops on
    Tensors): the engine neither sees nor counts the intermediates, which are
    freed here, and the result's buffer is handed to the engine, as a kernel's must be.
    """

    tfm = tf()
    attrs, backend = args.attrs, args.backend
    x, dy = args.inputs.x, args.inputs.dy
    if str(getattr(attrs, "dataFormat", None) or "NHWC") != "NHWC":
        raise InvalidInput("Conv2DBackpropFilter: only NHWC is supported")
    info = tfm.backend_util.computeConv2DInfo(
        x.shape,
        attrs.filterShape,
        attrs.strides,
        1,
        attrs.pad,
        getattr(attrs, "dimRoundingMode", None),
        False,
        "channelsLast",
    )
    pad = info.padInfo
    plan = filter_gradient_plan(
        tuple(int(d) for d in x.shape),  # type: ignore[arg-type]
        tuple(int(d) for d in dy.shape),  # type: ignore[arg-type]
        tuple(int(d) for d in attrs.filterShape),  # type: ignore[arg-type]
        (int(info.strideHeight), int(info.strideWidth)),
        (int(pad.top), int(pad.bottom), int(pad.left), int(pad.right)),
    )
    kh, kw, cin, cout = plan["out"]
    temps: list[Any] = []

    def run(kernel: str, inputs: dict[str, Any], kernel_attrs: dict[str, Any]) -> Any:
        call = js_object({"inputs": js_object(inputs), "backend": backend, "attrs": js_object(kernel_attrs)})
        out = tfm.getKernel(kernel, "wasm").kernelFunc(call)
        temps.append(out)
        return out

    try:
        padded = run("PadV2", {"x": x}, {"paddings": plan["pad"], "constantValue": 0})
        xt = run("Transpose", {"x": padded}, {"perm": [3, 1, 2, 0]})  # [cin, H, W, n]
        dyt = run("Transpose", {"x": dy}, {"perm": [1, 2, 0, 3]})  # [ho, wo, n, cout]
        conv_attrs = {"strides": [1, 1], "pad": "valid", "dataFormat": "NHWC", "dilations": plan["dilations"]}
        grad = run("Conv2D", {"x": xt, "filter": dyt}, conv_attrs)  # [cin, H', W', cout]
        cut = run("Slice", {"x": grad}, {"begin": [0, 0, 0, 0], "size": [cin, kh, kw, cout]})
        result = run("Transpose", {"x": cut}, {"perm": [1, 2, 0, 3]})  # [kh, kw, cin, cout]
        temps.pop()  # the result is the engine's now
    finally:
        for temp in temps:
            backend.disposeData(temp.dataId)
    return result


def register_wasm_kernels() -> None:
    """Add the kernels wasm lacks (idempotent; called by :func:`pyapp.runtime.init` for wasm)."""

    tfm = tf()
    key = ("Conv2DBackpropFilter", "wasm")
    if tfm.getKernel(*key) is not None:
        return
    if not _keepalive:  # one proxy for the page's life, reused if the kernel is registered again
        _keepalive.append(create_proxy(_conv2d_backprop_filter))
    tfm.registerKernel(js_object({"kernelName": key[0], "backendName": key[1], "kernelFunc": _keepalive[0]}))
