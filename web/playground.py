"""The playground's logic. Runs under PyScript in a Web Worker (the page stays responsive while cells run).

Cells run in one namespace through :class:`session.Session` (web/session.py); output is
written into the page as it happens. The teach panel trains a
:class:`pyapp.transfer.TransferClassifier` on images the visitor labels.
A dropped Keras file (``.keras``/``.h5``) is converted here by :mod:`pyapp.convert`, saved
in IndexedDB and classifies images (:class:`KerasPanel`).
The page is changed only through :mod:`page`'s queued operations (see web/app.py for why), so
the playground works with or without SharedArrayBuffer.
"""

import asyncio
import signal
import time
from html import escape
from typing import Any

import js  # the worker's own global scope
import page as page_channel
import session
import ui
from polyscript import xworker  # type: ignore[import-not-found]
from pyodide.ffi import to_js

import pyapp
from pyapp import convert, keras_export, memory, saving
from pyapp._js import pyodide_js
from pyapp.browser import to_bytes
from pyapp.classifier import ImageClassifier
from pyapp.errors import ModelLoadError, PyAppError, StateError
from pyapp.notebook import fmt_bytes
from pyapp.transfer import METADATA_KEY, TransferClassifier

sync = xworker.sync
page = page_channel.connect()

BASE_MODEL = "models/nsfw-mobilenet-v2/manifest.json"


def on_message(event: Any) -> None:
    """The Stop button, with SharedArrayBuffer (without one, Stop restarts this worker instead).

    The page first sends its shared flag: Pyodide signals SIGINT when the flag is set, at its next
    check, wherever Python is then (a cell's loop, the event loop between a cell's steps, the page's
    own code), and :meth:`Playground.on_interrupt` leaves it to the session to stop the cell from
    there; Pyodide's default KeyboardInterrupt would stop whatever ran, often not the cell (measured
    under load: the runaway loop then ran on). Each Stop then also sends a message naming its run:
    it wakes an idle Python (a cell awaiting a sleep never sees the flag), and a Stop that reaches
    Python before its run does stops that run as it begins."""
    global stop_flag
    data = event.data
    kind = getattr(data, "type", None)
    if kind == "interrupt-buffer":
        signal.signal(signal.SIGINT, lambda signum, frame: app.on_interrupt(frame))
        stop_flag = data.buffer
        pyodide_js.setInterruptBuffer(stop_flag)
    elif kind == "stop" and stop_flag is not None:
        js.Atomics.store(stop_flag, 0, 0)  # this message does what the flag would have
        app.on_stop(int(data.run))


stop_flag = None  # the Stop button's shared flag, Pyodide's interrupt buffer


xworker.onmessage = on_message


async def load_imported_packages(code: str) -> None:
    """Load the Pyodide packages a cell imports (``from PIL import Image`` loads Pillow), as Pyodide's
    own console does: the playground starts with numpy and pyapp only, and most cells need no more.
    A package that cannot be loaded (offline, and never used here before) shows as the cell's own
    ImportError."""
    try:
        await pyodide_js.loadPackagesFromImports(code)
    except Exception as exc:  # the import in the cell reports it, in the cell's words
        js.console.warn(f"pyapp playground: could not load a package this cell imports: {exc}")


