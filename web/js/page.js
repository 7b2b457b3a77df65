// Page glue for the app. Thin by design: the app's logic is Python (web/app.py),
// running under PyScript in a Web Worker. This file only does what needs the
// main thread: the service worker, download progress, starting the worker,
// and turning drops, pastes, file pickers and the camera into File objects.

import { sharedMemory, startPython } from "./python.js";

const root = new URL("..", import.meta.url).href;
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;

// ---------------------------------------------------------------- service worker

async function startServiceWorker(info) {
  if (!("serviceWorker" in navigator) || params.has("nosw")) return null;
  const url = new URL(`sw.js?build=${info.build_id}`, root);
  // Already served by this build's worker (a repeat visit): registering again would only fetch sw.js.
  const current = await navigator.serviceWorker.getRegistration(root);
  const reg =
    current?.active?.scriptURL === url.href && navigator.serviceWorker.controller
      ? current
      : await navigator.serviceWorker.register(url, { scope: root });
  if (!navigator.serviceWorker.controller) {
    // First visit: the worker caches the shell and takes over at once, so every
    // download below goes through it (into its cache) exactly once.
    const claimed = new Promise((r) => navigator.serviceWorker.addEventListener("controllerchange", r, { once: true }));
    await Promise.race([claimed, sleep(8000)]);
  }
  navigator.storage?.persist?.().then((granted) => {
    document.body.dataset.persisted = String(granted);
  });
  return reg;
}

function offlineStatus(text, state) {
  const el = $("offline-status");
  el.textContent = text;
  document.body.dataset.offline = state;
}

/** After the boot: cache the rest of this build, then look for a newer one. */
async function afterBoot(reg, info, py) {
  if (!reg || !navigator.serviceWorker.controller) return;
  const sw = navigator.serviceWorker;
  if (document.body.dataset.offline !== "failed") offlineStatus("Saving for offline use…", "saving");
  // Where the browser cannot decode images in Python's worker, every image needs Pillow: keep it offline.
  const extra = (await py.decodes_in_browser()) ? [] : (info.offline_decoder ?? []);
  sw.controller.postMessage({ type: "complete", extra });
  checkForUpdate(reg, info);
}

async function checkForUpdate(reg, info) {
  let latest;
  try {
    // "no-cache": revalidated with the server (a 304 without a body where the build has not changed).
    latest = await (await fetch(new URL("vendor/build.json?fresh", root), { cache: "no-cache" })).json();
  } catch {
    return; // offline: keep running this version
  }
  if (latest.build_id === info.build_id) return;
  // A new build: its worker caches all of it, then waits; we offer the switch.
  const next = await navigator.serviceWorker.register(new URL(`sw.js?build=${latest.build_id}`, root), { scope: root });
  const waiting = () => {
    $("update").hidden = false;
    document.body.dataset.update = latest.build_id;
  };
  if (next.waiting) waiting();
  next.addEventListener("updatefound", () => {
    const installing = next.installing;
    installing?.addEventListener("statechange", () => installing.state === "installed" && waiting());
  });
  $("update-button").addEventListener("click", () => next.waiting?.postMessage({ type: "activate-now" }));
}

// ---------------------------------------------------------------- download progress

/**
 * build.json lists the single-threaded SIMD binary among the boot's files; the threaded one is what TF.js
 * loads where pyapp.runtime lets it run threads (isolated, and TF.js's min(4, max(1, cores / 2)) > 1).
 */
function wasmBinaryHere(file) {
  const threads = Math.min(4, Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / 2)));
  return globalThis.crossOriginIsolated && threads > 1
    ? file.replace(/tfjs-backend-wasm-simd\.wasm$/, "tfjs-backend-wasm-threaded-simd.wasm")
    : file;
}

function trackProgress(info, onProgress = () => {}) {
  const groups = new Map(); // group -> {files: Map(file -> loaded), total, el}
  for (const [name, files] of Object.entries(info.boot)) {
    const el = document.querySelector(`[data-group="${name}"]`);
    const total = files.reduce((n, f) => n + (info.sizes[f] ?? 0), 0);
    groups.set(name, { files: new Map(files.map((f) => [f, 0])), total, el });
  }
  const owner = new Map();
  for (const [name, g] of groups) for (const f of g.files.keys()) owner.set(f, name);
  const draw = (g) => {
    const loaded = [...g.files.values()].reduce((a, b) => a + b, 0);
    const bar = g.el.querySelector("progress");
    bar.max = g.total;
    bar.value = loaded;
    g.el.querySelector(".detail").textContent = `${mb(loaded)} / ${mb(g.total)}`;
    g.el.dataset.state = loaded >= g.total ? "done" : "active";
  };
  const channel = new BroadcastChannel("pyapp-progress");
  channel.onmessage = ({ data }) => {
    const g = groups.get(owner.get(data.file));
    if (!g) return;
    g.files.set(data.file, data.type === "cached" ? info.sizes[data.file] : data.loaded);
    draw(g);
    onProgress();
  };
  return {
    finish() {
      // Without a service worker there are no byte counts: show the stages as finished.
      for (const g of groups.values()) {
        for (const f of g.files.keys()) g.files.set(f, info.sizes[f] ?? 0);
        draw(g);
      }
      channel.close();
    },
  };
}

