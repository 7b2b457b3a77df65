"""Precompressed siblings of a static site's files: ``X.br`` (brotli) and ``X.gz`` (gzip) next to ``X``.

A server answers a request for ``X`` from a client that accepts br or gzip with the
sibling's bytes and a ``Content-Encoding`` header; the client decodes them back to
exactly ``X``'s bytes (every sibling is decoded and compared before it is kept), so
checks on the content, such as the service worker's sha256, still hold.

- Compressible by suffix (text, JS, JSON, WebAssembly, model weights, ``.npy``);
  formats that are compressed already (wheels, zips, images, ``.gz``) never.
- Files under 1 KiB are left alone, and a sibling is kept only when it is at least
  5% smaller than its original.
- Brotli at quality 11 with Node.js's built-in zlib (the build needs Node anyway; the
  Python standard library has no brotli): one ``node`` process per batch, the files
  compressed in parallel on its thread pool. Gzip at level 9 with mtime 0. The same
  input always gives the same bytes.

Host-only, standard library only.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
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
    }
)
#: Compressed already: never given siblings (python_stdlib.zip and the wheels shrink by 1-5% under brotli).
ALREADY_COMPRESSED_SUFFIXES = frozenset({".whl", ".zip", ".gz", ".br", ".png", ".jpg", ".jpeg", ".gif", ".webp"})
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
    """Whether ``path`` gets siblings: a compressible suffix, not hidden, at least :data:`MIN_SIZE` bytes."""
    if path.name.startswith(".") or not has_compressible_suffix(path.name):
        return False
    return (path.stat().st_size if size is None else size) >= MIN_SIZE


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
    if brotli:
        payload = json.dumps([[str(pairs[i][0]), str(pairs[i][1])] for i in brotli])
        proc = subprocess.run([_node(), "-e", _NODE_MATCHES], input=payload.encode(), capture_output=True)
        if proc.returncode != 0:
            raise CompressError(f"checking brotli siblings failed:\n{proc.stderr.decode(errors='replace')}")
        for i, ok in zip(brotli, json.loads(proc.stdout), strict=True):
            results[i] = bool(ok)
    return results


def _worth_it(size: int, original: int) -> bool:
    return size <= original * (1 - MIN_SAVING)


def compress_files(jobs: Sequence[tuple[Path, Path]]) -> list[tuple[int | None, int | None]]:
    """For each ``(source, base)``, write ``base.br`` and ``base.gz`` (each only if it saves enough).

    ``base`` is where the siblings' names start: the source itself, or its place in a
    staging folder. A sibling that saves less than :data:`MIN_SAVING` is not written,
    and an older one at that place is deleted. Returns (br size, gz size) per job,
    ``None`` where no sibling was kept. Siblings are written whole or not at all.
    """
    if not jobs:
        return []
    for _, base in jobs:
        base.parent.mkdir(parents=True, exist_ok=True)
    # Largest first, so the long jobs start at once and the small ones fill in around them.
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].stat().st_size)
    parts = [base.with_name(base.name + ".br.part") for _, base in jobs]
    results: list[tuple[int | None, int | None]] = [(None, None)] * len(jobs)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            brotli = pool.submit(brotli_files, [(jobs[i][0], parts[i]) for i in order])
            gz_sizes: dict[int, int | None] = {}
            for i in order:
                src, base = jobs[i]
                data = src.read_bytes()
                packed = gzip_bytes(data)
                if gzip.decompress(packed) != data:
                    raise CompressError(f"{src}: gzip output does not decode to the input")
                target = sibling(base, "gzip")
                if _worth_it(len(packed), len(data)):
                    tmp = target.with_name(target.name + ".part")
                    tmp.write_bytes(packed)
                    os.replace(tmp, target)
                    gz_sizes[i] = len(packed)
                else:
                    target.unlink(missing_ok=True)
                    gz_sizes[i] = None
            br_sizes = dict(zip(order, brotli.result(), strict=True))
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
    return results


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


def compress_tree(root: Path) -> CompressReport:
    """Write ``X.br`` and ``X.gz`` next to every compressible file ``X`` under ``root``.

    Siblings that are up to date are kept as they are (a second run compresses nothing);
    siblings this function wrote whose original has gone, or no longer qualifies, are
    deleted. What was written is recorded in ``root/``:data:`INDEX_NAME`.
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
    for (rel, path), (br, gz) in zip(todo, compress_files([(p, p) for _, p in todo]), strict=True):
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
