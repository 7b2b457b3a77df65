// TF.js and its wasm/webgpu backends for the app's Python worker, loaded in order: the
// bundles are UMD scripts that set globalThis.tf, and the backends register themselves on it.
// PyScript imports this module (config js_modules.worker) before app.py runs; a static import
// chain needs no eval, which the page's Content-Security-Policy forbids.
// tf.min.js bundles regenerator-runtime, which assigns the undeclared global `regeneratorRuntime`;
// in module (strict) code that throws and its fallback is Function(): declare it first.
globalThis.regeneratorRuntime = globalThis.regeneratorRuntime;
await import("../vendor/tfjs/tf.min.js");
await Promise.all([import("../vendor/tfjs/tf-backend-wasm.min.js"), import("../vendor/tfjs/tf-backend-webgpu.min.js")]);

export const { version } = globalThis.tf;
