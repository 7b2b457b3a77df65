// Page glue for the app. Thin by design: the app's logic is Python (web/app.py),
// running under PyScript in a Web Worker. This file only does what needs the
// main thread: the service worker, download progress, starting the worker,
// and turning drops, pastes, file pickers and the camera into File objects.

import { pumpFrames } from "./frames.js";
import { opsApplied, sharedMemory, startPython } from "./python.js";

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
 * loads where pyapp.runtime lets it run threads (isolated, and TF.js's min(4, max(1, cores / 2)) > 1: the
 * formula of pyapp.runtime.wasm_threads_for, repeated here because the page draws its bars before Python runs).
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
    if (name === "Model") continue; // drawn by Python, from Model.load's progress events (web/app.py)
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
    onProgress(); // bytes arrived (the model's too): the boot is not stalled
    const g = groups.get(owner.get(data.file));
    if (!g) return;
    g.files.set(data.file, data.type === "cached" ? info.sizes[data.file] : data.loaded);
    draw(g);
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

/** Files from the picker, drops, pastes, the camera and the sample button go to `add`; live frames to `live`. */
function wireImageInputs(add, live) {
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
  wireCamera(add, live);
}

/** What needs the running Python worker (`py()`: the one running now): retrying the model, the backend. */
function wireControls(py) {
  $("retry-model").addEventListener("click", async () => {
    $("retry-model").disabled = true;
    await py()?.retry_model(); // none while Python restarts
    $("retry-model").disabled = false;
  });
  const select = $("backend-select");
  select.disabled = false;
  select.addEventListener("change", async () => {
    select.disabled = true;
    const chosen = (await py()?.switch_backend(select.value)) ?? document.body.dataset.backend;
    select.value = chosen;
    select.disabled = false;
    document.body.dataset.backend = chosen; // where a restarted Python starts
    const url = new URL(location.href);
    url.searchParams.set("backend", chosen);
    history.replaceState(null, "", url);
  });
}

/**
 * The camera: a still frame goes to `add` as a File; live, its frames go to Python as it asks for them
 * (js/frames.js), through `live(port)`, which hands Python the other end of a MessageChannel (false while no
 * Python runs). Python shows each result over the preview, and ends the frames (and the camera) when it stops.
 */
