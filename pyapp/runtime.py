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
import urllib.parse
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyapp._js import JsException, create_proxy, error_message, js, js_object, run_js, tf, to_js
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
    #: Where TF.js came from: "page" (it was loaded before pyapp), "caller" (``tfjs_url=``),
    #: "site" (the site's vendor/tfjs/) or "cdn" (jsDelivr, with Subresource Integrity).
    tfjs_source: str = "page"

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


# --------------------------------------------------------------------------- loading TF.js

#: Backend bundles beside tf.min.js, by the backend they register (cpu and webgl are in tf.min.js).
BACKEND_BUNDLES = {"wasm": "tf-backend-wasm.min.js", "webgpu": "tf-backend-webgpu.min.js"}
#: A page that loads TF.js itself may leave a backend's bundle out and define this global, ``(name) => Promise``,
#: which loads it: pyapp calls it when that backend is about to be tried (for WebGPU, only once the browser has
#: given an adapter). The app does this for WebGPU's 325 KB, which most boots never use.
BACKEND_LOADER = "pyappLoadBackend"
WASM_BINARIES = ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm")
TFJS_CORE = "tf.min.js"


@dataclass(frozen=True)
class TfjsSource:
    """Where pyapp loads TF.js from (see :func:`tfjs_source`).

    ``urls`` maps each file (named as in the site's vendor/tfjs/) to its URL; ``integrity`` its
    Subresource Integrity where it is pinned (the CDN), which the browser then enforces.
    """

    kind: str
    urls: Mapping[str, str] = field(default_factory=dict)
    integrity: Mapping[str, str] = field(default_factory=dict)


def tfjs_source(tfjs_url: str | None, site_root: str, site_has_copy: bool) -> TfjsSource:
    """Where to load TF.js from when the page has none (pure).

    In order: ``tfjs_url``, a folder URL of the TF.js files (relative to the site root);
    the site's own copy in ``vendor/tfjs/``; else the same TF.js files on jsDelivr, each
    pinned by its Subresource Integrity hash (``pyapp._tfjs_files``, written by the build
    from the very files it vendors).

    >>> tfjs_source("tfjs-4.22", "https://example.org/app/", False).urls["tf.min.js"]
    'https://example.org/app/tfjs-4.22/tf.min.js'
    >>> site = tfjs_source(None, "https://example.org/app/", True)
    >>> site.kind, site.urls["tf-backend-wasm.min.js"], site.integrity
    ('site', 'https://example.org/app/vendor/tfjs/tf-backend-wasm.min.js', {})
    >>> cdn = tfjs_source(None, "https://example.org/app/", False)
    >>> cdn.kind, cdn.urls["tf.min.js"], cdn.integrity["tf.min.js"][:7]
    ('cdn', 'https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@4.22.0/dist/tf.min.js', 'sha384-')
    """
    from pyapp import _tfjs_files

    names = list(_tfjs_files.FILES)
    if tfjs_url:
        base = urllib.parse.urljoin(site_root, tfjs_url.rstrip("/") + "/")
        return TfjsSource("caller", {n: base + n for n in names})
    if site_has_copy:
        base = urllib.parse.urljoin(site_root, "vendor/tfjs/")
        return TfjsSource("site", {n: base + n for n in names})
    files = _tfjs_files.FILES
    return TfjsSource("cdn", {n: url for n, (url, _) in files.items()}, {n: sri for n, (_, sri) in files.items()})


def sri(data: bytes) -> str:
    """The Subresource Integrity value (sha384, base64) of ``data``.

    >>> sri(b"alert('Hello, world.');")
    'sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO'
    """
    import base64
    import hashlib

    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


#: How TF.js came to this global scope: None until :func:`load_tfjs` has looked.
_tfjs: TfjsSource | None = None
_bundles_loaded: set[str] = set()
_loading = asyncio.Lock()
_importer: Any = None


def _unavailable(url: str, why: str) -> BackendUnavailable:
    return BackendUnavailable(f"cannot load TensorFlow.js from {url}: {why}", {"tfjs": f"{url}: {why}"})


