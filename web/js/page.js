// Page glue: boot the runtime, then hand over to Python (web/app.py).
import { boot } from "./boot.js";

const list = document.getElementById("boot");
const items = new Map();
function onProgress(stage, info) {
  let li = items.get(stage);
  if (!li) {
    li = document.createElement("li");
    items.set(stage, li);
    list.append(li);
  }
  li.dataset.state = info.state;
  li.textContent = info.state === "done" ? `${stage}: ${Math.round(info.ms)} ms` : `${stage}…`;
}

globalThis.PYAPP_ROOT = new URL("..", import.meta.url).href;
const ready = (async () => {
  const { pyodide, timings } = await boot({ onProgress });
  const source = await (await fetch(new URL("app.py", globalThis.PYAPP_ROOT))).text();
  pyodide.runPython(source, { filename: "app.py" });
  const main = pyodide.globals.get("main");
  const params = new URLSearchParams(location.search);
  await main(params.get("backend") ?? "wasm,webgl,cpu");
  main.destroy();
  return { pyodide, timings };
})();
globalThis.pyappReady = ready;
ready.catch((err) => {
  const li = document.createElement("li");
  li.dataset.state = "error";
  li.textContent = `Failed: ${err.message}`;
  list.append(li);
});
