// The interpreter module the app's Python workers load (PyScript's `interpreter` setting): Pyodide,
// with TF.js, the Python packages and the first files Python reads loading at the same time.
// - TF.js: PyScript imports a worker's js_modules (js/tfjs.js) only once the interpreter and its
//   packages are ready; starting the import here overlaps TF.js's download, parse and backend
//   registration with Pyodide's boot, and the later import finds it done.
// - Packages: named in this module's URL (`?package=numpy&package=<wheel URL>`, set by js/python.js)
//   and handed to Pyodide's own `packages` option, which downloads them while Pyodide starts and checks
//   each against the lock's sha256. PyScript's `packages` setting would instead load micropip and
//   packaging and resolve through them first (about a second of CPU here, for nothing to resolve).
// - A repeat visit restores the interpreter from this build's memory snapshot (js/snapshot.mjs) when one was
//   saved and checks out, instead of starting CPython again; `globalThis.pyappBoot.snapshot` says "used", or
//   why not (the app shows it).
import { loadPyodide as loadPyodideItself, version } from "../vendor/pyodide/pyodide.mjs";
import { discardSnapshot, readSnapshot } from "./snapshot.mjs";

export { version };

const params = new URL(import.meta.url).searchParams;
const packages = params.getAll("package");
const build = params.get("build");
// Read while TF.js loads (below): the snapshot's bytes and their check.
const snapshot = readSnapshot(build);
globalThis.pyappBoot = { snapshot: "not read yet" };

// Files Python will fetch first (the model's), named as `?preload=<absolute URL>`: fetched now, so that they
// download while Pyodide boots. pyapp.fetch takes each Response once from this map and checks it as any other.
globalThis.pyappPreloaded = new Map(
  params.getAll("preload").map((url) => {
    const response = fetch(url);
    response.catch(() => {}); // a failure is Python's to report, when it asks for the file
    return [url, response];
  }),
);

// A Web Lock held for this worker's whole life (js/python.js names it): the browser releases it when the
// worker ends for any reason (closed, terminated, crashed), which is how the page learns of it at once,
// busy Python or not.
const lifeLock = params.get("lock");
if (lifeLock && globalThis.navigator?.locks) navigator.locks.request(lifeLock, () => new Promise(() => {}));

export async function loadPyodide(options) {
  const tfjs = import("./tfjs.js");
  tfjs.catch(() => {}); // its error surfaces where PyScript imports it, with the stage's name
  // PyScript derives indexURL from this module's folder; Pyodide's files are in vendor/pyodide/.
  const indexURL = new URL("../vendor/pyodide/", import.meta.url).href;
  const watch = failedFetches(indexURL);
  const boot = async (extra) => {
    const [pyodide] = await Promise.race([
      Promise.all([loadPyodideItself({ ...options, indexURL, packages, ...extra }), tfjs.catch(() => null)]),
      watch.failed,
    ]);
    return pyodide;
  };
  try {
    const { bytes, why } = await snapshot;
    if (bytes) {
      try {
        const pyodide = await boot({ _loadSnapshot: bytes });
        globalThis.pyappBoot.snapshot = "used";
        return pyodide;
      } catch (err) {
        // A snapshot this Pyodide cannot restore: gone, and the boot starts CPython as usual.
        await discardSnapshot(build);
        globalThis.pyappBoot.snapshot = `failed to restore (${err?.message ?? err}): discarded`;
        console.warn("pyapp: the Pyodide snapshot did not restore; booting without it", err);
      }
    } else {
      globalThis.pyappBoot.snapshot = why;
    }
    return await boot({});
  } finally {
    watch.stop();
  }
}

/**
 * Rejects when one of Pyodide's own files answers with an error status while it boots. Pyodide 0.27.7 never
 * settles when its WASM binary cannot be fetched (Emscripten only warns "wasm instantiation failed!"), so
 * without this the page learns of it only from its stall bound; with it, at once, naming the file.
 */
function failedFetches(indexURL) {
  const original = globalThis.fetch;
  let fail;
  const failed = new Promise((_, reject) => {
    fail = reject;
  });
  globalThis.fetch = async (input, init) => {
    const response = await original(input, init);
    const url = typeof input === "string" ? input : (input?.url ?? String(input));
    if (!response.ok && url.startsWith(indexURL)) {
      fail(new Error(`Pyodide's ${new URL(url).pathname.split("/").pop()} answered HTTP ${response.status}`));
    }
    return response;
  };
  return { failed, stop: () => void (globalThis.fetch = original) };
}