async def _why_not(url: str, integrity: str | None) -> str:
    """Why ``url`` could not be loaded as a script: its HTTP status, the network error or the integrity mismatch."""

    try:
        resp = await js.fetch(url)
    except JsException as exc:
        return f"network error ({error_message(exc)})"
    if not resp.ok:
        return f"HTTP {resp.status}"
    if integrity:
        got = sri((await resp.arrayBuffer()).to_bytes())
        if got != integrity:
            return f"Subresource Integrity mismatch: the file is {got}, the pinned TF.js file is {integrity}"
    return "the script did not run (a Content-Security-Policy of the page may block it; see the browser console)"


async def _fetch_checked(url: str, integrity: str | None) -> Any:
    """GET ``url`` (the browser enforcing ``integrity``); the Response, or :class:`BackendUnavailable`."""

    try:
        resp = await js.fetch(url, js_object({"integrity": integrity} if integrity else {}))
    except JsException:
        raise _unavailable(url, await _why_not(url, integrity)) from None
    if not resp.ok:
        raise _unavailable(url, f"HTTP {resp.status}")
    return resp


async def _run_script(url: str, integrity: str | None) -> None:
    """Run the classic script (a UMD bundle) at ``url`` in this global scope.

    A page: a ``<script>`` element (with ``integrity`` and ``crossorigin`` when pinned). A classic
    worker: ``importScripts``. A module worker (which has no importScripts): ``import()``. A worker
    checks a pinned file itself (fetch with ``integrity``), then runs the checked bytes from a blob URL.
    """

    # A page, not a worker: workers have importScripts (a module worker's throws). Not `document`: a
    # PyScript worker has one, the page's, reached through its channel; a <script> there runs in the page.
    if getattr(js.globalThis, "importScripts", None) is None:
        script = js.document.createElement("script")
        script.src = url
        if integrity:
            script.integrity = integrity
            script.crossOrigin = "anonymous"

        def executor(resolve: Any, _reject: Any) -> None:
            # Settles with the load or error event (a rejection with an Event would not be a Python exception).
            script.onload = script.onerror = resolve

        proxy = create_proxy(executor)
        try:
            done = js.Promise.new(proxy)
        finally:
            proxy.destroy()  # the executor runs at once, inside Promise.new
        js.document.head.append(script)
        try:
            event = await done
        finally:
            script.onload = script.onerror = None
        if str(event.type) == "error":  # no detail in the event: find out
            raise _unavailable(url, await _why_not(url, integrity))
        return
    target, blob_url = url, None
    if integrity:
        resp = await _fetch_checked(url, integrity)
        blob = js.Blob.new(to_js([await resp.text()]), js_object_type("text/javascript"))
        target = blob_url = js.URL.createObjectURL(blob)
    try:
        try:
            js.importScripts(target)
        except JsException as exc:
            if getattr(exc, "name", "") != "TypeError":  # a classic worker that could not load it
                raise _unavailable(url, await _why_not(url, integrity)) from None
            try:  # a module worker
                await _import_module(target)
            except JsException as exc2:
                if getattr(exc2, "name", "") == "EvalError":
                    raise _unavailable(
                        url,
                        "this module worker's Content-Security-Policy forbids eval, which Python needs to call "
                        "import(): import TF.js in the worker before Python runs (PyScript: js_modules)",
                    ) from None
                why = await _why_not(url, integrity)
                raise _unavailable(url, f"{why} ({error_message(exc2)})") from None
    finally:
        if blob_url is not None:
            js.URL.revokeObjectURL(blob_url)


def js_object_type(mime: str) -> Any:
    return js_object({"type": mime})


async def _import_module(url: str) -> None:
    global _importer
    if _importer is None:
        _importer = run_js("(url) => import(url)")  # import() is syntax: a function that calls it
    await _importer(url)


