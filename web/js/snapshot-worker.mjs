// Makes this build's Pyodide snapshot (js/snapshot.mjs) in a thread of its own, then ends: started by the page
// once the app has been idle for a second, as `js/snapshot-worker.mjs?build=<build id>`. Posts
// `{state: "saved", bytes}` (its size) or `{state: "failed", error}`.
import { loadPyodide } from "../vendor/pyodide/pyodide.mjs";
import { makeSnapshot } from "./snapshot.mjs";

const build = new URL(import.meta.url).searchParams.get("build");
const indexURL = new URL("../vendor/pyodide/", import.meta.url).href;
try {
  const bytes = await makeSnapshot(loadPyodide, indexURL, build);
  postMessage({ state: "saved", bytes });
} catch (err) {
  postMessage({ state: "failed", error: String(err?.message ?? err) });
}
close();
