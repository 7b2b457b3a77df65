"""Precompressed siblings of a static site's files: ``X.br`` (brotli) and ``X.gz`` (gzip) next to ``X``.

A server answers a request for ``X`` from a client that accepts br or gzip with the
sibling's bytes and a ``Content-Encoding`` header; the client decodes them back to
exactly ``X``'s bytes (every sibling is decoded and compared before it is kept), so
checks on the content, such as the service worker's sha256, still hold.

- Compressible by suffix (text, JS, JSON, WebAssembly, model weights, ``.npy``, the
  stored archives of bytecode); formats that are compressed already (images, ``.gz``) never.
- Files under 1 KiB are left alone, and a sibling is kept only when it is at least
  5% smaller than its original.
- Brotli at quality 11 with Node.js's built-in zlib (the build needs Node anyway; the
  Python standard library has no brotli): one ``node`` process per batch, the files
  compressed in parallel on its thread pool. Gzip at level 9 with mtime 0. The same
  input always gives the same bytes.
- A content-addressed cache outside the repository (:func:`cache_dir`: ``$PYAPP_CACHE_DIR``,
  else ``$XDG_CACHE_HOME/pyapp``, else ``~/.cache/pyapp``; entries in ``compressed/``)
  keeps every sibling written, keyed by the sha256 of the original, the encoding and the
  settings (:func:`cache_settings`: quality, level, the compressor library's version), so
  a fresh clone on the same machine compresses nothing it compressed before. An entry is
  used only after it decodes to exactly the original (a broken one is written again);
  entries are written atomically, the least recently used go past :data:`CACHE_MAX_BYTES`,
  and a cache that cannot be written is skipped with one line on stderr.

Host-only, standard library only.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath

#: Suffixes worth compressing. serve.py keeps its own copy (it must run on the standard
#: library before anything is importable); tests/test_serve.py checks they agree.
COMPRESSIBLE_SUFFIXES = frozenset(
    {
        ".js",
        ".mjs",
        ".wasm",
        ".json",
        ".css",
        ".html",
        ".py",
        ".svg",
        ".txt",
        ".webmanifest",
        ".map",
        ".bin",
        ".npy",
        ".csv",
        # Stored archives (:data:`ARCHIVE_SUFFIXES`): the bytecode ones (pyapp_build.pycompile) are stored
        # uncompressed, for the wire to compress whole.
        ".whl",
        ".zip",
    }
)
#: Zip archives: given siblings only when stored (the bytecode archives are); deflated ones are compressed already.
ARCHIVE_SUFFIXES = frozenset({".whl", ".zip"})
#: Compressed already: never given siblings.
ALREADY_COMPRESSED_SUFFIXES = frozenset({".gz", ".br", ".png", ".jpg", ".jpeg", ".gif", ".webp"})
#: Smaller files are sent as they are.
MIN_SIZE = 1024
#: A sibling must be at least this much smaller than its original to be kept.
MIN_SAVING = 0.05
BROTLI_QUALITY = 11
GZIP_LEVEL = 9
#: Content-Encoding token -> the sibling's suffix, in the order servers prefer them.
SIBLINGS: dict[str, str] = {"br": ".br", "gzip": ".gz"}
#: What :func:`compress_tree` wrote, kept at the tree's root (``.stamp-*`` files are neither
#: served nor exported). Only siblings listed there are ever deleted: a ``.gz`` file
#: without an original next to it may be a file of the site (``digits.csv.gz``).
INDEX_NAME = ".stamp-siblings.json"
#: The cache's entries (all encodings, all settings) are kept under this many bytes in all;
#: the least recently used go first.
CACHE_MAX_BYTES = 512 * 1024 * 1024
#: Part of every cache key: raise it when what an entry means changes.
CACHE_FORMAT = 1


class CompressError(RuntimeError):
    """Compression cannot run (no Node.js) or a sibling does not decode to its original."""


@dataclass(frozen=True)
class FileSizes:
    """One compressible file: its size and its siblings' (``None``: no sibling, too little saved)."""

    path: str
    original: int
    br: int | None
    gz: int | None


