// Boots the browser stack: TF.js, Pyodide (numpy, Pillow) and the pyapp wheel.
// Thin on purpose: it only loads things; all app logic lives in Python.
// Loading TF.js and booting Pyodide overlap (they are independent downloads).

const here = new URL("..", import.meta.url); // web root, wherever the site is hosted

/** Load a classic script once (TF.js bundles are UMD: they set globalThis.tf). */
function loadScript(url) {
  if (typeof document === "undefined") {
    importScripts(url); // eslint-disable-line no-undef -- classic worker
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = url;
    s.onload = () => resolve();
    s.onerror = () => reject(new Error(`failed to load ${url}`));
    document.head.append(s);
  });
}

export async function loadTf() {
  const v = new URL("vendor/tfjs/", here);
  await loadScript(new URL("tf.min.js", v).href);
  await Promise.all([
    loadScript(new URL("tf-backend-wasm.min.js", v).href),
    loadScript(new URL("tf-backend-webgpu.min.js", v).href),
  ]);
  return globalThis.tf;
}

/**
 * Boot everything; resolves to the Pyodide instance with `pyapp` importable.
 * onProgress(stage, info) is called as each stage starts and ends.
 */
export async function boot({ onProgress = () => {}, packages = null } = {}) {
  const t0 = performance.now();
  const timings = {};
  const stage = async (name, fn) => {
    onProgress(name, { state: "start" });
    const s = performance.now();
    const r = await fn();
    timings[name] = performance.now() - s;
    onProgress(name, { state: "done", ms: timings[name] });
    return r;
  };
  const info = await (await fetch(new URL("vendor/build.json", here))).json();
  const tfReady = stage("tfjs", loadTf);
  const { loadPyodide } = await import(new URL("vendor/pyodide/pyodide.mjs", here).href);
  const pyodide = await stage("pyodide", () =>
    loadPyodide({ indexURL: new URL("vendor/pyodide/", here).href, fullStdLib: false }),
  );
  await stage("packages", () =>
    pyodide.loadPackage([...(packages ?? info.pyodide_packages), new URL(info.pyapp_wheel, here).href], {
      messageCallback: () => {},
      checkIntegrity: true,
    }),
  );
  await tfReady;
  timings.total = performance.now() - t0;
  pyodide.globals.set("PYAPP_BUILD_ID", info.build_id);
  return { pyodide, info, timings };
}
