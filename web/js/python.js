// Starts a Python worker (PyScript) running one of the site's .py files, with numpy (Pillow where asked),
// pyapp and TF.js loaded; shared by the app page and the playground. Resolves to the
// worker's `sync` object (the Python functions the script exported).
//
// The worker changes the page only by messages (web/page.py queues DOM operations and posts them as
// `{pyapp: "page", ops}`, this file applies them): they work with or without SharedArrayBuffer, and the
// worker never waits for the page.

/** Whether SharedArrayBuffer really works here: the same probe PyScript's worker channel uses. */
export function sharedMemory() {
  try {
    new SharedArrayBuffer(4, { maxByteLength: 8 }); // eslint-disable-line no-new
    return true;
  } catch {
    return false;
  }
}

// A blob URL Python made for a thumbnail (`<img data-release src="blob:…">`) is revoked once its image has
// loaded or failed: the image goes on showing what it loaded, and the file's bytes are freed. The page may
// revoke what its worker made (same origin, same storage key). Load events do not bubble; they are caught
// on their way down. No call from the worker: the markup says it, on every path that inserts it.
for (const type of ["load", "error"]) {
  document.addEventListener(
    type,
    ({ target }) => {
      if (target instanceof HTMLImageElement && target.hasAttribute("data-release")) {
        target.removeAttribute("data-release");
        if (target.src.startsWith("blob:")) URL.revokeObjectURL(target.src);
      }
    },
    true,
  );
}

/** One of web/page.py's operations; a missing element is skipped (it may have gone). */
function applyOp([op, selector, a, b]) {
  const el = document.querySelector(selector);
  if (!el) return;
  if (op === "text") el.textContent = a;
  else if (op === "html") el.innerHTML = a;
  else if (op === "outer") el.outerHTML = a;
  else if (op === "insert") el.insertAdjacentHTML(a, b);
  else if (op === "append") el.append(a);
  else if (op === "prop") el[a] = b;
  else if (op === "data") el.dataset[a] = b;
  else if (op === "call" && ["focus", "click", "remove"].includes(a)) el[a]();
  else console.warn("pyapp: unknown page operation", op);
}

const pendingOps = [];
let draining = false;

/**
 * Apply operations in order, in slices of at most ~6 ms and 4 new elements, one slice a frame (a timer
 * stands in when the page is hidden and frames stop): a burst, such as 50 images dropped at once, is
 * laid out a few elements at a time and never blocks the page.
 */
function drain() {
  const start = performance.now();
  let inserted = 0;
  while (pendingOps.length && performance.now() - start < 6 && inserted < 4) {
    const op = pendingOps.shift();
    if (op[0] === "insert") inserted += 1;
    applyOp(op);
  }
  draining = pendingOps.length > 0;
  if (draining) nextFrame(drain);
}

function nextFrame(fn) {
  let done = false;
  const once = () => {
    if (!done) {
      done = true;
      fn();
    }
  };
  requestAnimationFrame(() => setTimeout(once, 0));
  setTimeout(once, 50);
}

/** Resolves once every page operation received so far has been applied. */
export async function opsApplied() {
  while (draining || pendingOps.length) await new Promise((r) => setTimeout(r, 20));
}

/** web/page.py's batch of operations (JSON), queued behind any not yet applied. */
export function applyPageOps(json) {
  pendingOps.push(...JSON.parse(json));
  if (!draining) drain();
}

/**
 * js/pyodide-boot.mjs, told which packages to load and which files to fetch while Pyodide starts, which
 * lock to hold, and which build's snapshot to restore.
 */
function bootModule(root, packages, preload, lock, build) {
  const url = new URL("js/pyodide-boot.mjs", root);
  url.searchParams.set("build", build);
  for (const p of packages) url.searchParams.append("package", p);
  for (const f of preload) url.searchParams.append("preload", f);
  url.searchParams.set("lock", lock);
  return url.href;
}