@dataclass
class CompressReport:
    """What :func:`compress_tree` found and did."""

    #: Every compressible file of the tree (with or without siblings), by path.
    files: list[FileSizes] = field(default_factory=list)
    #: Files (re)compressed in this run; the others' siblings were up to date.
    compressed: list[str] = field(default_factory=list)
    #: Siblings deleted: their original is gone or no longer qualifies.
    removed: list[str] = field(default_factory=list)
    #: Siblings of :attr:`compressed` files taken from the cache (checked) instead of compressed.
    cache_hits: int = 0

    def total(self, coding: str | None = None) -> int:
        """Bytes of all :attr:`files` as sent to a client accepting ``coding`` ("br", "gzip" or None)."""
        total = 0
        for f in self.files:
            encoded = f.br if coding == "br" else f.gz if coding == "gzip" else None
            total += f.original if encoded is None else encoded
        return total


def has_compressible_suffix(name: str) -> bool:
    """Whether a file of this name is worth compressing, judging by its suffix alone."""
    return PurePath(name).suffix.lower() in COMPRESSIBLE_SUFFIXES


def is_compressible(path: Path, size: int | None = None) -> bool:
    """Whether ``path`` gets siblings: a compressible suffix, not hidden, at least :data:`MIN_SIZE` bytes; an
    archive (:data:`ARCHIVE_SUFFIXES`) only when it is stored uncompressed."""
    if path.name.startswith(".") or not has_compressible_suffix(path.name):
        return False
    if (path.stat().st_size if size is None else size) < MIN_SIZE:
        return False
    return PurePath(path.name).suffix.lower() not in ARCHIVE_SUFFIXES or _stored_archive(path)


def _stored_archive(path: Path) -> bool:
    """Whether most of a zip archive's bytes are stored uncompressed (a deflated one is compressed already)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile):
        return False
    stored = sum(m.file_size for m in members if m.compress_type == zipfile.ZIP_STORED)
    return stored * 2 >= sum(m.file_size for m in members) > 0


def sibling(path: Path, coding: str) -> Path:
    """``X.br`` or ``X.gz`` for ``coding`` "br" or "gzip"."""
    return path.with_name(path.name + SIBLINGS[coding])


def gzip_bytes(data: bytes) -> bytes:
    """Gzip at level 9 with mtime 0 and no file name: the same data always gives the same bytes."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


# One process for the whole batch; every file goes to libuv's thread pool at once, so they
# are compressed in parallel. Each result is decoded again and compared before it is written.
_NODE_BROTLI = r"""
const fs = require("fs");
const zlib = require("zlib");
const C = zlib.constants;
const { quality, jobs } = JSON.parse(fs.readFileSync(0, "utf8"));
function one([src, dst]) {
  return new Promise((resolve, reject) => {
    const data = fs.readFileSync(src);
    const params = {
      [C.BROTLI_PARAM_QUALITY]: quality,
      [C.BROTLI_PARAM_MODE]: C.BROTLI_MODE_GENERIC,
      [C.BROTLI_PARAM_SIZE_HINT]: data.length,
    };
    zlib.brotliCompress(data, { params }, (err, out) => {
      if (err) return reject(err);
      zlib.brotliDecompress(out, (err2, back) => {
        if (err2) return reject(err2);
        if (!back.equals(data)) return reject(new Error(`${src}: brotli output does not decode to the input`));
        fs.writeFileSync(dst, out);
        resolve(out.length);
      });
    });
  });
}
Promise.all(jobs.map(one)).then(
  (sizes) => process.stdout.write(JSON.stringify(sizes)),
  (err) => {
    process.stderr.write(String((err && err.stack) || err));
    process.exit(1);
  },
);
"""

