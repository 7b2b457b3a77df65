// Pyodide memory snapshots for repeat visits: the interpreter's memory right after its own start, saved once and
// restored on the next boot instead of starting CPython again (Pyodide 0.27.7's `_makeSnapshot` /
// `makeMemorySnapshot()` / `_loadSnapshot`).
// - Taken before any package is loaded: Pyodide 0.27.7 cannot snapshot after `loadPackage("numpy")` ("Unexpected
//   hiwire entry"). numpy and pyapp are loaded after the restore, as on any boot.
// - Made by a worker of its own (js/snapshot-worker.mjs), which the page starts once the app has been idle for a
//   second (no image waiting, no live stream): nothing the visitor waits for competes with it.
// - Kept in Cache Storage under `pyodide-snapshot-<build>`, with its sha256; a restore checks the bytes first
//   and discards a snapshot that does not match. The service worker deletes the snapshots of other builds when
//   a new build takes over: each build makes its own (its Pyodide may differ).

const PREFIX = "pyodide-snapshot-";
const ENTRY = new URL("../pyodide-snapshot.bin", import.meta.url).href;

/** The Cache Storage name of `build`'s snapshot. */
export const cacheName = (build) => `${PREFIX}${build}`;

/** The first word of a Pyodide 0.27 snapshot (its `API.makeSnapshot`). */
const MAGIC = 1886286592;

/**
 * Whether `bytes` are laid out as a Pyodide snapshot: its magic word, then a header of the length its second word
 * says, then whole 64 KiB pages of WebAssembly memory. Pyodide sizes the new instance's memory from the snapshot
 * before it checks anything, and bytes that are not one can leave its boot hanging instead of failing.
 */
function looksLikeSnapshot(bytes) {
  if (bytes.byteLength < 16 || bytes.byteLength % 4) return false;
  const [magic, header] = new Uint32Array(bytes.buffer, bytes.byteOffset, 2);
  return magic === MAGIC && header >= 16 && header < bytes.byteLength && (bytes.byteLength - header) % 65536 === 0;
}

async function sha256(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * `build`'s snapshot, checked: `{bytes}`, or `{why}` there is none to use (then the boot starts CPython as
 * usual). A snapshot whose bytes do not match its sha256 is deleted.
 */
export async function readSnapshot(build) {
  if (!build) return { why: "no build id" };
  if (!globalThis.caches) return { why: "no Cache Storage here" };
  try {
    const response = await (await caches.open(cacheName(build))).match(ENTRY);
    if (!response) return { why: "none saved yet" };
    const bytes = new Uint8Array(await response.arrayBuffer());
    if ((await sha256(bytes)) !== response.headers.get("X-Sha256")) {
      await discardSnapshot(build);
      return { why: "its sha256 did not match: discarded" };
    }
    if (!looksLikeSnapshot(bytes)) {
      await discardSnapshot(build);
      return { why: "not a Pyodide snapshot: discarded" };
    }
    return { bytes };
  } catch (err) {
    return { why: `unreadable (${err?.message ?? err})` };
  }
}

/** Delete `build`'s snapshot (one that failed to restore is made again on a later visit). */
export async function discardSnapshot(build) {
  await globalThis.caches?.delete(cacheName(build)).catch(() => false);
}

/**
 * Start a bare Pyodide in snapshot mode, take its memory and save it for `build`; resolves to its size in bytes.
 * `loadPyodide` is Pyodide's own; `indexURL` where its files are.
 */
export async function makeSnapshot(loadPyodide, indexURL, build) {
  const pyodide = await loadPyodide({ indexURL, _makeSnapshot: true });
  const bytes = pyodide.makeMemorySnapshot();
  const cache = await caches.open(cacheName(build));
  const headers = { "Content-Type": "application/octet-stream", "X-Sha256": await sha256(bytes) };
  await cache.put(ENTRY, new Response(bytes, { headers }));
  return bytes.length;
}
