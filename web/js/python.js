// Starts a Python worker (PyScript) running one of the site's .py files, with numpy, Pillow,
// pyapp and TF.js loaded; shared by the app page and the playground. Resolves to the
// worker's `sync` object (the Python functions the script exported).

/**
 * @param {object} info vendor/build.json
 * @param {string} root the site's base URL
 * @param {string} src the Python file, relative to root
 * @param {string} name the worker's name
 */
export async function startPython(info, root, src, name) {
  const abs = (p) => new URL(p, root).href;
  const script = document.createElement("script");
  script.type = "py";
  script.setAttribute("worker", "");
  script.setAttribute("name", name);
  script.src = abs(src);
  script.setAttribute(
    "config",
    JSON.stringify({
      interpreter: abs("vendor/pyodide/pyodide.mjs"),
      packages: [...info.pyodide_packages.filter((p) => p === "numpy" || p === "pillow"), abs(info.pyapp_wheel)],
      packages_cache: "passthrough",
      js_modules: { worker: { [abs("js/tfjs.js")]: "tfjs" } },
    }),
  );
  const done = new Promise((resolve) => script.addEventListener("py:done", resolve, { once: true }));
  const { hooks } = await import(abs("vendor/pyscript/core.js"));
  // PyScript's one default worker hook registers `_pyscript` (for pyscript.fs, unused here) and is
  // shipped to the worker as source and re-made with Function(): the page's CSP forbids eval.
  hooks.worker.onBeforeRunAsync.clear();
  document.body.append(script);
  await done;
  return { sync: script.xworker.sync, worker: script.xworker };
}
