// What the page's Content-Security-Policy lets through. Run from the page's own script,
// since code that Playwright injects is exempt from CSP.
const probe = {};
const attempt = async (name, fn) => {
  try {
    await fn();
    probe[name] = "allowed";
  } catch {
    probe[name] = "blocked";
  }
};

await attempt("eval", () => eval("1 + 1"));
await attempt("function", () => new Function("return 1")());
await attempt("string-timer", () => {
  // A string timer is dropped silently when blocked: look for its side effect.
  globalThis.timerRan = false;
  setTimeout("globalThis.timerRan = true", 0);
  return new Promise((resolve, reject) => setTimeout(() => (globalThis.timerRan ? resolve() : reject()), 50));
});
await attempt("inline-script", () => {
  globalThis.inlineRan = false;
  const s = document.createElement("script");
  s.textContent = "globalThis.inlineRan = true";
  document.body.append(s);
  if (!globalThis.inlineRan) throw new Error("inline script did not run");
});
await attempt("other-origin-fetch", () => fetch("http://127.0.0.2:9/x", { mode: "no-cors" }));
// The smallest valid module: "\0asm" version 1.
await attempt("wasm", () => WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])));

globalThis.probe = probe;
document.body.dataset.done = "true";
