// Pyodide in a Web Worker (tests/browser/hosts/pyodide.html?worker=...), classic or module:
// dynamic import() of pyodide.mjs works in both. Runs the Python the page posts.
const booted = (async () => {
  const { loadPyodide } = await import("/vendor/pyodide/pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: "/vendor/pyodide/" });
  await pyodide.loadPackage("micropip");
  return pyodide;
})();

booted.then(
  () => self.postMessage({ ready: true }),
  (err) => self.postMessage({ bootError: String(err?.message ?? err) }),
);

self.onmessage = async ({ data: { id, code } }) => {
  const pyodide = await booted;
  const ns = pyodide.globals.get("dict")();
  try {
    await pyodide.runPythonAsync(code, { globals: ns });
    self.postMessage({ id, ok: true, result: ns.get("__result__") });
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message ?? err) });
  } finally {
    ns.destroy();
  }
};
