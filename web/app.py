"""The web app's logic. Runs under PyScript in a Web Worker, so the page never freezes.

The page (js/page.js) hands over files and user choices through ``sync``;
everything else happens here: starting TF.js, loading the model once,
queueing and classifying images one after another, rendering results and the
live memory panel into the page through :mod:`page` (web/page.py).

The page is changed only through :mod:`page`'s queued operations, never through
PyScript's synchronous ``window`` proxy: that one needs SharedArrayBuffer, which
a page on a plain static host or in WebKit does not have, and importing
``pyscript`` in a worker also tries an eval on the page, which the app's
Content-Security-Policy blocks.
"""

import asyncio
import logging
import time
from collections import deque
from html import escape
from typing import Any

import js  # the worker's own global scope
import page as page_channel
import ui
from polyscript import xworker  # type: ignore[import-not-found]
from pyodide.ffi import create_proxy

import pyapp
from pyapp import browser, fetch, memory
from pyapp.classifier import ImageClassifier
from pyapp.errors import InvalidImage, ModelLoadError, PyAppError
from pyapp.progress import LoadProgress

log = logging.getLogger("pyapp.app")
sync = xworker.sync
page = page_channel.connect()

MANIFEST = "models/nsfw-mobilenet-v2/manifest.json"
BACKENDS = ("webgpu", "webgl", "wasm", "cpu")


