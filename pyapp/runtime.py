"""Choosing and switching the TF.js backend.

``await pyapp.init()`` tries each backend in order and keeps the first that
starts; why each earlier one was rejected is kept in ``Runtime.rejected``.

A lost WebGL context (GPU reset, driver crash, the browser reclaiming
contexts) is noticed through the canvas's ``webglcontextlost`` event:
:func:`guard` turns a readback that would otherwise wait forever into
:class:`~pyapp.errors.BackendLost`, and :func:`recover` re-creates the backend.
:class:`~pyapp.model.Model` does both by itself and reloads its weights.

Example (in the browser)::

    import pyapp
    rt = await pyapp.init(backends=("webgpu", "webgl", "wasm", "cpu"))
    print(rt.backend, rt.rejected)      # e.g. 'webgl' {'webgpu': 'navigator.gpu is undefined ...'}
    await rt.switch("wasm")
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyapp.errors import BackendLost, BackendUnavailable, InvalidInput

log = logging.getLogger("pyapp.runtime")
T = TypeVar("T")

BACKENDS = ("webgpu", "webgl", "wasm", "cpu")
DEFAULT_BACKENDS = ("webgpu", "webgl", "wasm", "cpu")


@dataclass
class Runtime:
    """The active TF.js backend and the facts about this browser that matter for speed."""

    backend: str
    rejected: dict[str, str] = field(default_factory=dict)
    cross_origin_isolated: bool = False
    wasm_simd: bool | None = None
    wasm_threads: int | None = None
    tfjs_version: str = ""
    #: WebGL renderer string (webgl backend), e.g. "ANGLE (..., SwiftShader driver)".
    gl_renderer: str | None = None
    #: Why the backend was re-created, oldest first (see :func:`recover`).
    recoveries: list[str] = field(default_factory=list)

    @property
    def software_gl(self) -> bool:
        """True when WebGL runs on a CPU rasteriser (SwiftShader, llvmpipe): no real GPU."""
        name = (self.gl_renderer or "").lower()
        return any(s in name for s in ("swiftshader", "llvmpipe", "software"))

    @property
    def backend_preprocessing(self) -> bool:
        """Whether a browser image object is best resized on the TF.js backend rather than in numpy.

        Measured with ``benchmarks/run.py --suite preprocess`` (a 1 MP ImageBitmap to a
        224x224 tensor, 2-core machine): the backend path is 1.18x faster on cpu and level
        on wasm (1.02x), but 2.2x slower on WebGL drawn by SwiftShader. A real GPU (WebGL,
        WebGPU) resizes in parallel: yes there too.
        """
        return not (self.backend == "webgl" and self.software_gl)

    async def switch(self, backend: str) -> Runtime:
        """Make ``backend`` the active one; :class:`BackendUnavailable` if it cannot start.

        Tensors and models made on the previous backend must be disposed or
        reloaded by the caller (TF.js moves tensor data lazily, models keep working).
        """
        reason = await _try_backend(backend)
        if reason is not None:
            raise BackendUnavailable(f"backend {backend!r} unavailable: {reason}", {backend: reason})
        self.backend = backend
        await _fill_flags(self)
        return self


_current: Runtime | None = None


def current() -> Runtime | None:
    """The runtime made by the last :func:`init`, if any."""
    return _current


# --------------------------------------------------------------------------- losing the backend


class _LossWatch:
    """Listens for ``webglcontextlost`` on one WebGL backend's canvas; one per backend instance."""

    def __init__(self, canvas: Any) -> None:
        from pyodide.ffi import create_proxy

        self.canvas = canvas
        self.lost = asyncio.Event()
        self.reason = ""
        # Held for the backend's life and destroyed by close(): not a leak.
        self._listener = create_proxy(self._on_lost)
        canvas.addEventListener("webglcontextlost", self._listener)

    def _on_lost(self, _event: Any) -> None:
        self.reason = "the WebGL context was lost (webglcontextlost)"
        log.warning("%s", self.reason)
        self.lost.set()

    def close(self) -> None:
        self.canvas.removeEventListener("webglcontextlost", self._listener)
        self._listener.destroy()


_watch: _LossWatch | None = None
_generation = 0


def generation() -> int:
    """Counts :func:`recover` calls: a model loaded in an older generation has lost its weights."""
    return _generation