class Playground:
    """Cells, uploads and the memory readout."""

    def __init__(self) -> None:
        self.uploads: dict[str, bytes] = {}
        self.keras_models: dict[str, ImageClassifier] = {}  # converted in the page, by IndexedDB name
        self.session = self.new_session()
        self.examples: dict[str, str] = {}
        self.cell: str | None = None  # the selector of the running cell's output block
        self.stream = ""  # the stream of its last <pre>
        self.pres = 0
        self.lock = asyncio.Lock()
        self.run_number: int | None = None  # the page's number for the run in progress
        self.stopped = 0  # the newest run the page asked to stop

    async def start(self, root: str) -> str:
        js.globalThis.PYAPP_ROOT = root  # relative URLs in cells resolve against the site, not the worker
        rt = await pyapp.init(backends=("wasm", "webgl", "cpu"))
        page.prop("#pg-backend", "value", rt.backend).prop("#pg-backend", "disabled", False)
        self.examples = session.all_examples()
        options = "".join(f'<option value="{escape(title)}">{escape(title)}</option>' for title in self.examples)
        page.insert("#examples", "beforeend", options).prop("#examples", "disabled", False)
        page.prop("#run", "disabled", False)
        self.show_env()
        self.update_memory()
        await teach.start()
        page.data("#playground", "ready", "true").flush()
        return rt.backend

    def show_env(self) -> None:
        rt = pyapp.runtime.current()
        backend = rt.backend if rt else "none"
        versions = f"{session.python_version()} · TF.js {js.tf.version.tfjs} · pyapp {pyapp.__version__}"
        page.text("#env-status", f"{versions} · backend {backend}")

    # ------------------------------------------------------------------ output

    def write(self, stream: str, text: str) -> None:
        """Session output, straight into the running cell's block."""
        if self.cell is None:
            return
        if stream == "html":
            page.insert(self.cell, "beforeend", text)
            self.stream = ""
            return
        if stream != self.stream:  # a new <pre> for each change of stream
            self.pres += 1
            self.stream = stream
            page.insert(self.cell, "beforeend", f'<pre class="{escape(stream)}" id="pre-{self.pres}"></pre>')
        page.append_text(f"#pre-{self.pres}", text)

    def on_interrupt(self, frame: object) -> None:
        """SIGINT, from the Stop button's flag: it stops the run in progress, if any (a late one, nothing)."""
        if self.run_number is not None:
            self.session.interrupt(frame)  # type: ignore[arg-type]

    def on_stop(self, run: int) -> None:
        """The Stop button's message for the page's run ``run``: stops it, now or as it begins."""
        self.stopped = max(self.stopped, run)
        if self.run_number == run:
            self.session.interrupt(None)

    async def run(self, code: str, number: int = 0) -> bool:
        """Run one cell; its output appears in a new block at the top. True when it ran without error.

        ``number``: the page's number for this run, which its Stop messages name."""
        self.run_number = number
        try:
            if number and self.stopped >= number:  # Stop reached Python before this run did
                self.session.interrupt(None)
            return await self._run(code)
        finally:
            # The run is over: a Stop that comes now stops nothing, here or in the next run.
            self.session.forget_stop()
            self.run_number = None

    async def _run(self, code: str) -> bool:
        async with self.lock:
            self.pres += 1
            block = f"#cell-{self.pres}"
            page.insert(
                "#output",
                "afterbegin",
                f'<li class="cell" id="cell-{self.pres}" data-state="running">'
                f"<p class='meta'>In [{self.session.count + 1}] running…</p></li>",
            )
            self.cell, self.stream = block, ""
            page.flush()  # the cell may hold the event loop for long: show that it runs now
            try:
                result = await self.session.run(code, prepare=load_imported_packages)
            finally:
                self.cell = None
            page.text(f"{block} .meta", f"In [{self.session.count}] {result.seconds * 1e3:.0f} ms")
            if result.error is not None:
                page.insert(block, "beforeend", f'<pre class="traceback">{escape(result.error)}</pre>')
            elif result.value_html is not None:
                page.insert(block, "beforeend", result.value_html)
            page.data(block, "state", "ok" if result.ok else "error")
            self.show_env()
            self.update_memory()
            page.flush()
            return result.ok

    def new_session(self) -> session.Session:
        fresh = session.Session(write=self.write)
        fresh.namespace.update({"uploads": self.uploads, "keras_models": self.keras_models, "pyapp": pyapp})
        return fresh

    def clear_output(self) -> None:
        page.html("#output", "").flush()

    async def reset(self) -> None:
        """A fresh namespace (as after a restart, but models already loaded elsewhere stay loaded)."""
        async with self.lock:
            self.session = self.new_session()
            note = "Python namespace reset: every variable is gone; uploads stay."
            page.insert("#output", "afterbegin", f'<li class="note">{note}</li>').flush()

    def show_example(self, title: str) -> None:
        code = self.examples.get(title)
        if code is not None:
            page.prop("#editor", "value", code).call("#editor", "focus").flush()

    def update_memory(self) -> None:
        page.html("#pg-memory", ui.memory_table(memory.snapshot()))

    async def switch_backend(self, name: str) -> str:
        async with self.lock:
            rt = pyapp.runtime.current()
            if rt is None:
                raise StateError("switch_backend: pyapp.init() has not run")
            try:
                await rt.switch(name)
            except PyAppError as exc:
                page.text("#env-status", str(exc)).prop("#pg-backend", "value", rt.backend).flush()
                return rt.backend
            self.show_env()
            self.update_memory()
            page.flush()
            return rt.backend

    # ------------------------------------------------------------------ uploads

    async def add_uploads(self, files: Any) -> int:
        for file in files:
            self.uploads[str(file.name)] = await to_bytes(file)
        items = "".join(
            f"<li><code>uploads[{escape(repr(name))}]</code> {fmt_bytes(len(data))}</li>"
            for name, data in self.uploads.items()
        )
        page.html("#uploads", items).flush()
        for file in files:
            if str(file.name).lower().endswith(KERAS_SUFFIXES):  # a model: convert it too
                await keras.convert_bytes(str(file.name), self.uploads[str(file.name)])
        return len(self.uploads)