_NODE_UNBROTLI = r"""
const fs = require("fs");
process.stdout.write(require("zlib").brotliDecompressSync(fs.readFileSync(0)));
"""

# For each [original, sibling.br]: does the sibling decode to exactly the original?
_NODE_MATCHES = r"""
const fs = require("fs");
const zlib = require("zlib");
const pairs = JSON.parse(fs.readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(pairs.map(([original, sibling]) => {
  try {
    return zlib.brotliDecompressSync(fs.readFileSync(sibling)).equals(fs.readFileSync(original));
  } catch (err) {
    return false;
  }
})));
"""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise CompressError("node is required for brotli compression (install Node.js >= 18)")
    return node


def brotli_files(jobs: Sequence[tuple[Path, Path]], quality: int | None = None) -> list[int]:
    """Brotli-compress each ``(source, destination)`` pair in one ``node`` process; the sizes written.

    Quality :data:`BROTLI_QUALITY` unless given, generic mode, the input size as size hint.
    """
    if not jobs:
        return []
    payload = {
        "quality": BROTLI_QUALITY if quality is None else quality,
        "jobs": [[str(src), str(dst)] for src, dst in jobs],
    }
    threads = max(1, min(os.cpu_count() or 1, 16))
    proc = subprocess.run(
        [_node(), "-e", _NODE_BROTLI],
        input=json.dumps(payload).encode(),
        capture_output=True,
        env={**os.environ, "UV_THREADPOOL_SIZE": str(threads)},
    )
    if proc.returncode != 0:
        raise CompressError(f"brotli compression failed:\n{proc.stderr.decode(errors='replace')}")
    sizes: list[int] = json.loads(proc.stdout)
    return sizes


def brotli_decompress(data: bytes) -> bytes:
    """Decode brotli ``data`` (with node; for checks and tests)."""
    proc = subprocess.run([_node(), "-e", _NODE_UNBROTLI], input=data, capture_output=True)
    if proc.returncode != 0:
        raise CompressError(f"brotli decoding failed:\n{proc.stderr.decode(errors='replace')}")
    return proc.stdout


def decode_sibling(path: Path) -> bytes:
    """The bytes a client gets from sibling ``path`` (``X.br`` or ``X.gz``) after decoding it."""
    data = path.read_bytes()
    if path.suffix == ".br":
        return brotli_decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    raise ValueError(f"{path} is not a .br or .gz sibling")


def siblings_match(pairs: Sequence[tuple[Path, Path]]) -> list[bool]:
    """For each ``(original, sibling)``: whether the sibling decodes to exactly the original's bytes.

    One ``node`` process checks all the ``.br`` siblings; a missing or broken sibling is False.
    """
    results = [False] * len(pairs)
    brotli = [i for i, (_, sib) in enumerate(pairs) if sib.suffix == ".br"]
    for i, (original, sib) in enumerate(pairs):
        if sib.suffix == ".gz":
            try:
                results[i] = gzip.decompress(sib.read_bytes()) == original.read_bytes()
            except (OSError, EOFError, gzip.BadGzipFile, zlib.error):
                results[i] = False
    for i, ok in zip(brotli, _brotli_matches([pairs[i] for i in brotli]), strict=True):
        results[i] = ok
    return results


def _brotli_matches(pairs: Sequence[tuple[Path, Path]]) -> list[bool]:
    """For each ``(original, brotli data)``, whatever the second file's name: does it decode to the original?"""
    if not pairs:
        return []
    payload = json.dumps([[str(original), str(encoded)] for original, encoded in pairs])
    proc = subprocess.run([_node(), "-e", _NODE_MATCHES], input=payload.encode(), capture_output=True)
    if proc.returncode != 0:
        raise CompressError(f"checking brotli siblings failed:\n{proc.stderr.decode(errors='replace')}")
    return [bool(ok) for ok in json.loads(proc.stdout)]


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """The cache's folder, like pip's: ``$PYAPP_CACHE_DIR``, else ``$XDG_CACHE_HOME/pyapp``, else ``~/.cache/pyapp``."""
    own = os.environ.get("PYAPP_CACHE_DIR")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec ignores a relative path
        return Path(xdg) / "pyapp"
    return Path.home() / ".cache" / "pyapp"