def _watch_webgl(tfm: Any) -> None:
    """Start watching the active WebGL backend's canvas (once per backend instance)."""
    global _watch
    canvas = tfm.backend().gpgpu.gl.canvas
    if getattr(canvas, "pyappWatched", False):
        return
    if _watch is not None:
        _watch.close()
    _watch = _LossWatch(canvas)
    canvas.pyappWatched = True


def backend_lost() -> str | None:
    """Why the active backend can no longer compute, or None while it can."""
    from pyapp._js import tf

    tfm = tf()
    if str(tfm.getBackend()) != "webgl":
        return None
    if _watch is not None and _watch.lost.is_set():
        return _watch.reason
    if tfm.backend().gpgpu.gl.isContextLost():
        return "the WebGL context was lost (isContextLost)"
    return None


def tensor_lost(tensor: Any) -> bool:
    """True when ``tensor`` was made on a backend that has since been lost and re-created.

    Its data is gone; reading it could wait forever. Free to call: it only looks
    once a recovery has happened.
    """
    if _generation == 0:
        return False
    from pyapp._js import js, tf

    engine = tf().engine()
    info = engine.state.tensorInfo.get(tensor.dataId)
    if info is None:
        return False  # disposed: TF.js says so itself
    registry = engine.registry
    # Still registered under some name? (JsProxy == is JS identity, ===.)
    return not any(getattr(registry, name) == info.backend for name in js.Object.keys(registry))