function wireCamera(add, live) {
  let stream = null;
  let stopLive = null; // ends the live frames, while they run
  const video = $("camera-video");
  const close = () => {
    stopLive?.("closed");
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    $("camera").hidden = true;
  };
  const open = async () => {
    if (stream) return true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (err) {
      $("queue-status").textContent = `Camera unavailable: ${err.message}`;
      return false;
    }
    video.srcObject = stream;
    $("camera").hidden = false;
    await video.play();
    return true;
  };
  const showLive = (state) => {
    document.body.dataset.live = state;
    $("camera-live").setAttribute("aria-pressed", String(state === "running"));
    $("camera-live").textContent = state === "running" ? "Stop live" : "Live";
    $("live-overlay").hidden = state !== "running";
  };
  const startLive = async () => {
    if (stopLive || !(await open())) return;
    const { port1, port2 } = new MessageChannel();
    if (!live(port2)) {
      $("queue-status").textContent = "Live starts once Python is running: try again in a moment.";
      return;
    }
    $("live-label").textContent = "…";
    $("live-stats").textContent = "Starting…";
    showLive("running");
    stopLive = pumpFrames(video, port1, {
      onStop: (reason) => {
        stopLive = null;
        showLive(reason);
        // Python stopped the frames and the camera with them: the preview has nothing more to show.
        if (!stream?.getTracks().some((t) => t.readyState === "live")) close();
      },
    });
  };
  $("camera-button").addEventListener("click", async () => {
    if (await open()) $("camera-capture").focus();
  });
  $("live-button").addEventListener("click", startLive);
  $("camera-live").addEventListener("click", () => (stopLive ? stopLive("closed") : startLive()));
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

// ---------------------------------------------------------------- the Python worker's life

/** Whether image `id`'s result (or its error) is on the page. */
function finished(id) {
  const c = $(`item-${id}`)?.classList;
  return Boolean(c && (c.contains("done") || c.contains("failed")));
}

/**
 * Every image handed to Python, kept until its result is on the page: if the worker ends (closed,
 * terminated, crashed: a Web Lock it holds tells at once, busy or not), the page says so, starts
 * Python again and hands the new one the images without a result. An image that was waiting at two
 * such ends is marked failed instead, since it may be what ends the worker; after `maxRestarts`
 * restarts the page stops trying and says to reload.
 */
class Supervisor {
  constructor(start, maxRestarts) {
    this.start = start; // async () => a new {sync, script, ended}, the app started in it
    this.maxRestarts = maxRestarts;
    this.python = null;
    this.files = new Map(); // image id -> File, until its result shows
    this.lost = new Map(); // image id -> how many worker ends it waited through
    this.nextId = 0;
    this.waiting = []; // images chosen while no Python runs
    this.restarts = 0;
    $("worker-reload").addEventListener("click", () => location.reload());
  }

  /** Hand images to Python (or keep them until one runs); returns how many. */
  add(files) {
    for (const id of this.files.keys()) if (finished(id)) this.files.delete(id);
    if (!this.python) {
      this.waiting.push(...files);
      return files.length;
    }
    const ids = files.map((file) => {
      this.nextId += 1;
      this.files.set(this.nextId, file);
      return this.nextId;
    });
    this.python.sync.add_files(files, ids);
    return files.length;
  }

  /** The worker is up and the app started in it: hand over what waited, and watch it. */
  running(python) {
    this.python = python;
    document.body.dataset.worker = "running";
    if (this.waiting.length) this.add(this.waiting.splice(0));
    python.ended?.then(() => this.ended(python));
  }

  async ended(python) {
    if (this.python !== python) return;
    this.python = null;
    const body = document.body.dataset;
    body.worker = "lost";
    body.workerLostAt = String(performance.now());
    await opsApplied(); // results the worker sent before it ended count as results
    const again = [];
    const failed = [];
    for (const [id, file] of this.files) {
      if (finished(id)) continue;
      const times = (this.lost.get(id) ?? 0) + 1;
      this.lost.set(id, times);
      (times >= 2 ? failed : again).push([id, file]);
    }
    for (const [id] of failed) this.fail(id, "Not tried again: Python stopped twice while this image waited.");
    python.script.remove();
    this.restarts += 1;
    const unclassified = "Not classified: Python stopped. Reload the page and add it again.";
    if (this.restarts > this.maxRestarts) {
      for (const [id] of again) this.fail(id, unclassified);
      this.notice(
        `Python stopped ${this.restarts} times, so it is not started again. ` +
          `Reload the page to start afresh (${again.length} images had no result yet).`,
        "given-up",
        true,
      );
      return;
    }
    this.notice(`Python stopped unexpectedly; restarting it. ${again.length} images will be classified again.`, "restarting");
    const t0 = performance.now();
    let next;
    try {
      next = await this.start();
    } catch (err) {
      console.error("pyapp: restarting Python failed", err);
      for (const [id] of again) this.fail(id, unclassified);
      this.notice(`Python stopped and could not be restarted: ${err.message ?? err}. Reload the page.`, "failed", true);
      return;
    }
    for (const [id] of again) $(`item-${id}`)?.remove(); // the new worker shows them afresh
    if (again.length) next.sync.add_files(again.map(([, f]) => f), again.map(([id]) => id));
    this.running(next);
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    this.notice(
      `Python stopped unexpectedly and was restarted in ${s} s; ${again.length} images waiting for a result were ` +
        `handed to it${failed.length ? `, ${failed.length} not tried again` : ""}.`,
      "restarted",
    );
  }

  /** Image `id` will get no result from Python: its card says why. */
  fail(id, why) {
    this.files.delete(id);
    const item = $(`item-${id}`);
    if (!item) return;
    item.className = "result failed";
    const status = item.querySelector(".status");
    if (status) status.textContent = why;
  }

  notice(text, state, reload = false) {
    $("worker-notice").hidden = false;
    $("worker-notice-message").textContent = text;
    $("worker-reload").hidden = !reload;
    document.body.dataset.workerNotice = state;
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

/** Whether the app is working for the visitor: an image waits for its result, or a live stream runs. */
const appBusy = () => document.body.dataset.live === "running" || Boolean($("results").querySelector(".result.pending"));

/**
 * Resolves once the app has been idle (`appBusy` false) for `quietMs`: images chosen right after the boot, or a
 * live stream started then, come first.
 */
async function appIdle(quietMs = 1000) {
  for (;;) {
    await new Promise((resolve) => {
      const observer = new MutationObserver(() => check());
      const check = () => {
        if (appBusy()) return;
        observer.disconnect();
        resolve();
      };
      // Only what `appBusy` reads: the result list and body[data-live]. Not the whole page, whose live overlay
      // changes with every frame.
      observer.observe($("results"), { subtree: true, attributes: true, attributeFilter: ["class"], childList: true });
      observer.observe(document.body, { attributes: true, attributeFilter: ["data-live"] });
      check();
    });
    await sleep(quietMs);
    if (!appBusy()) return;
  }
}

/**
 * Have a worker of its own save this build's Pyodide snapshot (js/snapshot.mjs), which the next visit's boot
 * restores instead of starting CPython. Only while the app is idle (`appIdle`): its thread then competes with
 * nothing the visitor waits for, and a live stream started meanwhile stops it (a later visit saves one).
 * `body[data-snapshot]` says how it went.
 */
function saveSnapshot(info) {
  if (!globalThis.caches) return;
  document.body.dataset.snapshot = "saving";
  let worker;
  try {
    worker = new Worker(new URL(`js/snapshot-worker.mjs?build=${info.build_id}`, root), { type: "module" });
  } catch (err) {
    document.body.dataset.snapshot = `failed: ${err?.message ?? err}`;
    return;
  }
  const live = new MutationObserver(() => {
    if (document.body.dataset.live === "running") done("stopped: a live stream started");
  });
  const done = (state) => {
    live.disconnect();
    if (document.body.dataset.snapshot === "saving") document.body.dataset.snapshot = state;
    worker.terminate();
  };
  live.observe(document.body, { attributes: true, attributeFilter: ["data-live"] });
  worker.onmessage = ({ data }) => done(data.state === "saved" ? "saved" : `failed: ${data.error}`);
  worker.onerror = (event) => done(`failed: ${event.message || "the snapshot worker did not start"}`);
}

/**
 * Fetch the files the service worker has not cached yet, so that it keeps them before the worker asks. Those it
 * has (a repeat visit) are left alone: fetching them again would only keep the service worker, which answers
 * the worker's own requests too, busy reading megabytes for nothing while Python boots.
 */
async function prefetchUncached(files) {
  for (const f of files) {
    const url = new URL(f, root);
    if (!(await globalThis.caches?.match(url).catch(() => null))) fetch(url).catch(() => {});
  }
}

async function main() {
  listenToServiceWorker();
  markFirstResult();
  const t0 = performance.now();
  const boot = new Boot(Number(params.get("stall_ms")) || 90_000);
  let info = null;
  // The app's Python: its model's files download while Pyodide boots (the worker starts them; Python takes
  // each once), and app.py gets ui.py beside it.
  const startApp = () => startPython(info, root, "app.py", "pyapp", { preload: info.boot.Model, modules: ["ui.py"] });
  // A restart: Python again, with the app started on the backend it ran on.
  const restart = async () => {
    const python = await startApp();
    await python.sync.start(document.body.dataset.backend, root);
    return python;
  };
  // Images chosen while Python starts are kept and handed over once it runs (they then wait for the model).
  const supervisor = new Supervisor(restart, Number(params.get("max_restarts") ?? 3));
  wireImageInputs(
    (files) => {
      const images = [...files];
      if (images.length) supervisor.add(images);
    },
    (port) => {
      const worker = supervisor.python?.worker;
      worker?.postMessage({ pyapp: "live", port }, [port]);
      return Boolean(worker);
    },
  );
  try {
    boot.enter("Build information (vendor/build.json)");
    const response = await fetch(new URL("vendor/build.json", root));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    info = await response.json();
    info.boot["TF.js"] = info.boot["TF.js"].map(wasmBinaryHere);
    boot.info = info;
    document.body.dataset.build = info.build_id;
    boot.enter("Offline support and isolation (service worker)");
    const isolation = await isolate(info);
    showMode(isolation);
    if (!isolation.reg && isolation.why) offlineStatus(`Offline support unavailable: ${isolation.why}`, "unavailable");
    const progress = trackProgress(info, () => boot.progress());
    // Overlap: TF.js's files (into the cache) while PyScript starts the worker. The model's the worker fetches
    // itself.
    if (navigator.serviceWorker?.controller) prefetchUncached(info.boot["TF.js"]);
    boot.enter("Python runtime (Pyodide, numpy, pyapp, TF.js)");
    const python = await startApp();
    supervisor.running(python);
    boot.enter("Backend and model");
    const backend = await python.sync.start(params.get("backend") ?? "auto", root);
    boot.done();
    progress.finish();
    performance.mark("pyapp:ready");
    document.body.dataset.backend = backend;
    document.body.dataset.bootMs = String(Math.round(performance.now() - t0));
    wireControls(() => supervisor.python?.sync);
    // For tests and the console: images go through the supervisor (kept until their result shows).
    globalThis.pyapp = { add_files: (files) => supervisor.add([...files]), python: () => supervisor.python?.sync };
    document.body.dataset.ready = "true";
    afterBoot(isolation.reg, info, python.sync);
    await opsApplied(); // the snapshot state app.py reported as it started, and the images it queued
    if (document.body.dataset.pythonSnapshot !== "used") appIdle().then(() => saveSnapshot(info));
  } catch (err) {
    console.error("pyapp: boot failed", err);
    boot.fail(err, boot.info);
  }
}

main();
