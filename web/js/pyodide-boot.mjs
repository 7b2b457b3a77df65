// The interpreter module the app's Python workers load (PyScript's `interpreter` setting): Pyodide,
// with TF.js loading at the same time. PyScript imports a worker's js_modules (js/tfjs.js) only once
// the interpreter and its packages are ready; starting the import here overlaps TF.js's download,
// parse and backend registration with Pyodide's boot, and the later import finds it done.
import { loadPyodide as loadPyodideItself, version } from "../vendor/pyodide/pyodide.mjs";

export { version };

export async function loadPyodide(options) {
  const tfjs = import("./tfjs.js");
  tfjs.catch(() => {}); // its error surfaces where PyScript imports it, with the stage's name
  // PyScript derives indexURL from this module's folder; Pyodide's files are in vendor/pyodide/.
  const indexURL = new URL("../vendor/pyodide/", import.meta.url).href;
  const [pyodide] = await Promise.all([loadPyodideItself({ ...options, indexURL }), tfjs.catch(() => null)]);
  return pyodide;
}