async def _site_has_copy(root: str) -> bool:
    url = urllib.parse.urljoin(root, "vendor/tfjs/" + TFJS_CORE)
    try:
        resp = await js.fetch(url, js_object({"method": "HEAD", "cache": "no-store"}))
    except JsException:
        return False
    return bool(resp.ok)


async def load_tfjs(backends: Sequence[str] = DEFAULT_BACKENDS, tfjs_url: str | None = None) -> TfjsSource:
    """Make sure ``globalThis.tf`` exists, with the backend bundles ``backends`` need; load what is missing.

    A ``tf`` the page loaded itself is used as it is (and its WASM paths are left alone).
    Otherwise TF.js is loaded from the first of :func:`tfjs_source`'s places; a file that cannot be
    loaded is a :class:`BackendUnavailable` naming its URL and why. :func:`init` calls this.
    """
    global _tfjs

    async with _loading:
        if _tfjs is None:
            if getattr(js.globalThis, "tf", None) is not None:
                _tfjs = TfjsSource("page")
            else:
                from pyapp.fetch import site_root

                root = site_root()
                source = tfjs_source(tfjs_url, root, tfjs_url is None and await _site_has_copy(root))
                # tf.min.js bundles regenerator-runtime, which assigns an undeclared global: as a module
                # (import() in a module worker) that throws unless the global is declared first.
                if not js.Reflect.has(js.globalThis, "regeneratorRuntime"):
                    js.globalThis.regeneratorRuntime = None
                url = source.urls[TFJS_CORE]
                started = time.perf_counter()
                await _run_script(url, source.integrity.get(TFJS_CORE))
                if getattr(js.globalThis, "tf", None) is None:
                    raise _unavailable(url, "the script ran but did not define globalThis.tf")
                _tfjs = source
                log.info(
                    "TF.js loaded from %s (%s) in %.0f ms", url, source.kind, (time.perf_counter() - started) * 1e3
                )
        source = _tfjs
        if source.kind != "page":
            wanted = [BACKEND_BUNDLES[b] for b in backends if b in BACKEND_BUNDLES]
            missing = [b for b in dict.fromkeys(wanted) if b not in _bundles_loaded]
            await asyncio.gather(*(_run_script(source.urls[b], source.integrity.get(b)) for b in missing))
            _bundles_loaded.update(missing)
        return source


_wasm_paths_set = False