async def guard(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` (e.g. a tensor readback), or raise :class:`BackendLost` if the backend is lost first.

    A readback on a lost WebGL context never completes; this is what keeps
    such a request from hanging forever.
    """
    from pyapp._js import tf

    tfm = tf()
    if str(tfm.getBackend()) != "webgl":
        return await awaitable
    _watch_webgl(tfm)  # also when the page chose WebGL without pyapp.init
    lost_already = backend_lost()
    if lost_already is not None:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise BackendLost(lost_already)
    task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
    watch = _watch
    assert watch is not None
    lost: asyncio.Future[Any] = asyncio.ensure_future(watch.lost.wait())
    try:
        await asyncio.wait([task, lost], return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()
    if task.done():
        return task.result()
    task.cancel()
    raise BackendLost(watch.reason)


async def use_backend(name: str) -> None:
    """Make ``name`` the active backend, keeping :func:`current` in step (e.g. to train where wasm lacks a kernel).

    Raises :class:`BackendUnavailable` if it cannot start.
    """
    rt = _current
    if rt is not None:
        await rt.switch(name)
        return
    reason = await _try_backend(name)
    if reason is not None:
        raise BackendUnavailable(f"backend {name!r} unavailable: {reason}", {name: reason})


async def recover(reason: str | None = None) -> int:
    """Re-create the active backend after its device was lost; returns the new :func:`generation`.

    Every tensor on the old backend is gone: models loaded before reload their
    weights on their next prediction. Raises :class:`BackendUnavailable` when
    the backend cannot start again (the caller may then :meth:`Runtime.switch`).
    """
    global _generation, _watch
    from pyapp._js import JsException, error_message, tf

    tfm = tf()
    name = str(tfm.getBackend())
    why = reason or backend_lost() or "re-created on request"
    entry = getattr(tfm.engine().registryFactory, name)
    factory, priority = entry.factory, int(entry.priority)
    started = time.perf_counter()
    if _watch is not None:
        _watch.close()
        _watch = None
    try:
        # The engine caches backend instances by name: removing and registering
        # the same factory again is how TF.js makes a fresh one (a new context).
        tfm.removeBackend(name)
    except JsException as exc:  # the old instance failed to dispose itself; it is unusable anyway
        log.warning("disposing the lost %s backend failed: %s", name, error_message(exc))
    tfm.registerBackend(name, factory, priority)
    failure = await _try_backend(name)
    if failure is not None:
        raise BackendUnavailable(f"backend {name!r} could not be re-created after: {why} ({failure})", {name: failure})
    _generation += 1
    rt = _current
    if rt is not None and rt.backend == name:
        await _fill_flags(rt)
        rt.recoveries.append(why)
    elif name == "webgl":
        _watch_webgl(tfm)
    log.warning("backend %s re-created in %.0f ms after: %s", name, (time.perf_counter() - started) * 1e3, why)
    return _generation


_wasm_paths_set = False


def _wasm_paths(tf: Any) -> None:
    global _wasm_paths_set
    from pyapp._js import js

    wasm = getattr(tf, "wasm", None)
    if wasm is None or _wasm_paths_set:
        return
    # The binaries sit next to the bundle in vendor/tfjs/; TF.js would
    # otherwise look for them relative to the page or a CDN. It refuses a
    # second call once the backend exists, hence the flag.
    root = getattr(js.globalThis, "PYAPP_ROOT", None) or js.location.href
    wasm.setWasmPaths(js.URL.new("vendor/tfjs/", root).href)
    _wasm_paths_set = True


async def _precheck(backend: str) -> str | None:
    from pyapp._js import js, tf

    tfm = tf()
    if tfm.findBackendFactory(backend) is None:
        return f"the {backend} backend is not registered (its bundle is not loaded)"
    if backend == "webgpu":
        gpu = getattr(js.navigator, "gpu", None)
        if gpu is None:
            return "navigator.gpu is undefined (no WebGPU in this browser or context)"
        adapter = await gpu.requestAdapter()
        if adapter is None:
            return "navigator.gpu.requestAdapter() returned null (no usable GPU adapter)"
    if backend == "webgl" and not tfm.env().getNumber("WEBGL_VERSION"):
        return "WebGL is unavailable (no WebGL context could be created)"
    return None


async def _try_backend(backend: str) -> str | None:
    """None when ``backend`` is now active, else why not."""
    from pyapp._js import JsException, error_message, tf

    if backend not in BACKENDS:
        raise InvalidInput(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    tfm = tf()
    try:
        reason = await _precheck(backend)
        if reason is not None:
            return reason
        if backend == "wasm":
            _wasm_paths(tfm)
            from pyapp.kernels import register_wasm_kernels

            register_wasm_kernels()  # before training needs them; registering needs no backend instance
        ok = await tfm.setBackend(backend)
        if not ok:
            return f"tf.setBackend({backend!r}) failed during initialisation (see the browser console)"
        await tfm.ready()
    except JsException as exc:
        return f"{getattr(exc, 'name', 'Error')}: {error_message(exc)}"
    if tfm.getBackend() != backend:
        return f"TF.js kept {tfm.getBackend()!r}"
    return None


async def _fill_flags(rt: Runtime) -> None:
    from pyapp._js import js, tf

    tfm = tf()
    rt.cross_origin_isolated = bool(getattr(js, "crossOriginIsolated", False))
    rt.tfjs_version = str(tfm.version.tfjs) if hasattr(tfm, "version") else ""
    if rt.backend == "wasm":
        rt.wasm_simd = bool(await tfm.env().getAsync("WASM_HAS_SIMD_SUPPORT"))
        rt.wasm_threads = int(tfm.wasm.getThreadsCount())
    else:
        rt.wasm_simd = rt.wasm_threads = None
    rt.gl_renderer = None
    if rt.backend == "webgl":
        gl = tfm.backend().gpgpu.gl
        info = gl.getExtension("WEBGL_debug_renderer_info")
        rt.gl_renderer = str(gl.getParameter(info.UNMASKED_RENDERER_WEBGL if info else gl.RENDERER))
        _watch_webgl(tfm)


async def init(backends: Sequence[str] = DEFAULT_BACKENDS, *, avoid_software_gl: bool = True) -> Runtime:
    """Start the first backend of ``backends`` that works; raise if none does.

    With ``avoid_software_gl`` (the default), WebGL drawn by a CPU rasteriser
    (SwiftShader, llvmpipe: no real GPU) is passed over for ``wasm`` when wasm is
    listed after it and starts, since it is faster there (benchmarks/run.py);
    ``rejected["webgl"]`` says so. The result is also remembered as :func:`current`.
    """
    global _current
    if isinstance(backends, str):
        backends = (backends,)
    if not backends:
        raise InvalidInput("backends must name at least one backend")
    rejected: dict[str, str] = {}
    for i, backend in enumerate(backends):
        reason = await _try_backend(backend)
        if reason is None:
            rt = Runtime(backend=backend, rejected=rejected)
            await _fill_flags(rt)
            if avoid_software_gl and backend == "webgl" and rt.software_gl and "wasm" in backends[i + 1 :]:
                renderer = rt.gl_renderer
                if await _try_backend("wasm") is None:
                    rejected["webgl"] = f"software renderer ({renderer}); WASM is faster here"
                    rt.backend = "wasm"
                    await _fill_flags(rt)
            _current = rt
            return rt
        rejected[backend] = reason
    detail = "; ".join(f"{k}: {v}" for k, v in rejected.items())
    raise BackendUnavailable(f"no TF.js backend could start ({detail})", rejected)
