// Page glue for the playground. Thin by design: running cells, rendering output and the
// teach panel are Python (web/playground.py, in a worker). This file starts that worker,
// forwards keys, clicks and files, and owns the one thing Python cannot: the Stop button's
// interrupt buffer, which must be written while Python is busy.
import { sharedMemory, startPython } from "./python.js";

const root = new URL("..", import.meta.url).href;
const $ = (id) => document.getElementById(id);

/** Tab / Shift+Tab indent and dedent, Ctrl/Cmd+Enter runs: a code editor's keys on a plain textarea. */
function wireEditor(run) {
  const editor = $("editor");
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    } else if (e.key === "Tab" && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      const { selectionStart: start, selectionEnd: end, value } = editor;
      const lineStart = value.lastIndexOf("\n", start - 1) + 1;
      if (e.shiftKey) {
        const line = value.slice(lineStart);
        const strip = line.match(/^ {1,4}/)?.[0].length ?? 0;
        editor.setRangeText("", lineStart, lineStart + strip, "preserve");
        editor.setSelectionRange(Math.max(lineStart, start - strip), Math.max(lineStart, end - strip));
      } else {
        editor.setRangeText("    ", start, end, "end");
      }
    } else if (e.key === "Escape") {
      $("run").focus(); // a way out of the editor for keyboard users, since Tab indents
    }
  });
}

function wireFiles(py) {
  const add = (files) => files.length && py.add_uploads([...files]);
  $("upload-input").addEventListener("change", (e) => {
    add(e.target.files);
    e.target.value = "";
  });
  const drop = $("upload-drop");
  drop.addEventListener("keydown", (e) => {
    if (e.target === drop && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      $("upload-input").click();
    }
  });
  drop.addEventListener("dragover", (e) => e.preventDefault());
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    add(e.dataTransfer.files);
  });
}

function wireTeach(py) {
  const classes = $("classes");
  // Class cards are drawn by Python; their inputs are handled here by delegation.
  classes.addEventListener("change", (e) => {
    const card = e.target.closest("[data-class]");
    if (!card) return;
    const index = Number(card.dataset.class);
    if (e.target.type === "file") {
      py.teach_add(index, [...e.target.files]);
      e.target.value = "";
    } else if (e.target.type === "text") {
      py.teach_rename(index, e.target.value);
    }
  });
  classes.addEventListener("dragover", (e) => e.target.closest("[data-class]") && e.preventDefault());
  classes.addEventListener("drop", (e) => {
    const card = e.target.closest("[data-class]");
    if (!card) return;
    e.preventDefault();
    py.teach_add(Number(card.dataset.class), [...e.dataTransfer.files]);
  });
  $("add-class").addEventListener("click", () => py.teach_add_class());
  $("train").addEventListener("click", () => py.teach_train(Number($("epochs").value)));
  $("try-input").addEventListener("change", (e) => {
    if (e.target.files.length) py.teach_try(e.target.files[0]);
    e.target.value = "";
  });
  $("save").addEventListener("click", () => py.teach_save($("save-name").value));
  $("download").addEventListener("click", () => py.teach_download($("save-name").value));
  $("download-keras").addEventListener("click", () => py.teach_download_keras($("save-name").value));
  $("load").addEventListener("click", () => $("saved").value && py.teach_load($("saved").value));
}

function wireKeras(py) {
  $("keras-input").addEventListener("change", (e) => {
    if (e.target.files.length) py.keras_convert(e.target.files[0]);
    e.target.value = "";
  });
  $("keras-try").addEventListener("change", (e) => {
    if (e.target.files.length) py.keras_try(e.target.files[0]);
    e.target.value = "";
  });
}

/** A download of a Blob the worker made (a worker cannot click a link). */
function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function main() {
  const response = await fetch(new URL("vendor/build.json", root));
  if (!response.ok) throw new Error(`vendor/build.json: HTTP ${response.status}`);
  const info = await response.json();
  const shared = sharedMemory();
  document.body.dataset.mode = shared ? "isolated" : "compat";
  // numpy and pyapp only: a cell that imports another of Pyodide's packages (PIL) loads it when it runs.
  const { sync: py, worker } = await startPython(info, root, "playground.py", "playground", {
    exports: { pyapp_download: download },
    modules: ["ui.py", "session.py"],
  });
  // Stop: with SharedArrayBuffer, Pyodide checks this shared flag between bytecodes and raises
  // KeyboardInterrupt (2 = SIGINT). Without one, nothing can reach a busy worker: Stop reloads
  // the page, which starts Python afresh (uploads and variables are lost, and the page says so).
  const interrupt = shared ? new Int32Array(new SharedArrayBuffer(4)) : null;
  if (interrupt) worker.postMessage({ type: "interrupt-buffer", buffer: interrupt });
  await py.start(root);
  $("mode").textContent = shared
    ? "Stop interrupts a running cell."
    : "Compatibility mode (no SharedArrayBuffer): Stop restarts Python.";
  let running = false;
  let runs = 0; // each run's number, which its Stop names
  const run = async () => {
    if (running) return;
    running = true;
    runs += 1;
    $("run").disabled = true;
    $("stop").disabled = false;
    try {
      await py.run($("editor").value, runs);
    } finally {
      // The cell is over: a Stop still pending must not interrupt the next one.
      if (interrupt) Atomics.store(interrupt, 0, 0);
      running = false;
      $("run").disabled = false;
      $("stop").disabled = true;
    }
  };
  wireEditor(run);
  $("run").addEventListener("click", run);
  $("stop").addEventListener("click", () => {
    if (!interrupt) {
      location.reload();
      return;
    }
    // Python decides what the interrupt stops (web/playground.py). Pyodide sees the flag only while Python
    // runs, and a cell that awaits (a sleep, a slow download) leaves it idle: the message wakes it.
    Atomics.store(interrupt, 0, 2);
    worker.postMessage({ type: "stop", run: runs });
  });
  $("clear").addEventListener("click", () => py.clear_output());
  $("reset").addEventListener("click", () => py.reset());
  $("examples").addEventListener("change", (e) => {
    if (e.target.value) py.show_example(e.target.value);
  });
  $("pg-backend").addEventListener("change", (e) => py.switch_backend(e.target.value));
  wireFiles(py);
  wireTeach(py);
  wireKeras(py);
  globalThis.playground = py; // for tests and the console
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  console.error("pyapp playground: start failed", err);
  $("env-status").textContent = `Python failed to start: ${err.message ?? err}. Reload the page to retry.`;
  document.body.dataset.failed = "true";
});