/**
 * `ended`: a promise that resolves when the worker holding `lock` has ended (closed, terminated, crashed):
 * the browser then releases its Web Lock and grants ours. Null where that cannot be known (no Web Locks
 * here, or the worker does not hold its lock), so that a missing feature is never taken for a death.
 */
async function watchEnd(lock) {
  if (!navigator.locks) return { ended: null };
  const { held } = await navigator.locks.query();
  if (!held.some((l) => l.name === lock)) return { ended: null };
  return { ended: navigator.locks.request(lock, () => {}) };
}

/**
 * @param {object} info vendor/build.json
 * @param {string} root the site's base URL
 * @param {string} src the Python file, relative to root
 * @param {string} name the worker's name
 * @param {object} options
 * @param {object} options.exports page functions the worker may call
 * @param {string[]} options.packages the build's Pyodide packages to load besides pyapp
 * @param {string[]} options.preload files (relative to root) the script reads first, fetched while Pyodide boots
 * @param {string[]} options.modules the app's own Python modules (relative to root) the script imports, besides
 *   page.py: put beside it in the worker's file system
 * @returns {{sync, worker, script, ended}} `ended`: a promise that resolves if the worker ends (null where
 *   the browser cannot tell); `script`: the element that started it
 */
export async function startPython(
  info,
  root,
  src,
  name,
  { exports = {}, packages = ["numpy"], preload = [], modules = [] } = {},
) {
  const abs = (p) => new URL(p, root).href;
  const lock = `pyapp-worker-${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const script = document.createElement("script");
  script.type = "py";
  script.setAttribute("worker", "");
  script.setAttribute("name", name);
  script.src = abs(src);
  script.setAttribute(
    "config",
    JSON.stringify({
      interpreter: bootModule(
        root,
        [...info.pyodide_packages.filter((p) => packages.includes(p)), abs(info.pyapp_wheel)],
        preload.map(abs),
        lock,
        info.build_id,
      ),
      files: Object.fromEntries(["page.py", ...modules].map((m) => [abs(m), `./${m}`])),
      js_modules: { worker: { [abs("js/tfjs.js")]: "tfjs" } },
    }),
  );
  // A browser (or a policy, an extension) that refuses workers would otherwise leave PyScript waiting.
  try {
    const url = URL.createObjectURL(new Blob([""], { type: "text/javascript" }));
    new Worker(url, { type: "module" }).terminate();
    URL.revokeObjectURL(url);
  } catch (err) {
    throw new Error(`this browser refuses to start a Web Worker, which Python runs in: ${err.message ?? err}`);
  }
  const { hooks } = await import(abs("vendor/pyscript/core.js"));
  // PyScript's one default worker hook registers `_pyscript` (for pyscript.fs, unused here) and is
  // shipped to the worker as source and re-made with Function(): the page's CSP forbids eval.
  hooks.worker.onBeforeRunAsync.clear();
  document.body.append(script);
  // PyScript makes the worker once it has seen the element; its `ready` settles when the script
  // has run, and rejects with the error when booting or running it failed.
  for (const t0 = performance.now(); !script.xworker; await new Promise((r) => setTimeout(r, 10))) {
    if (performance.now() - t0 > 30_000) throw new Error(`PyScript did not start a worker for ${src} in 30 s`);
  }
  const { xworker } = script;
  // Before the script runs (PyScript starts it once the interpreter is ready): no operation is missed.
  xworker.addEventListener("message", ({ data }) => {
    if (data?.pyapp === "page") applyPageOps(data.ops);
  });
  Object.assign(xworker.sync, exports);
  await xworker.ready;
  // A Python exception at the script's top level does not reject `ready` (PyScript prints it in the
  // worker's console): the script's last line exports `booted`, so its absence means it stopped early.
  try {
    await xworker.sync.booted();
  } catch {
    throw new Error(`${src} stopped before it finished starting (its traceback is in the browser console)`);
  }
  return { sync: xworker.sync, worker: xworker, script, ...(await watchEnd(lock)) };
}