_NODE_BROTLI_VERSION = r"process.stdout.write(process.versions.brotli || process.version)"


def cache_settings(coding: str) -> str:
    """Everything besides the original's bytes that decides the bytes of its ``coding`` sibling.

    Part of the cache key, so that a change of any of them misses the cache: the settings,
    this module's brotli script, and the version of the library that compresses (node's
    brotli; Python's gzip module and zlib).
    """
    if coding == "br":
        proc = subprocess.run([_node(), "-e", _NODE_BROTLI_VERSION], capture_output=True)
        if proc.returncode != 0:
            raise CompressError(f"node failed:\n{proc.stderr.decode(errors='replace')}")
        script = hashlib.sha256(_NODE_BROTLI.encode()).hexdigest()[:16]
        return f"brotli={proc.stdout.decode().strip()} quality={BROTLI_QUALITY} script={script}"
    if coding == "gzip":
        python = f"{sys.version_info[0]}.{sys.version_info[1]}"
        return f"python={python} zlib={zlib.ZLIB_RUNTIME_VERSION} level={GZIP_LEVEL} mtime=0"
    raise ValueError(f"unknown coding {coding!r}")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Cache:
    """Siblings by content: ``compressed/<key[:2]>/<key>.br`` (or ``.gz``).

    key = sha256 of :data:`CACHE_FORMAT`, the coding, :func:`cache_settings` and the original's sha256.

    Nothing read from it is trusted: the caller checks that an entry decodes to its original.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = {coding: cache_settings(coding) for coding in SIBLINGS}
        self.writable = True
        self.wrote = False

    @classmethod
    def open(cls) -> _Cache | None:
        """The cache, or None (one line on stderr) where its folder cannot be made."""
        try:
            root = cache_dir() / "compressed"
            root.mkdir(parents=True, exist_ok=True)
        except (OSError, RuntimeError) as exc:  # RuntimeError: no home folder
            print(f"compress: no cache ({exc}); compressing without it", file=sys.stderr)
            return None
        return cls(root)

    def entry(self, digest: str, coding: str) -> Path:
        key = hashlib.sha256(f"{CACHE_FORMAT}\n{coding}\n{self.settings[coding]}\n{digest}".encode()).hexdigest()
        return self.root / key[:2] / (key + SIBLINGS[coding])

    def read(self, digest: str, coding: str) -> bytes | None:
        entry = self.entry(digest, coding)
        try:
            data = entry.read_bytes()
        except OSError:
            return None
        self._used(entry)
        return data

    def copy(self, digest: str, coding: str, dst: Path) -> bool:
        """Copy the entry to ``dst`` (a new file); False where there is none."""
        entry = self.entry(digest, coding)
        try:
            shutil.copyfile(entry, dst)
        except OSError:
            return False
        self._used(entry)
        return True

    @staticmethod
    def _used(entry: Path) -> None:
        with contextlib.suppress(OSError):  # the least recently used entries are evicted first
            os.utime(entry)

    def write(self, digest: str, coding: str, data: bytes) -> None:
        """Store ``data`` atomically (a whole entry or none); on failure, one line and no more writes."""
        if not self.writable:
            return
        entry = self.entry(digest, coding)
        try:
            entry.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, entry)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self.writable = False
            print(f"compress: cannot write the cache {self.root} ({exc}); compressing without it", file=sys.stderr)
            return
        self.wrote = True

    def evict(self, limit: int) -> None:
        """Delete the least recently used entries until at most ``limit`` bytes are left."""
        files: list[tuple[int, int, str]] = []
        try:
            for folder in os.scandir(self.root):
                if folder.is_dir(follow_symlinks=False):
                    for item in os.scandir(folder.path):
                        st = item.stat(follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode):
                            files.append((st.st_mtime_ns, st.st_size, item.path))
        except OSError:
            return
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= limit:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:  # another build evicted it
                pass
            except OSError:
                return
            total -= size


def _worth_it(size: int, original: int) -> bool:
    return size <= original * (1 - MIN_SAVING)


def compress_files(
    jobs: Sequence[tuple[Path, Path]], report: CompressReport | None = None, *, cache: bool = True
) -> list[tuple[int | None, int | None]]:
    """For each ``(source, base)``, write ``base.br`` and ``base.gz`` (each only if it saves enough).

    ``base`` is where the siblings' names start: the source itself, or its place in a
    staging folder. A sibling that saves less than :data:`MIN_SAVING` is not written,
    and an older one at that place is deleted. Returns (br size, gz size) per job,
    ``None`` where no sibling was kept. Siblings are written whole or not at all.

    With ``cache``, an encoding already in the cache (see :func:`cache_dir`) is taken from
    it once it decodes to the source; the others are compressed and stored there.
    ``report.cache_hits`` counts the siblings taken from the cache.
    """
    if not jobs:
        return []
    for _, base in jobs:
        base.parent.mkdir(parents=True, exist_ok=True)
    # Largest first, so the long jobs start at once and the small ones fill in around them.
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].stat().st_size)
    parts = [base.with_name(base.name + ".br.part") for _, base in jobs]
    results: list[tuple[int | None, int | None]] = [(None, None)] * len(jobs)
    store = _Cache.open() if cache else None
    digests = [sha256_file(src) for src, _ in jobs] if store is not None else []
    hits = 0
    try:
        cached: set[int] = set()  # brotli siblings from the cache, checked
        if store is not None:
            found = [i for i in order if store.copy(digests[i], "br", parts[i])]
            matches = _brotli_matches([(jobs[i][0], parts[i]) for i in found])
            cached = {i for i, ok in zip(found, matches, strict=True) if ok}
        todo = [i for i in order if i not in cached]
        with ThreadPoolExecutor(max_workers=1) as pool:
            brotli = pool.submit(brotli_files, [(jobs[i][0], parts[i]) for i in todo])
            gz_sizes: dict[int, int | None] = {}
            for i in order:
                src, base = jobs[i]
                data = src.read_bytes()
                packed = store.read(digests[i], "gzip") if store is not None else None
                if packed is not None and _gunzips_to(packed, data):
                    hits += 1
                else:
                    packed = gzip_bytes(data)
                    if gzip.decompress(packed) != data:
                        raise CompressError(f"{src}: gzip output does not decode to the input")
                    if store is not None:
                        store.write(digests[i], "gzip", packed)
                target = sibling(base, "gzip")
                if _worth_it(len(packed), len(data)):
                    tmp = target.with_name(target.name + ".part")
                    tmp.write_bytes(packed)
                    os.replace(tmp, target)
                    gz_sizes[i] = len(packed)
                else:
                    target.unlink(missing_ok=True)
                    gz_sizes[i] = None
            br_sizes: dict[int, int] = dict(zip(todo, brotli.result(), strict=True))
        hits += len(cached)
        for i in cached:
            br_sizes[i] = parts[i].stat().st_size
        if store is not None:
            for i in todo:  # node checked each of them before writing it
                store.write(digests[i], "br", parts[i].read_bytes())
        for i, (src, base) in enumerate(jobs):
            target = sibling(base, "br")
            br: int | None = br_sizes[i]
            if br is not None and _worth_it(br, src.stat().st_size):
                os.replace(parts[i], target)
            else:
                target.unlink(missing_ok=True)
                br = None
            results[i] = (br, gz_sizes[i])
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    if store is not None and store.wrote:
        store.evict(CACHE_MAX_BYTES)
    if report is not None:
        report.cache_hits += hits
    return results


def _gunzips_to(packed: bytes, data: bytes) -> bool:
    try:
        return gzip.decompress(packed) == data
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return False


def _regular_size(path: Path, newer_than_ns: int | None = None) -> int | None:
    """Size of ``path`` if it is a regular file (not a link), and not older than ``newer_than_ns``."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if newer_than_ns is not None and st.st_mtime_ns < newer_than_ns:
        return None
    return st.st_size