class Teach:
    """The teach panel: classes, labelled images, training, trying, saving."""

    def __init__(self) -> None:
        self.base: ImageClassifier | None = None
        self.learner: TransferClassifier | None = None
        self.trained = False

    def _learner(self) -> TransferClassifier:
        """The learner, once :meth:`start` has made it (the panel's buttons stay disabled until then)."""
        if self.learner is None:
            raise StateError("the teach panel has not started")
        return self.learner

    async def start(self) -> None:
        self.base = await ImageClassifier.load(BASE_MODEL)
        self.learner = await TransferClassifier.create(self.base, ["Class A", "Class B"])
        self.draw_classes()
        for button in ("add-class", "train"):
            page.prop(f"#{button}", "disabled", False)
        await self.refresh_saved()

    def status(self, element: str, text: str, ok: bool = True) -> None:
        page.text(f"#{element}", text).prop(f"#{element}", "className", "" if ok else "error")

    def draw_classes(self) -> None:
        counts = self._learner().counts()
        cards = (ui.class_card(i, name, counts[name]) for i, name in enumerate(self._learner().classes))
        page.html("#classes", "".join(cards))

    def set_trained(self, trained: bool) -> None:
        self.trained = trained
        for control in ("try-input", "save", "download", "download-keras"):
            page.prop(f"#{control}", "disabled", not trained)

    async def add(self, index: int, files: Any) -> int:
        name = self._learner().classes[index]
        card = f'[data-class="{index}"]'
        added = 0
        for file in files:
            try:
                await self._learner().add(await to_bytes(file), name)
            except PyAppError as exc:
                self.status("train-status", f"{file.name}: {exc}", ok=False)
                continue
            added += 1
            # data-release: the page revokes the blob URL once the image has loaded (js/python.js)
            url = js.URL.createObjectURL(file)
            page.insert(f"{card} .thumbs", "beforeend", f'<img alt="" src="{escape(url)}" data-release>')
        count = self._learner().counts()[name]
        page.text(f"{card} .count", ui.example_count(count)).flush()
        return added

    def rename(self, index: int, name: str) -> None:
        name = name.strip()
        others = [c for i, c in enumerate(self._learner().classes) if i != index]
        if not name or name in others:
            self.status("train-status", "Each class needs its own, non-empty name.", ok=False)
            page.prop(f"#class-name-{index}", "value", self._learner().classes[index]).flush()
            return
        self._learner().classes[index] = name  # examples are kept by index: renaming keeps them

    def add_class(self) -> None:
        letter = chr(ord("A") + len(self._learner().classes))
        self._learner().classes.append(f"Class {letter}")
        self.set_trained(False)  # the head has one output per class: train again
        self.draw_classes()
        page.flush()

    async def train(self, epochs: int) -> bool:
        page.prop("#train-progress", "max", epochs).prop("#train-progress", "value", 0)

        def on_epoch(event: Any) -> None:
            page.prop("#train-progress", "value", event.epoch + 1)
            acc = event.logs.get("accuracy", float("nan"))
            self.status("train-status", f"Epoch {event.epoch + 1}/{epochs}: accuracy {acc:.2f}")

        started = time.perf_counter()
        try:
            history = await self._learner().train(epochs=epochs, on_epoch=on_epoch)
        except PyAppError as exc:
            self.status("train-status", str(exc), ok=False)
            page.flush()
            return False
        logs = history.epochs[-1].logs
        total = sum(self._learner().counts().values())
        self.status(
            "train-status",
            f"Trained on {total} images in {time.perf_counter() - started:.1f} s: "
            f"accuracy {logs.get('accuracy', float('nan')):.2f}, loss {logs.get('loss', float('nan')):.3f}",
        )
        self.set_trained(True)
        page.flush()
        return True

    async def try_image(self, file: Any) -> list[list[Any]]:
        try:
            top = await self._learner().classify(await to_bytes(file))
        except PyAppError as exc:
            page.html("#try-result", ui.error_card(str(exc))).flush()
            return []
        url = js.URL.createObjectURL(file)
        page.html("#try-result", f'<img alt="" src="{escape(url)}" data-release>' + ui.result_card(top))
        page.data("#try-result", "top1", top[0][0]).flush()
        return [list(p) for p in top]

    async def save(self, name: str) -> bool:
        try:
            await self._learner().save(f"indexeddb://{name}")
        except PyAppError as exc:
            self.status("save-status", str(exc), ok=False)
            page.flush()
            return False
        self.status("save-status", f"Saved in this browser as {name!r}: it works offline and after a reload.")
        await self.refresh_saved()
        page.flush()
        return True

    async def download(self, name: str) -> None:
        try:
            files = await self._learner().to_files(name)
        except PyAppError as exc:
            self.status("save-status", str(exc), ok=False)
            page.flush()
            return
        for file_name, data in files.items():
            # A Blob crosses to the page by structured clone; the page starts the download.
            sync.pyapp_download(file_name, js.Blob.new(js.Array.of(to_js(data))))
        self.status("save-status", f"Downloaded {' and '.join(files)}: load them with pyapp.training.load().")
        page.flush()

    async def download_keras(self, name: str) -> None:
        """The trained head as a Keras 3 .keras file (written here, numpy only: pyapp.keras_export)."""
        try:
            files = await self._learner().to_files(name)
            data = keras_export.to_keras(files)
        except PyAppError as exc:
            self.status("save-status", str(exc), ok=False)
            page.flush()
            return
        sync.pyapp_download(f"{name}.keras", js.Blob.new(js.Array.of(to_js(data))))
        self.status(
            "save-status",
            f"Downloaded {name}.keras: keras.saving.load_model() reads it. It takes the base model's "
            f"{self._learner().extractor.dim} features ({self._learner().extractor.layer}); classes "
            f"{', '.join(self._learner().classes)}.",
        )
        page.flush()

    async def refresh_saved(self) -> None:
        saved = await saving.list_saved()
        page.html(
            "#saved",
            '<option value="">—</option>'
            + "".join(
                f'<option value="{escape(url)}">{escape(url.removeprefix("indexeddb://"))}</option>' for url in saved
            ),
        )
        page.prop("#saved", "disabled", not saved).prop("#load", "disabled", not saved)

    async def load(self, url: str) -> bool:
        try:
            learner = await TransferClassifier.load(url, base=self.base)
        except ModelLoadError as exc:
            if METADATA_KEY in str(exc):  # not a teach head: a model the Keras panel converted?
                return await keras.load(url)
            self.status("save-status", str(exc), ok=False)
            page.flush()
            return False
        except PyAppError as exc:
            self.status("save-status", str(exc), ok=False)
            page.flush()
            return False
        if self.learner is not None:
            self._learner().dispose()
        self.learner = learner
        self.draw_classes()
        self.set_trained(True)
        self.status("save-status", f"Loaded {url.removeprefix('indexeddb://')}: classes {', '.join(learner.classes)}.")
        page.flush()
        return True


