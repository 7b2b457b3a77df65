// Service worker: offline support with one versioned cache per build.
//
// Registered as sw.js?build=<build_id> (from vendor/build.json), so a new build
// is a new script URL, hence a new worker with its own cache. Rules:
// - every file of the build is checked against its sha256 in build.json before
//   it is cached or served from the network, so one version never mixes with
//   another (a server that already has a newer build gets a 409 instead);
// - the first install caches nothing and activates at once, so the first visit
//   waits for it as little as possible and downloads each file once (through this
//   worker, which caches it as it passes); the page then asks for the rest of the
//   offline set, its shell included ("complete": build.json's
//   `offline` list: the app's runtime, not the samples, Pillow, model variants and
//   datasets, which are kept when first used); later installs cache that set before
//   they take over, moving over from the older cache every file whose sha256 did not
//   change (only the rest is downloaded), then delete the older caches whole;
// - a full storage quota costs the offline copy, never an answer: the file is served
//   from the network and the pages hear "storage full";
// - from a host that compresses nothing, the build's own compressed copies are fetched
//   and decoded here: X.br for big files (brotli-dec-wasm, which the build makes a
//   classic script for importScripts), else X.gz (the browser's DecompressionStream);
// - bytes fetched are reported on the "pyapp-progress" BroadcastChannel, which is
//   how the page draws real download progress for files its worker loads;
// - every same-origin response it gives the page carries the headers that make the page
//   cross-origin isolated (COOP/COEP/CORP) and its Content-Security-Policy: on a static
//   host that sends no headers at all (GitHub Pages, S3, a default nginx), this worker is
//   what gives the page SharedArrayBuffer and WASM threads (the coi-serviceworker
//   technique; js/page.js reloads once, on the very first visit, to be served by it).

// Sets self.brotliDecWasm. Missing (an older build) or refused, the gzip copies still serve.
try {
  importScripts("vendor/brotli/brotli-dec.js");
} catch {
  // no brotli decoder: gzip copies only
}

const BUILD = new URL(self.location.href).searchParams.get("build") || "dev";
const CACHE = `pyapp-${BUILD}`;
const progress = new BroadcastChannel("pyapp-progress");
let infoPromise = null;

const scopeUrl = (rel) => new URL(rel, self.registration.scope).href;
const INFO = "vendor/build.json";

/** What makes a page cross-origin isolated; build.json adds the rest of the site's headers (its CSP). */
const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};
let siteHeaders = ISOLATION;

/**
 * `response` with the isolation headers set, and for the build's own files the site's other
 * headers too (its CSP); a server that sent them already loses nothing.
 */
