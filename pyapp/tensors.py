"""numpy <-> tf.Tensor, and TF.js memory scopes from Python.

Dtype map (numpy -> TF.js): float16/float32/float64 -> ``float32``;
int8/int16/int32/uint8/uint16 -> ``int32``; int64/uint32 -> ``int32`` when the
values fit (else :class:`InvalidInput`); bool -> ``bool``. TF.js has no other
numeric dtypes. Back to numpy: ``float32`` -> float32, ``int32`` -> int32,
``bool`` -> bool.

Transfer: one contiguous copy from the numpy buffer into a JS TypedArray that
TF.js owns. A zero-copy view of the WASM heap is never handed over: TF.js's cpu
backend keeps the array it is given, and such a view dangles when the heap grows.

Example (in the browser)::

    import numpy as np
    from pyapp.tensors import tidy, to_numpy, to_tensor
    with tidy() as scope:
        t = to_tensor(np.ones((2, 3), np.float32))
        y = scope.keep(t.mul(2))
    print(await to_numpy(y, dispose=True))   # [[2. 2. 2.] [2. 2. 2.]]
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from pyapp._js import js, js_errors, tf, to_js
from pyapp.errors import InvalidInput, TidyError

_TO_TF: dict[str, str] = {
    "float16": "float32",
    "float32": "float32",
    "float64": "float32",
    "int8": "int32",
    "int16": "int32",
    "int32": "int32",
    "uint8": "int32",
    "uint16": "int32",
    "int64": "int32",
    "uint32": "int32",
    "bool": "bool",
}
_NP_OF_TF: dict[str, type[np.generic]] = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_I32 = np.iinfo(np.int32)
#: Backends whose tensors live in this thread's memory (no GPU readback to wait for).
CPU_BACKENDS = ("wasm", "cpu")


def tf_dtype(dtype: np.dtype[Any] | type | str) -> str:
    """The TF.js dtype a numpy dtype maps to (see the module docstring).

    >>> tf_dtype(np.uint8), tf_dtype("float64"), tf_dtype(bool)
    ('int32', 'float32', 'bool')
    """
    name = np.dtype(dtype).name
    try:
        return _TO_TF[name]
    except KeyError:
        raise InvalidInput(f"numpy dtype {name} has no TF.js equivalent; supported: {sorted(_TO_TF)}") from None


def prepare(array: Any, dtype: str | None = None) -> tuple[np.ndarray, str]:
    """The contiguous 1-D array to copy into TF.js, and its TF.js dtype.

    Pure numpy (host-testable). Checks what TF.js would silently get wrong:
    int64 values outside int32, NaN/inf are allowed (they are data).

    >>> flat, dt = prepare(np.arange(6, dtype=np.int64).reshape(2, 3))
    >>> flat.dtype, flat.shape, dt
    (dtype('int32'), (6,), 'int32')
    """
    arr = np.asarray(array)
    if arr.dtype == object:
        raise InvalidInput("cannot convert an object array to a tensor")
    target = dtype or tf_dtype(arr.dtype)
    if target not in _NP_OF_TF:
        raise InvalidInput(f"unsupported TF.js dtype {target!r}; expected one of {sorted(_NP_OF_TF)}")
    if target == "int32" and arr.dtype.kind in "iu" and arr.size and arr.dtype.itemsize >= 4:
        lo, hi = arr.min(), arr.max()
        if lo < _I32.min or hi > _I32.max:
            raise InvalidInput(f"values [{lo}, {hi}] do not fit TF.js int32")
    if target == "int32" and arr.dtype.kind == "f":
        raise InvalidInput("refusing to truncate a float array to int32; cast it explicitly")
    flat = np.ascontiguousarray(arr, dtype=_NP_OF_TF[target]).reshape(-1)
    if target == "bool":
        flat = flat.view(np.uint8)
    return flat, target


def to_tensor(array: Any, dtype: str | None = None) -> Any:
    """A new tf.Tensor holding a copy of ``array`` (see the dtype map)."""

    flat, target = prepare(array, dtype)
    shape = list(np.shape(array))
    typed = to_js(flat)  # one copy: WASM heap -> a JS-owned TypedArray
    if target == "bool":
        typed = js.Uint8Array.new(typed.buffer)
    with js_errors("tf.tensor"):
        return tf().tensor(typed, to_js(shape), target)


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape)


def _from_typed(typed: Any, tensor: Any) -> np.ndarray:
    dtype = str(tensor.dtype)
    if dtype not in _NP_OF_TF:
        raise InvalidInput(f"cannot read a {dtype} tensor into numpy")
    shape = _shape(tensor)
    if dtype == "bool":
        out = np.empty(shape, dtype=np.uint8)
        typed.assign_to(out)
        return out.astype(np.bool_)
    out = np.empty(shape, dtype=_NP_OF_TF[dtype])
    typed.assign_to(out)  # one copy: the JS array -> the numpy buffer
    return out


async def to_numpy(tensor: Any, dispose: bool = False) -> np.ndarray:
    """Read a tensor into a new numpy array (async: waits for the GPU without blocking).

    Raises :class:`~pyapp.errors.BackendLost` if the WebGL context is lost before the data arrives.
    """
    from pyapp.errors import BackendLost
    from pyapp.runtime import guard, tensor_lost

    try:
        if tensor_lost(tensor):
            raise BackendLost("this tensor was made on a backend that was lost and re-created since: make it again")
        if str(tf().getBackend()) in CPU_BACKENDS:
            # The data is in this thread's memory already: read it now. Awaiting data() would only add an
            # event-loop turn, which a page that is drawing frames may hold back (measured: a live camera
            # stream on wasm lost ~15% of its frame rate to it).
            with js_errors("tensor.dataSync()"):
                typed = tensor.dataSync()
        else:
            with js_errors("tensor.data()"):
                # guard: a readback on a lost WebGL context would never complete.
                typed = await guard(tensor.data())
        return _from_typed(typed, tensor)
    finally:
        if dispose:
            tensor.dispose()


def to_numpy_sync(tensor: Any, dispose: bool = False) -> np.ndarray:
    """Like :func:`to_numpy` but blocking (``dataSync``); usable inside :func:`tidy`."""

    try:
        with js_errors("tensor.dataSync()"):
            typed = tensor.dataSync()
        return _from_typed(typed, tensor)
    finally:
        if dispose:
            tensor.dispose()


class tidy:  # noqa: N801 - used like a function: ``with tidy():``
    """``with tidy() as scope:`` disposes every tensor made inside, but those passed to ``keep``.

    The TF.js engine's startScope/endScope, as a context manager, and pyapp's one memory scope: prediction
    (:func:`pyapp.model.predict_js`) and backend preprocessing use it too. TF.js scopes
    are synchronous, so an ``await`` inside the block is an error: pyapp's own
    async calls refuse to run in a scope, and leaving a scope that was open while
    the event loop ran raises :class:`TidyError` (the scope is closed either way).

    Example (in the browser)::

        import numpy as np
        from pyapp.tensors import tidy, to_tensor
        with tidy() as scope:
            x = to_tensor(np.zeros((1, 4), np.float32))
            y = scope.keep(x.add(1))     # survives the scope
        print(x.isDisposed, y.isDisposed)   # True False
        y.dispose()
    """

    _depth = 0

    def __init__(self, name: str = "pyapp.tidy") -> None:
        self.name = name
        self._loop_ran = False
        self._handle: asyncio.Handle | None = None

    def keep(self, tensor: Any) -> Any:
        """Exempt ``tensor`` from disposal at the end of this scope; returns it."""

        tf().keep(tensor)
        return tensor

    def _mark(self) -> None:
        self._loop_ran = True

    def __enter__(self) -> tidy:
        try:
            loop = asyncio.get_event_loop()
            # A synchronous block never lets the loop run this callback; if it
            # runs before __exit__, the block awaited something.
            self._handle = loop.call_soon(self._mark)
        except RuntimeError:
            self._handle = None
        tf().engine().startScope(self.name)
        tidy._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        tidy._depth -= 1
        tf().engine().endScope()
        if self._handle is not None:
            self._handle.cancel()
        if self._loop_ran and exc[0] is None:
            raise TidyError(
                "an await happened inside `with tidy():`; TF.js scopes are synchronous, so tensors "
                "from other tasks would be disposed. Await outside the block."
            )


def in_tidy() -> bool:
    """True while a :class:`tidy` block is open."""
    return tidy._depth > 0


def refuse_in_tidy(what: str) -> None:
    """Raise :class:`TidyError` when an async pyapp call is made inside ``tidy``."""
    if in_tidy():
        raise TidyError(f"{what} is async and cannot run inside `with tidy():`; await it outside the block")