KERAS_SUFFIXES = (".keras", ".h5")


class KerasPanel:
    """A visitor's own Keras model: converted in the page, saved in IndexedDB, classifying images."""

    def __init__(self) -> None:
        self.classifier: ImageClassifier | None = None

    def status(self, text: str, ok: bool = True) -> None:
        page.text("#keras-status", text).prop("#keras-status", "className", "" if ok else "error")

    async def convert(self, file: Any) -> dict[str, Any]:
        return await self.convert_bytes(str(file.name), await to_bytes(file))

    async def convert_bytes(self, file_name: str, data: bytes) -> dict[str, Any]:
        """Convert, save and load; returns what happened (for tests and the console)."""
        name = convert.store_name(file_name)
        self.status(f"Converting {file_name} ({fmt_bytes(len(data))})…")
        page.data("#keras", "state", "converting").flush()
        started = time.perf_counter()
        try:
            classifier, result = await convert.load_in_browser(data, name, save_to=f"indexeddb://{name}")
        except Exception as exc:  # PyAppError says why; anything else is a bug, shown rather than hung
            why = str(exc) if isinstance(exc, PyAppError) else f"unexpected {type(exc).__name__}: {exc}"
            self.status(f"{file_name}: {why}", ok=False)
            page.data("#keras", "state", "error").flush()
            return {"ok": False, "error": why}
        total = time.perf_counter() - started
        old = app.keras_models.pop(name, None)
        if old is not None:
            old.dispose()
        app.keras_models[name] = self.classifier = classifier
        labels = ", ".join(classifier.labels[:10]) + (" …" if len(classifier.labels) > 10 else "")
        self.status(
            f"Converted {file_name} in {result.seconds:.2f} s ({fmt_bytes(sum(result.sizes.values()))} float32; "
            f"{total:.2f} s with loading and saving). Saved in this browser as {name!r}: keras_models[{name!r}] "
            f"in Python. Classes: {labels}."
        )
        page.prop("#keras-try", "disabled", False).data("#keras", "state", "ready").data("#keras", "model", name)
        await teach.refresh_saved()
        app.update_memory()
        page.flush()
        return {
            "ok": True,
            "name": name,
            "convert_s": result.seconds,
            "total_s": total,
            "bytes": result.sizes,
            "labels": list(classifier.labels),
        }

    async def try_image(self, file: Any) -> list[list[Any]]:
        if self.classifier is None:
            return []
        try:
            top = await self.classifier.classify(await to_bytes(file))
        except PyAppError as exc:
            page.html("#keras-result", ui.error_card(str(exc))).flush()
            return []
        page.html("#keras-result", ui.result_card(top)).data("#keras-result", "top1", top[0][0]).flush()
        return [list(p) for p in top]

    async def load(self, url: str) -> bool:
        """A converted model saved earlier (listed under Saved, with the teach panel's)."""
        try:
            classifier = await convert.load_saved(url)
        except PyAppError as exc:
            self.status(str(exc), ok=False)
            page.flush()
            return False
        name = url.removeprefix("indexeddb://")
        old = app.keras_models.pop(name, None)
        if old is not None:
            old.dispose()
        app.keras_models[name] = self.classifier = classifier
        self.status(f"Loaded {name} (converted earlier): keras_models[{name!r}] in Python.")
        page.prop("#keras-try", "disabled", False).data("#keras", "state", "ready").data("#keras", "model", name)
        page.flush()
        return True


app = Playground()
teach = Teach()
keras = KerasPanel()
sync.start = app.start
sync.run = app.run
sync.clear_output = app.clear_output
sync.reset = app.reset
sync.show_example = app.show_example
sync.switch_backend = app.switch_backend
sync.add_uploads = app.add_uploads
sync.teach_add = teach.add
sync.teach_rename = teach.rename
sync.teach_add_class = teach.add_class
sync.teach_train = teach.train
sync.teach_try = teach.try_image
sync.teach_save = teach.save
sync.teach_download = teach.download
sync.teach_load = teach.load
sync.teach_download_keras = teach.download_keras
sync.keras_convert = keras.convert
sync.keras_try = keras.try_image
sync.booted = lambda: True  # last: js/python.js checks that the script got this far