async def _wasm_paths(tf: Any) -> None:
    """Tell the wasm backend where its binaries are, once, before it starts; never over the host's choice.

    TF.js has no getter for paths a page set with ``tf.wasm.setWasmPaths``, so pyapp sets them only
    when it knows where the binaries are: it loaded the wasm bundle itself (the binaries are beside
    it; from the CDN, the one binary TF.js will pick is fetched with its SRI checked and handed over
    as a blob URL), or the page set ``globalThis.PYAPP_ROOT``, which says the site is laid out as
    pyapp's (``vendor/tfjs/``). Otherwise the page's own setting (or TF.js's default) stands.
    """
    global _wasm_paths_set

    wasm = getattr(tf, "wasm", None)
    if wasm is None or _wasm_paths_set:
        return
    source = _tfjs
    ours = source is not None and source.kind != "page" and BACKEND_BUNDLES["wasm"] in _bundles_loaded
    threads = False
    if ours or getattr(js.globalThis, "PYAPP_ROOT", None):
        threads = await _threads_only_where_they_help(tf)
    if source is not None and ours:
        if source.integrity:
            simd = bool(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"))
            name = WASM_BINARIES[2] if simd and threads else WASM_BINARIES[1] if simd else WASM_BINARIES[0]
            resp = await _fetch_checked(source.urls[name], source.integrity[name])
            blob = js.Blob.new(to_js([await resp.arrayBuffer()]), js_object_type("application/wasm"))
            paths = {n: source.urls[n] for n in WASM_BINARIES} | {name: str(js.URL.createObjectURL(blob))}
            wasm.setWasmPaths(js_object(paths))
        else:
            wasm.setWasmPaths(source.urls[WASM_BINARIES[0]].rsplit("/", 1)[0] + "/")
    else:
        root = getattr(js.globalThis, "PYAPP_ROOT", None)
        if root:
            wasm.setWasmPaths(js.URL.new("vendor/tfjs/", root).href)
    # TF.js refuses a second call once the backend exists, hence the flag.
    _wasm_paths_set = True


def wasm_threads_for(cores: int) -> int:
    """The threads TF.js's wasm backend runs on by default: ``min(4, max(1, cores // 2))`` (its backend.cc:
    ``navigator.hardwareConcurrency`` counts logical cores, two per physical core on many x86 machines).

    >>> [wasm_threads_for(n) for n in (1, 2, 3, 4, 8, 16)]
    [1, 1, 1, 2, 4, 4]
    """
    return min(4, max(1, cores // 2))


async def _threads_only_where_they_help(tf: Any) -> bool:
    """Use the single-threaded SIMD binary where the threaded one would run on one thread anyway; returns
    whether TF.js will now use threads (its ``WASM_HAS_MULTITHREAD_SUPPORT``, as left here).

    The threaded build starts a pool of 8 pthread workers when the backend starts (each loads the
    backend's script and instantiates its module: about 0.1 s of CPU apiece, measured here), whatever
    the thread count. With fewer than 4 cores TF.js runs one thread, so the pool costs and gives nothing.
    """

    if not await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT"):
        return False
    cores = int(getattr(js.navigator, "hardwareConcurrency", 0) or 1)
    if wasm_threads_for(cores) == 1:
        tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", False)
        return False
    return True


async def _precheck(backend: str) -> str | None:
    tfm = tf()
    if backend == "webgpu":  # before the bundle: a browser without a WebGPU adapter never loads it
        gpu = getattr(js.navigator, "gpu", None)
        if gpu is None:
            return "navigator.gpu is undefined (no WebGPU in this browser or context)"
        adapter = await gpu.requestAdapter()
        if adapter is None:
            return "navigator.gpu.requestAdapter() returned null (no usable GPU adapter)"
    loader = getattr(js.globalThis, BACKEND_LOADER, None)
    if tfm.findBackendFactory(backend) is None and backend in BACKEND_BUNDLES and loader is not None:
        await loader(backend)
    if tfm.findBackendFactory(backend) is None:
        return f"the {backend} backend is not registered (its bundle is not loaded)"
    if backend == "webgl" and not tfm.env().getNumber("WEBGL_VERSION"):
        return "WebGL is unavailable (no WebGL context could be created)"
    return None


async def _try_backend(backend: str) -> str | None:
    """None when ``backend`` is now active, else why not."""

    if backend not in BACKENDS:
        raise InvalidInput(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if _tfjs is not None and _tfjs.kind != "page" and backend in BACKEND_BUNDLES:
        await load_tfjs((backend,))  # pyapp loaded TF.js: it loads this backend's bundle too
    tfm = tf()
    try:
        reason = await _precheck(backend)
        if reason is not None:
            return reason
        if backend == "wasm":
            await _wasm_paths(tfm)
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


async def init(
    backends: Sequence[str] = DEFAULT_BACKENDS, *, avoid_software_gl: bool = True, tfjs_url: str | None = None
) -> Runtime:
    """Start the first backend of ``backends`` that works; raise if none does.

    TF.js is loaded first when the page has none (:func:`load_tfjs`): from ``tfjs_url`` (a folder
    URL holding tf.min.js, the backend bundles and the .wasm binaries), else the site's
    ``vendor/tfjs/``, else jsDelivr with Subresource Integrity. ``Runtime.tfjs_source`` says which.

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
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise InvalidInput(f"unknown backend {unknown[0]!r}; expected one of {BACKENDS}")
    source = await load_tfjs(backends, tfjs_url)
    rejected: dict[str, str] = {}
    for i, backend in enumerate(backends):
        reason = await _try_backend(backend)
        if reason is None:
            rt = Runtime(backend=backend, rejected=rejected, tfjs_source=source.kind)
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