def _read_index(root: Path) -> dict[str, dict[str, int | None]]:
    try:
        data = json.loads((root / INDEX_NAME).read_text())
        files: dict[str, dict[str, int | None]] = data["files"]
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _up_to_date(
    path: Path, st: os.stat_result, entry: dict[str, int | None] | None
) -> tuple[int | None, int | None] | None:
    """The siblings' sizes when they match ``path`` as it is now, else None (compress again)."""
    br, gz = sibling(path, "br"), sibling(path, "gzip")
    if entry is not None and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        # As recorded: the same siblings, and no others.
        recorded = (_regular_size(br), _regular_size(gz))
        return recorded if recorded == (entry.get("br"), entry.get("gz")) else None
    # Not recorded here (a copied tree, e.g. an export of the built dev tree): siblings that
    # are both present and at least as new as their original are taken as they are.
    found = (_regular_size(br, st.st_mtime_ns), _regular_size(gz, st.st_mtime_ns))
    return found if found[0] is not None and found[1] is not None else None


def _remove_siblings(root: Path, rel: str, entry: dict[str, int | None]) -> list[str]:
    """Delete the siblings of ``rel`` that the index says were written; their paths."""
    removed = []
    for suffix in SIBLINGS.values():
        stale = root / (rel + suffix)
        if entry.get(suffix[1:]) is not None and _regular_size(stale) is not None:
            stale.unlink()
            removed.append(rel + suffix)
    return removed


