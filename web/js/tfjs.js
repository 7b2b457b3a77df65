// TF.js and its wasm backend for the app's Python worker, loaded in order (webgpu's on demand, below): the
// bundles are UMD scripts that set globalThis.tf, and the backends register themselves on it.
// PyScript imports this module (config js_modules.worker) before app.py runs; a static import
// chain needs no eval, which the page's Content-Security-Policy forbids.
// tf.min.js bundles regenerator-runtime, which assigns the undeclared global `regeneratorRuntime`;
// in module (strict) code that throws and its fallback is Function(): declare it first.
globalThis.regeneratorRuntime = globalThis.regeneratorRuntime;
await import("../vendor/tfjs/tf.min.js");
await import("../vendor/tfjs/tf-backend-wasm.min.js");

// WebGPU's bundle (325 KB) only when pyapp.runtime is about to try WebGPU in a browser that has it: most boots
// never do, and every one would parse it on the worker's thread while Pyodide starts. Python cannot import() a
// module itself here (the page's CSP forbids the eval that would take), so this module gives it the loader.
const bundles = { webgpu: () => import("../vendor/tfjs/tf-backend-webgpu.min.js") };
globalThis.pyappLoadBackend = (name) => bundles[name]?.() ?? Promise.resolve();

export const { version } = globalThis.tf;