// ---------------------------------------------------------------- input

/** Files from the picker, drops, pastes, the camera and the sample button go to `add`. */
function wireImageInputs(add) {
  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => {
    add(e.target.files);
    e.target.value = "";
  });
  drop.addEventListener("keydown", (e) => {
    if (e.target === drop && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      $("file-input").click();
    }
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    add(e.dataTransfer.files);
  });
  document.addEventListener("paste", (e) => add(e.clipboardData?.files ?? []));
  $("sample-button").addEventListener("click", async () => {
    const names = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png"];
    // Kept for offline use once fetched, not before (they are not part of the offline copy): offline
    // before the first use, say so instead of classifying an error page.
    const got = await Promise.all(
      names.map(async (n) => {
        try {
          const response = await fetch(new URL(`vendor/samples/${n}`, root));
          return response.ok ? new File([await response.blob()], n) : null;
        } catch {
          return null;
        }
      }),
    );
    const missing = names.filter((_, i) => !got[i]);
    $("sample-error").hidden = !missing.length;
    $("sample-error").textContent = missing.length
      ? `Could not fetch ${missing.join(", ")}: the sample photos are saved for offline use only once they have ` +
        "been fetched online. Your own images work offline."
      : "";
    add(got.filter(Boolean));
  });
  wireCamera(add);
}

/** What needs the running Python worker: retrying the model, switching the backend. */
function wireControls(py) {
  $("retry-model").addEventListener("click", async () => {
    $("retry-model").disabled = true;
    await py.retry_model();
    $("retry-model").disabled = false;
  });
  const select = $("backend-select");
  select.disabled = false;
  select.addEventListener("change", async () => {
    select.disabled = true;
    const chosen = await py.switch_backend(select.value);
    select.value = chosen;
    select.disabled = false;
    const url = new URL(location.href);
    url.searchParams.set("backend", chosen);
    history.replaceState(null, "", url);
  });
}

function wireCamera(add) {
  let stream = null;
  const video = $("camera-video");
  const close = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    $("camera").hidden = true;
  };
  $("camera-button").addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (err) {
      $("queue-status").textContent = `Camera unavailable: ${err.message}`;
      return;
    }
    video.srcObject = stream;
    $("camera").hidden = false;
    await video.play();
    $("camera-capture").focus();
  });
  $("camera-capture").addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => add([new File([blob], `camera-${Date.now()}.jpg`, { type: "image/jpeg" })]), "image/jpeg", 0.92);
  });
  $("camera-close").addEventListener("click", close);
}

// ---------------------------------------------------------------- isolation

/** Which files of the boot the server does not answer, for a failed stage's message. */
async function missingFiles(info) {
  const wanted = [...Object.values(info.boot).flat(), "app.py", "page.py", "js/tfjs.js", "js/python.js"];
  const answers = await Promise.all(
    wanted.map(async (rel) => {
      try {
        const r = await fetch(new URL(rel, root), { method: "HEAD", cache: "no-store" });
        return r.ok ? null : `${rel} (HTTP ${r.status})`;
      } catch (err) {
        return `${rel} (${err.message ?? err})`;
      }
    }),
  );
  return answers.filter(Boolean);
}

/**
 * Cross-origin isolation (SharedArrayBuffer: WASM threads, a synchronous Python worker) if it can
 * be had: from the server's headers, else from the service worker, which adds them to what it
 * serves (one reload, on the very first visit, to be served by it). Else the compatibility mode,
 * which needs no SharedArrayBuffer, and why.
 */
async function isolate(info) {
  let reg = null;
  let why = "";
  if (!("serviceWorker" in navigator)) why = "this browser offers no service worker here (a private window?)";
  else if (params.has("nosw")) why = "the service worker is turned off (?nosw)";
  else {
    try {
      reg = await startServiceWorker(info);
    } catch (err) {
      why = `the service worker could not start: ${err.message ?? err}`;
    }
  }
  const sab = sharedMemory();
  if (globalThis.crossOriginIsolated && sab) return { reg, mode: "isolated", why: "" };
  if (globalThis.crossOriginIsolated) {
    return { reg, mode: "compat", why: "this browser has no SharedArrayBuffer, even cross-origin isolated" };
  }
  if (reg && navigator.serviceWorker.controller) {
    // This document came from the network before the worker took over: reload once to be served
    // with its headers. Never twice for one build in one tab, so this cannot loop.
    const key = "pyapp-isolation-reload";
    let last = null;
    try {
      last = sessionStorage.getItem(key);
      if (last !== info.build_id) {
        sessionStorage.setItem(key, info.build_id);
        location.reload();
        return new Promise(() => {}); // the reload takes over
      }
    } catch {
      // no sessionStorage: no way to know a reload already happened, so none
    }
    why = "the service worker's headers did not make this page cross-origin isolated";
  }
  return { reg, mode: "compat", why: why || "the server sends no cross-origin isolation headers" };
}