function withHeaders(response, ours = true) {
  // An opaque or error response (status 0) has no headers to change, and is not ours anyway.
  if (!response || response.status === 0 || response.type === "opaque" || response.type === "opaqueredirect") {
    return response;
  }
  const headers = new Headers(response.headers);
  for (const [k, v] of Object.entries(ours ? siteHeaders : ISOLATION)) headers.set(k, v);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/** This worker's build.json: from its cache, else from the network (which must still be this build). */
function buildInfo() {
  infoPromise ??= (async () => {
    const cache = await caches.open(CACHE);
    let response = await cache.match(scopeUrl(INFO));
    if (!response) {
      response = await fetch(scopeUrl(INFO), { cache: "no-store" });
      const info = await response.clone().json();
      if (info.build_id !== BUILD) throw new Error(`server has build ${info.build_id}, this worker is ${BUILD}`);
      await cache.put(scopeUrl(INFO), response.clone());
    }
    // Whether the server compresses what it sends (it did build.json, a compressible file); the cached
    // copy keeps the header it came with.
    const compresses = response.headers.has("Content-Encoding");
    const info = await response.json();
    siteHeaders = { ...(info.headers ?? {}), ...ISOLATION };
    return { info, files: { ...info.shell, ...info.files }, compresses, noCopies: new Set(info.no_copies ?? []) };
  })();
  infoPromise.catch(() => {
    infoPromise = null; // try again on the next request
  });
  return infoPromise;
}
const relOf = (url) => url.slice(self.registration.scope.length).split("?")[0] || "index.html";

async function digestHex(buffer) {
  const d = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The types of the files `serve.py build --out` writes gzip copies of (`X.gz`, beside `X`; the same list
 * as pyapp_build/compress.py's COMPRESSIBLE_SUFFIXES, checked by tests/test_compress.py), with the
 * Content-Type each must be served with (WebAssembly's streaming compile insists on its own).
 */
const GZIP_COPIES = {
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".py": "text/x-python; charset=utf-8",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
  ".webmanifest": "application/manifest+json",
  ".map": "application/json",
  ".bin": "application/octet-stream",
  ".npy": "application/octet-stream",
  ".csv": "text/csv; charset=utf-8",
  ".whl": "application/zip",
  ".zip": "application/zip",
};
const MIN_GZIP_SIZE = 1024; // smaller files have no copy (compress.py MIN_SIZE)
/** The Content-Type of `rel` where the build keeps compressed copies of its type, else undefined. */
const copyType = (rel) => GZIP_COPIES[rel.slice(rel.lastIndexOf("."))];

/**
 * On a host that compresses nothing (`python3 -m http.server`, a bucket without encoding metadata), the
 * response for the gzip copy of `rel`, decoded here, with its original's type; null where there is none
 * (a copy is only kept when it saves 5%) or the browser cannot decode gzip streams.
 */
async function gzipCopy(rel, size) {
  if (!(size >= MIN_GZIP_SIZE) || typeof DecompressionStream !== "function") return null;
  return decodedCopy(rel, ".gz", () => new DecompressionStream("gzip"));
}

/**
 * The response for `rel`'s copy `rel + ending`, piped through `makeDecoder()` (made only once the copy
 * answers), with its original's type; null where the build has no such copy or the host encoded it itself.
 */
async function decodedCopy(rel, ending, makeDecoder) {
  const type = copyType(rel);
  if (!type) return null;
  const response = await fetch(scopeUrl(`${rel}${ending}`), { cache: "no-store" }).catch(() => null);
  if (!response?.ok || response.headers.has("Content-Encoding")) return null;
  const headers = new Headers(response.headers);
  headers.set("Content-Type", type);
  return new Response(response.body.pipeThrough(makeDecoder()), { status: 200, headers });
}

const BROTLI_WASM = "vendor/brotli/brotli_dec_wasm_bg.wasm";
/**
 * The smallest file fetched as its brotli copy: the decoder costs about 100 KB, once; brotli saves a
 * quarter to a third over gzip on the big files (Pyodide's WebAssembly and standard library, numpy).
 */
const MIN_BROTLI_SIZE = 512 * 1024;
let brotliPromise = null;

/** brotli-dec-wasm, ready to use; null where it cannot run (no script, no WebAssembly, a broken binary). */
function brotliDecoder() {
  brotliPromise ??= (async () => {
    const lib = self.brotliDecWasm;
    if (!lib || typeof WebAssembly !== "object") return null;
    const { info, files } = await buildInfo();
    if (!files[BROTLI_WASM]) return null;
    // Checked against build.json like every file (fetched as its gzip copy: no brotli to decode brotli).
    const binary = await fetchChecked(BROTLI_WASM, files[BROTLI_WASM], info.sizes?.[BROTLI_WASM], false);
    lib.initSync({ module: await WebAssembly.compile(await binary.arrayBuffer()) });
    return lib;
  })().catch((err) => {
    console.warn("pyapp service worker: no brotli decoder, gzip copies instead:", err);
    return null;
  });
  return brotliPromise;
}

/**
 * A TransformStream decoding brotli with `lib`'s streaming decoder. Its errors are TypeErrors, as a
 * corrupt gzip stream's are, so that the caller falls back to the next copy.
 */
function brotliStream(lib) {
  const decoder = new lib.DecompressStream();
  const { NeedsMoreOutput, NeedsMoreInput, ResultSuccess } = lib.BrotliStreamResultCode;
  let finished = false;
  const fail = (why) => {
    decoder.free();
    throw new TypeError(`brotli: ${why}`);
  };
  return new TransformStream({
    transform(chunk, controller) {
      let input = chunk;
      while (!finished) {
        let result;
        try {
          result = decoder.decompress(input, 1 << 20);
        } catch (err) {
          fail(err?.message ?? err);
        }
        const { buf, code, input_offset: used } = result;
        result.free();
        if (buf.byteLength) controller.enqueue(buf);
        if (code === ResultSuccess) finished = true;
        else if (code === NeedsMoreOutput) input = input.subarray(used);
        else if (code === NeedsMoreInput) return;
        else fail(`result code ${code}`);
      }
    },
    flush() {
      if (!finished) fail("the stream ended before its last block");
      decoder.free();
    },
  });
}

/** Like gzipCopy: the brotli copy of `rel` (big files only), decoded here; null where there is none. */
async function brotliCopy(rel, size) {
  if (!(size >= MIN_BROTLI_SIZE) || !copyType(rel)) return null; // no decoder download for nothing
  const lib = await brotliDecoder();
  return lib && decodedCopy(rel, ".br", () => brotliStream(lib));
}

/**
 * Fetch one file of the build, counting bytes, and check its sha256. From a server that compresses
 * nothing, its brotli copy (big files), else its gzip copy, where there is one; a copy that does not
 * decode to the right bytes (a stale or corrupt one) is ignored and the next one, or the file, fetched.
 */
async function fetchChecked(rel, sha, size, brotli = true) {
  const { compresses, noCopies } = await buildInfo().catch(() => ({ compresses: true }));
  if (!compresses && !noCopies.has(rel)) {
    for (const copyOf of brotli ? [brotliCopy, gzipCopy] : [gzipCopy]) {
      const copy = await copyOf(rel, size);
      if (!copy) continue;
      try {
        return await checked(rel, sha, size, copy);
      } catch (err) {
        if (!err.mismatch && !(err instanceof TypeError)) throw err; // TypeError: a corrupt stream
      }
    }
  }
  const response = await fetch(scopeUrl(rel), { cache: "no-store" });
  if (!response.ok) throw new Error(`${rel}: HTTP ${response.status}`);
  return checked(rel, sha, size, response);
}

/** `response`'s body read whole (reporting progress), checked against `sha`, as a new Response. */
async function checked(rel, sha, size, response) {
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  let last = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    if (loaded - last > 256 * 1024) {
      last = loaded;
      progress.postMessage({ type: "bytes", file: rel, loaded, total: size });
    }
  }
  const body = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    body.set(c, offset);
    offset += c.byteLength;
  }
  if ((await digestHex(body)) !== sha) {
    throw Object.assign(new Error(`${rel} on the server is not build ${BUILD}`), { mismatch: true });
  }
  progress.postMessage({ type: "bytes", file: rel, loaded, total: size, done: true });
  // The body is decoded already (a server may have sent it brotli- or gzip-encoded): the encoding's
  // headers no longer describe it.
  const headers = new Headers(response.headers);
  headers.delete("Content-Encoding");
  headers.delete("Content-Length");
  return new Response(body, { status: 200, headers });
}

/** The storage quota is used up: the bytes are good, there is no room to keep them. */
const isQuotaError = (err) => err?.name === "QuotaExceededError";
const STORAGE_FULL = "storage full";

/** Tell every page of this site that the offline copy could not be completed, and why. */
async function reportIncomplete(error) {
  for (const client of await self.clients.matchAll({ includeUncontrolled: true })) {
    client.postMessage({ type: "offline-failed", error, build: BUILD });
  }
}

/**
 * The other builds' caches (pyapp-*, not this worker's), each with its build.json's file list: where
 * one lists a file with the same sha256 as this build, its copy is the same bytes. An update's install
 * moves such files into its own cache instead of downloading them again (reuse); a worker that finds
 * a file missing from its own cache looks there before the network (sameBytesElsewhere).
 */
async function otherBuilds() {
  const out = [];
  for (const name of await caches.keys()) {
    if (!name.startsWith("pyapp-") || name === CACHE) continue;
    const cache = await caches.open(name);
    const info = await (await cache.match(scopeUrl(INFO)))?.json().catch(() => null);
    if (info) out.push({ cache, files: { ...info.shell, ...info.files } });
  }
  return out;
}

/**
 * `rel` from another build's cache, where that build has the same sha256 for it: the same bytes. An
 * update moves unchanged files into the new build's cache, and a tab still on this build finds them there.
 */
async function sameBytesElsewhere(rel) {
  let files;
  try {
    ({ files } = await buildInfo());
  } catch {
    return undefined;
  }
  if (!files[rel]) return undefined;
  for (const other of await otherBuilds()) {
    if (other.files[rel] === files[rel]) {
      const hit = await other.cache.match(scopeUrl(rel));
      if (hit) return hit;
    }
  }
  return undefined;
}

async function reuse(older, rel, sha, cache) {
  for (const old of older) {
    if (old.files[rel] !== sha) continue;
    const hit = await old.cache.match(scopeUrl(rel));
    if (!hit) continue;
    await cache.put(scopeUrl(rel), hit);
    await old.cache.delete(scopeUrl(rel));
    return true;
  }
  return false;
}

/**
 * Cache `rels` (this build's files), four at a time, downloaded and checked. An update's install
 * (`update`) first moves each file whose sha256 did not change from an older build's cache; a running
 * worker skips the files another build's cache holds with the same sha256 (it serves them from there,
 * and a newer build's files must stay where they are). Resolves to the number of files downloaded; a
 * full storage quota rejects with STORAGE_FULL.
 */
async function cacheFiles(rels, update = false) {
  const { info, files } = await buildInfo();
  const cache = await caches.open(CACHE);
  const older = update ? await otherBuilds() : [];
  const queue = rels.filter((r) => files[r]);
  let downloaded = 0;
  const worker = async () => {
    while (queue.length) {
      const rel = queue.shift();
      if (await cache.match(scopeUrl(rel))) continue;
      try {
        if (update ? await reuse(older, rel, files[rel], cache) : await sameBytesElsewhere(rel)) continue;
        const resp = await fetchChecked(rel, files[rel], info.sizes?.[rel]);
        downloaded += 1;
        await cache.put(scopeUrl(rel), resp);
      } catch (err) {
        queue.length = 0; // stop the other three too
        throw isQuotaError(err) ? new Error(STORAGE_FULL) : err;
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return downloaded;
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const { info, files } = await buildInfo();
      const others = (await caches.keys()).filter((k) => k.startsWith("pyapp-") && k !== CACHE);
      if (others.length === 0) {
        // First visit: take over at once, caching nothing yet. The page waits for this worker before it
        // boots (so that each file it downloads comes through here and is kept as it passes), and on a
        // host without isolation headers it reloads to be served by it: every millisecond here is the
        // visitor's. The shell, which the page has already loaded, is kept with the rest of the offline set
        // ("complete", after the boot), as are the files nothing fetched on the way.
        await self.skipWaiting();
      } else {
        // An update: complete before it may take over (what did not change comes from the older cache).
        await cacheFiles(info.offline ?? Object.keys(files), true).catch(async (err) => {
          await reportIncomplete(`the update could not be saved: ${err?.message ?? err}`);
          throw err;
        });
      }
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      // Other builds' files, and their Pyodide snapshots (js/snapshot.mjs): each build saves its own.
      const stale = (k) =>
        (k.startsWith("pyapp-") && k !== CACHE) ||
        (k.startsWith("pyodide-snapshot-") && k !== `pyodide-snapshot-${BUILD}`);
      await Promise.all(names.filter(stale).map((k) => caches.delete(k)));
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  const { type, extra = [] } = event.data ?? {};
  if (type === "complete") {
    // Cache the offline set of this build (after the first visit's boot), and what the page adds to it
    // (files of this build only: cacheFiles skips the rest), then report.
    event.waitUntil(
      buildInfo()
        .then(({ info, files }) => cacheFiles([...(info.offline ?? Object.keys(files)), ...extra]))
        .then(() => event.source?.postMessage({ type: "offline-ready", build: BUILD }))
        .catch((err) => event.source?.postMessage({ type: "offline-failed", error: String(err?.message ?? err) })),
    );
  } else if (type === "activate-now") {
    self.skipWaiting();
  } else if (type === "build") {
    event.source?.postMessage({ type: "build", build: BUILD });
  }
});

self.addEventListener("fetch", (event) => {
  const url = event.request.url;
  // HEAD too: the page asks with HEAD which files it cannot have (js/page.js missingFiles), and
  // offline only this worker knows; left to the network, every file would look missing.
  const { method } = event.request;
  if ((method !== "GET" && method !== "HEAD") || !url.startsWith(self.registration.scope)) return;
  // fetch() throws on these (DevTools asks for them); let the browser answer them itself.
  if (event.request.cache === "only-if-cached" && event.request.mode !== "same-origin") return;
  if (new URL(url).searchParams.has("fresh")) return; // update checks go to the network
  event.respondWith(respond(event.request, (p) => event.waitUntil(p)));
});

/** `response`'s status and headers without its body: the answer to a HEAD request. */
const headOf = (response) =>
  new Response(null, { status: response.status, statusText: response.statusText, headers: response.headers });

/** The answer to `request`; `keep(promise)` keeps this worker alive until `promise` settles. */
async function respond(request, keep = () => {}) {
  await buildInfo().catch(() => {}); // the site's headers (after a restart of this worker too)
  const cache = await caches.open(CACHE);
  const rel = relOf(request.url); // a navigation to the site root is index.html
  if (rel === INFO && request.method === "GET") {
    const info = await cache.match(scopeUrl(INFO));
    if (info) return withHeaders(info);
  }
  const hit = (await cache.match(scopeUrl(rel))) ?? (await sameBytesElsewhere(rel));
  if (hit && request.method === "HEAD") return withHeaders(headOf(hit));
  if (hit) {
    progress.postMessage({ type: "cached", file: rel });
    return withHeaders(hit);
  }
  // Not cached: the server says whether it has the file (a HEAD downloads nothing to check or keep).
  if (request.method === "HEAD") return withHeaders(await fetch(request), false);
  let files;
  try {
    ({ files } = await buildInfo());
  } catch {
    return withHeaders(await fetch(request), false); // no build info (offline and uncached): plain network
  }
  if (!files[rel]) return withHeaders(await fetch(request), false); // not part of the build (e.g. test pages)
  try {
    const { info } = await buildInfo();
    const response = await fetchChecked(rel, files[rel], info.sizes?.[rel]);
    // The bytes are intact whether or not there is room to keep them: a full quota costs the offline
    // copy this file (the pages are told), never the answer. The page gets them at once; storing them
    // (tens of MB on a first visit) goes on behind.
    keep(
      cache
        .put(scopeUrl(rel), response.clone())
        .catch((err) => reportIncomplete(isQuotaError(err) ? STORAGE_FULL : String(err?.message ?? err))),
    );
    return withHeaders(response);
  } catch (err) {
    const status = err.mismatch ? 409 : 503;
    return withHeaders(
      new Response(`${err.message}\n`, { status, headers: { "Content-Type": "text/plain" } }),
    );
  }
}
