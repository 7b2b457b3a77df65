"""Choosing and switching the TF.js backend.

``await pyapp.init()`` tries each backend in order and keeps the first that
starts; why each earlier one was rejected is kept in ``Runtime.rejected``.

Example (in the browser)::

    rt = await pyapp.init(backends=("webgpu", "webgl", "wasm", "cpu"))
    print(rt.backend, rt.rejected)      # e.g. 'webgl' {'webgpu': 'navigator.gpu is undefined ...'}
    await rt.switch("wasm")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyapp.errors import BackendUnavailable, InvalidInput

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

    @property
    def software_gl(self) -> bool:
        """True when WebGL runs on a CPU rasteriser (SwiftShader, llvmpipe): no real GPU."""
        name = (self.gl_renderer or "").lower()
        return any(s in name for s in ("swiftshader", "llvmpipe", "software"))

    @property
    def gpu_preprocessing(self) -> bool:
        """Whether resizing on the backend beats numpy here (measured: benchmarks/run.py --suite preprocess).

        wasm and real GPUs: yes; the plain-JS cpu backend and software WebGL: no.
        """
        if self.backend == "webgl":
            return not self.software_gl
        return self.backend in ("wasm", "webgpu")

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


async def init(backends: Sequence[str] = DEFAULT_BACKENDS) -> Runtime:
    """Start the first backend of ``backends`` that works; raise if none does.

    The result is also remembered as :func:`current`.
    """
    global _current
    if isinstance(backends, str):
        backends = (backends,)
    if not backends:
        raise InvalidInput("backends must name at least one backend")
    rejected: dict[str, str] = {}
    for backend in backends:
        reason = await _try_backend(backend)
        if reason is None:
            rt = Runtime(backend=backend, rejected=rejected)
            await _fill_flags(rt)
            _current = rt
            return rt
        rejected[backend] = reason
    detail = "; ".join(f"{k}: {v}" for k, v in rejected.items())
    raise BackendUnavailable(f"no TF.js backend could start ({detail})", rejected)