def compress_tree(root: Path, *, cache: bool = True) -> CompressReport:
    """Write ``X.br`` and ``X.gz`` next to every compressible file ``X`` under ``root``.

    Siblings that are up to date are kept as they are (a second run compresses nothing);
    siblings this function wrote whose original has gone, or no longer qualifies, are
    deleted. What was written is recorded in ``root/``:data:`INDEX_NAME`. ``cache``: see
    :func:`compress_files`.
    """
    root = root.resolve()
    index = _read_index(root)
    report = CompressReport()
    sizes: dict[str, tuple[int, int | None, int | None]] = {}
    entries: dict[str, dict[str, int | None]] = {}
    todo: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.name.startswith("."):
            continue
        if not has_compressible_suffix(path.name):
            continue
        rel = path.relative_to(root).as_posix()
        st = path.stat()
        if not is_compressible(path, st.st_size):
            if rel in index:  # shrank under MIN_SIZE: its siblings go
                report.removed += _remove_siblings(root, rel, index[rel])
            continue
        current = _up_to_date(path, st, index.get(rel))
        if current is None:
            todo.append((rel, path))
            continue
        br, gz = current
        sizes[rel] = (st.st_size, br, gz)
        entries[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "br": br, "gz": gz}
    for (rel, path), (br, gz) in zip(todo, compress_files([(p, p) for _, p in todo], report, cache=cache), strict=True):
        st = path.stat()
        sizes[rel] = (st.st_size, br, gz)
        entries[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "br": br, "gz": gz}
        report.compressed.append(rel)
    for rel, entry in index.items():
        if not (root / rel).is_file():  # the original is gone
            report.removed += _remove_siblings(root, rel, entry)
    report.files = [FileSizes(rel, *sizes[rel]) for rel in sorted(sizes)]
    text = json.dumps({"files": dict(sorted(entries.items()))}, indent=1) + "\n"
    index_path = root / INDEX_NAME
    if not index_path.exists() or index_path.read_text() != text:
        tmp = index_path.with_name(INDEX_NAME + ".part")
        tmp.write_text(text)
        os.replace(tmp, index_path)
    return report