function showMode({ mode, why }) {
  document.body.dataset.mode = mode;
  $("mode").textContent =
    mode === "isolated"
      ? "Cross-origin isolated: WASM threads available"
      : `Compatibility mode (no SharedArrayBuffer: slower, single-threaded WASM) because ${why}`;
}

// ---------------------------------------------------------------- boot

/**
 * The boot's stages, each with a deadline: a stage that fails, or makes no progress for
 * `stallMs`, is named on the page with its cause and a Retry button. Never a silent hang.
 */
class Boot {
  constructor(stallMs) {
    this.stallMs = stallMs;
    this.stage = "";
    this.timer = 0;
    this.failed = false;
    this.info = null; // vendor/build.json, once read
    $("boot-retry").addEventListener("click", () => location.reload());
  }

  enter(stage) {
    this.stage = stage;
    document.body.dataset.bootStage = stage;
    this.progress();
  }

  /** Something moved (bytes arrived, a stage ended): the stall clock starts again. */
  progress() {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.fail(new Error(`no progress for ${Math.round(this.stallMs / 1000)} s`), this.info),
      this.stallMs,
    );
  }

  async fail(err, info = null) {
    if (this.failed) return;
    this.failed = true;
    clearTimeout(this.timer);
    let message = err?.message ?? String(err);
    const missing = info ? await missingFiles(info) : [];
    if (missing.length) message += `; the server does not answer for ${missing.join(", ")}`;
    $("boot-error-message").textContent = `${this.stage} failed: ${message}. Retry, or reload later.`;
    $("boot-error").hidden = false;
    document.body.dataset.failed = "true";
    document.body.dataset.failedStage = this.stage;
  }

  done() {
    clearTimeout(this.timer);
  }
}

/** What the service worker reports about the offline copy (a full storage quota, even during the boot). */
function listenToServiceWorker() {
  // A page served by one build's worker that another build's worker takes over (this tab's update
  // button, or another tab's) reloads: one build's page never runs with another build's files.
  if (navigator.serviceWorker?.controller) {
    navigator.serviceWorker.addEventListener("controllerchange", () => location.reload(), { once: true });
  }
  navigator.serviceWorker?.addEventListener("message", (event) => {
    if (event.data?.type === "offline-ready") offlineStatus("Available offline ✓", "ready");
    if (event.data?.type === "offline-failed") offlineStatus(`Offline copy incomplete: ${event.data.error}`, "failed");
  });
}

/**
 * `pyapp:first-result`, a performance mark when the first result is on screen: what a visitor waits
 * for, measured in the page (benchmarks/run.py reads it; a poll from outside adds its own delay).
 */
function markFirstResult() {
  const results = $("results");
  const observer = new MutationObserver(() => {
    if (!results.querySelector(".result.done")) return;
    performance.mark("pyapp:first-result");
    observer.disconnect();
  });
  observer.observe(results, { subtree: true, attributes: true, attributeFilter: ["class"], childList: true });
}

async function main() {
  listenToServiceWorker();
  markFirstResult();
  const t0 = performance.now();
  const boot = new Boot(Number(params.get("stall_ms")) || 90_000);
  // Images chosen while Python starts are kept and handed over once it runs (they then wait for the model).
  const pending = [];
  let deliver = (files) => pending.push(...files);
  wireImageInputs((files) => {
    const images = [...files];
    if (images.length) deliver(images);
  });
  try {
    boot.enter("Build information (vendor/build.json)");
    const response = await fetch(new URL("vendor/build.json", root));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const info = await response.json();
    info.boot["TF.js"] = info.boot["TF.js"].map(wasmBinaryHere);
    boot.info = info;
    document.body.dataset.build = info.build_id;
    boot.enter("Offline support and isolation (service worker)");
    const isolation = await isolate(info);
    showMode(isolation);
    if (!isolation.reg && isolation.why) offlineStatus(`Offline support unavailable: ${isolation.why}`, "unavailable");
    const progress = trackProgress(info, () => boot.progress());
    if (navigator.serviceWorker?.controller) {
      // Overlap: TF.js and the model download (into the cache) while Pyodide boots.
      for (const f of [...info.boot["TF.js"], ...info.boot.Model]) fetch(new URL(f, root)).catch(() => {});
    }
    boot.enter("Python runtime (Pyodide, numpy, pyapp, TF.js)");
    const { sync: py } = await startPython(info, root, "app.py", "pyapp");
    deliver = (files) => py.add_files(files);
    if (pending.length) py.add_files(pending.splice(0));
    boot.enter("Backend and model");
    const backend = await py.start(params.get("backend") ?? "auto", root);
    boot.done();
    progress.finish();
    performance.mark("pyapp:ready");
    document.body.dataset.backend = backend;
    document.body.dataset.bootMs = String(Math.round(performance.now() - t0));
    wireControls(py);
    globalThis.pyapp = py; // for tests and the console
    document.body.dataset.ready = "true";
    afterBoot(isolation.reg, info, py);
  } catch (err) {
    console.error("pyapp: boot failed", err);
    boot.fail(err, boot.info);
  }
}

main();