class App:
    """One classifier, one queue, one consumer task."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        self.classifier: ImageClassifier | None = None
        self.runtime: pyapp.Runtime | None = None
        self.lock = asyncio.Lock()  # held while classifying or switching backend
        self.latencies: deque[float] = deque(maxlen=240)
        self.tensors: deque[float] = deque(maxlen=240)
        self.done = 0
        self.failed = 0
        self.next_id = 0
        self.consumer: asyncio.Task[None] | None = None
        self.root = ""
        self.recoveries_shown = 0
        self.model_ready = asyncio.Event()  # images queue up until a model is loaded
        self.tasks: set[asyncio.Future[None]] = set()  # live streams running (kept: a task is weakly held)

    # ------------------------------------------------------------------ page helpers

    def stage(self, name: str, state: str, detail: str = "") -> None:
        """Mark a boot stage in the page's progress list (the page draws download bars itself)."""
        page.data(f"#stage-{name}", "state", state).text(f"#stage-{name} .detail", detail)

    def show_backend(self, refused: str = "") -> None:
        """The backend in use and its notes; ``refused``: why a switch the visitor asked for did not happen."""
        rt = self.runtime
        assert rt is not None
        page.prop("#backend-select", "value", rt.backend)
        notes = [refused] if refused else []
        notes += [f"{name}: {why}" for name, why in rt.rejected.items()]
        if rt.software_gl:
            notes.append("WebGL runs on a software renderer here")
        if rt.recoveries:
            notes.append(
                f"{rt.backend} was re-created {len(rt.recoveries)}× after: {rt.recoveries[-1]}; "
                "the model was reloaded and no image was dropped"
            )
        text = f"Running on {rt.backend}" + (f" (WASM threads: {rt.wasm_threads})" if rt.wasm_threads else "")
        page.text("#backend-status", text).text("#backend-notes", "; ".join(notes))
        self.recoveries_shown = len(rt.recoveries)

    def update_counts(self) -> None:
        page.text("#queue-status", f"{self.done} classified, {self.failed} failed, {self.queue.qsize()} waiting")

    def update_live(self) -> None:
        snap = memory.snapshot()
        self.tensors.append(snap.num_tensors)
        page.html("#live", ui.live_panel(snap, list(self.latencies), list(self.tensors)))

    # ------------------------------------------------------------------ lifecycle

    async def start(self, preferred: str, root: str) -> str:
        """Start TF.js on the preferred backend (or the best available) and load the model once.

        ``root`` is the site's base URL (the worker's own URL is not under it).
        """
        self.root = root
        js.globalThis.PYAPP_ROOT = root  # where pyapp finds vendor/tfjs/*.wasm
        # Whether this boot restored the interpreter from a snapshot (js/pyodide-boot.mjs), or why not: the page
        # makes one, once the app is idle, when there was none to use.
        boot = getattr(js.globalThis, "pyappBoot", None)
        page.data("body", "pythonSnapshot", str(getattr(boot, "snapshot", "no snapshot support in this boot")))
        self.stage("runtime", "active")
        # TF.js is already loaded: PyScript imported js/tfjs.js (config js_modules) before this file ran.
        chosen = preferred in BACKENDS  # ?backend=... is the visitor's choice, software WebGL included
        order = (preferred, *(b for b in BACKENDS if b != preferred)) if chosen else BACKENDS
        self.runtime = await pyapp.init(backends=order, avoid_software_gl=not chosen)
        self.stage("runtime", "done", self.runtime.backend)
        self.show_backend()
        self.consumer = asyncio.ensure_future(self.consume())
        await self.load_model()
        page.flush()  # before the page hears that start() returned
        return self.runtime.backend

    async def load_model(self) -> bool:
        """Load the model once; on failure say why and offer to try again (queued images wait)."""
        self.model_ready.clear()
        page.prop("#model-error", "hidden", True)
        self.stage("warmup", "waiting", "")
        started = time.perf_counter()
        bar = ui.DownloadBar()
        shown = [-1.0]  # the fraction last drawn: a redraw per 2% (chunks come every few KB)

        def progress(event: LoadProgress) -> None:
            """The model's bar and the warm-up stage, from Model.load's own events (what it fetches,
            verifies and builds, a skipped variant included)."""
            bar.add(event)
            fraction = bar.value / bar.max if bar.max else 0.0
            if event.stage in ("download", "skipped", "ready") and (
                event.stage != "download" or event.done or fraction - shown[0] >= 0.02
            ):
                shown[0] = fraction
                group = "[data-group='Model']"
                page.prop(f"{group} progress", "max", max(bar.max, 1)).prop(f"{group} progress", "value", bar.value)
                page.text(f"{group} .detail", bar.text())
                page.data(group, "state", "done" if event.stage == "ready" else "active")
            if event.stage == "skipped":
                self.stage("warmup", "waiting", f"{event.variant} skipped: {event.detail}")
            elif event.stage == "build":
                self.stage("warmup", "active", f"building the {event.variant} model…")
            elif event.stage == "warmup":
                self.stage("warmup", "active", "compiling kernels…")

        # A warm-up predicts once on zeros so that the first image is not the one to wait for kernels to compile.
        # When images are already waiting (chosen while Python started), the first of them does that work
        # instead: a warm-up then only delays the result the visitor is waiting for, by one prediction.
        warmup = self.queue.empty()
        try:
            self.classifier = await ImageClassifier.load(self.root + MANIFEST, progress=progress, warmup=warmup)
        except ModelLoadError as exc:
            fetch.drop_preloaded()
            self.classifier = None
            self.stage("warmup", "error", "no model")
            page.text("#model-error .message", f"The model could not be loaded: {exc}")
            page.prop("#model-error", "hidden", False).data("#app", "model", "failed")
            return False
        fetch.drop_preloaded()  # a variant's files that were fetched early but not needed
        info = self.classifier.model.load_info
        skipped = "; ".join(f"{name} skipped: {why}" for name, why in info.attempts.items())
        warmed = f"warm-up {info.warmup_ms:.0f} ms" if info.warmup_ms is not None else "warmed up by the first image"
        detail = f"{info.variant} weights, {warmed}" + (f" ({skipped})" if skipped else "")
        self.stage("warmup", "done", detail)
        took = (time.perf_counter() - started) * 1e3
        page.text("#model-status", f"Model: {detail}").data("#app", "model", "ready").data("#app", "ready", "true")
        page.text("#boot-total", f"Model loaded and warmed up in {took:.0f} ms")
        self.model_ready.set()
        self.update_live()
        return True

    async def retry_model(self) -> bool:
        """The "Try again" button: load the model again (e.g. after the network came back)."""
        async with self.lock:
            loaded = await self.load_model()
        page.flush()
        return loaded

    async def switch_backend(self, name: str) -> str:
        """Move to another backend: wait for the current image, reload the model there."""
        async with self.lock:
            assert self.runtime is not None
            try:
                await self.runtime.switch(name)
            except PyAppError as exc:
                self.show_backend(f"{name} refused: {exc}")
                page.flush()
                return self.runtime.backend
            if self.classifier is not None:
                self.classifier.dispose()
                self.classifier = None
            await self.load_model()
            self.show_backend()
            page.flush()
            return self.runtime.backend

    # ------------------------------------------------------------------ work

    def add_files(self, files: object, ids: object = None) -> int:
        """Queue images from the page (a JS array of File/Blob); returns how many were queued.

        ``ids``: the page's number for each (it keeps every image until its result shows, and hands those
        without one to a new Python if this worker ends); without them, numbered here."""
        numbers = [int(i) for i in ids] if ids is not None else []  # type: ignore[attr-defined]
        count = 0
        file: Any
        for n, file in enumerate(files):  # type: ignore[arg-type]
            self.next_id = numbers[n] if n < len(numbers) else self.next_id + 1
            item_id = self.next_id
            name = str(getattr(file, "name", "") or f"image {item_id}")
            thumb_url = js.URL.createObjectURL(file)
            page.insert(
                "#results",
                "afterbegin",
                f'<li id="item-{item_id}" class="result pending">'
                # data-release: the page revokes the blob URL once the thumbnail has loaded (js/python.js)
                f'<img class="thumb" alt="" src="{escape(thumb_url)}" width="96" height="96" decoding="async"'
                " data-release>"
                f'<div class="body"><h3 class="name">{escape(name)}</h3><p class="status">Waiting…</p></div></li>',
            )
            self.queue.put_nowait((item_id, file))
            count += 1
        self.update_counts()
        page.flush()
        return count

    async def consume(self) -> None:
        while True:
            item_id, file = await self.queue.get()
            done = False
            while not done:
                await self.model_ready.wait()
                async with self.lock:
                    # The model may have gone (a backend switch that failed to reload it) while we waited.
                    if self.classifier is not None:
                        await self.classify_one(item_id, file)
                        done = True
            if self.runtime is not None and len(self.runtime.recoveries) != self.recoveries_shown:
                self.show_backend()  # the backend was lost and re-created during that image
            self.update_counts()

    async def classify_one(self, item_id: int, file: object) -> None:
        item = f"#item-{item_id}"
        page.text(f"{item} .status", "Classifying…")
        assert self.classifier is not None
        started = time.perf_counter()
        try:
            top = await self.classifier.classify(file, top=5)
        except Exception as exc:
            # InvalidImage says what is wrong with the file; anything else is ours, and must
            # not stop the queue: the image is marked failed and the next one goes on.
            if not isinstance(exc, PyAppError):
                log.exception("classifying image %d failed", item_id)
            message = str(exc) if isinstance(exc, InvalidImage) else f"internal error: {exc}"
            self.failed += 1
            # The class goes last: it says the item is finished.
            page.outer(f"{item} .status", ui.error_card(message)).prop(item, "className", "result failed")
            return
        ms = (time.perf_counter() - started) * 1e3
        self.done += 1
        self.latencies.append(ms)
        page.outer(f"{item} .status", ui.result_card(top, ms)).data(item, "top1", top[0][0])
        page.prop(item, "className", "result done")
        self.update_live()

    async def live(self, port: Any) -> None:
        """Classify the camera's frames as they come (the page pumps them into ``port``), showing each result over
        the preview, until the page or the camera stops them (or the model goes: a backend switch)."""
        page.text("#live-stats", "Waiting for the model…")
        await self.model_ready.wait()
        clf = self.classifier
        if clf is None:
            page.text("#live-stats", "Live needs the model, which is not loaded: try again once it is.")
            port.postMessage(js.Object.fromEntries([["type", "stop"], ["release", True]]))
            return
        stream = clf.classify_stream(port, top=1)
        stopped = "error"
        try:
            async for result in stream:
                stats = stream.stats()
                page.text("#live-label", result.label).text("#live-percent", f"{result.confidence:.0%}")
                page.prop("#live-confidence", "value", result.confidence)
                page.text("#live-stats", f"{stats.summary()} · {result.path} preprocessing")
                page.data("#live-overlay", "label", result.label).data("#live-overlay", "results", str(stats.results))
            stopped = stream.stats().stopped or "closed"
        except PyAppError as exc:  # the model disposed by a backend switch, a stalled camera: say so
            page.text("#live-stats", f"Live stopped: {exc}")
        finally:
            stream.close()  # the page's pump stops, and the camera with it
            page.data("#live-overlay", "stopped", stopped)
            page.flush()


def on_message(event: Any) -> None:
    """Messages the page posts to this worker: a frame port for live classification (the rest are PyScript's)."""
    data = event.data
    if str(getattr(data, "pyapp", "")) == "live":
        app.tasks.add(task := asyncio.ensure_future(app.live(data.port)))
        task.add_done_callback(app.tasks.discard)


app = App()
# A listener of the worker's own, beside PyScript's: `xworker.onmessage` would route every one of PyScript's
# messages through Python as well (without SharedArrayBuffer, each page-to-worker call is one).
js.addEventListener("message", create_proxy(on_message))
sync.start = app.start
sync.add_files = app.add_files
sync.switch_backend = app.switch_backend
sync.retry_model = app.retry_model
sync.decodes_in_browser = browser.can_decode  # else every image needs Pillow, offline too
sync.booted = lambda: True  # last: js/python.js checks that the script got this far
