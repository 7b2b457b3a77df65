#!/usr/bin/env python3
"""Build the browser assets and serve the pyapp web app on localhost.

Usage::

    python serve.py                    # build what is missing, then serve on 127.0.0.1:8000
    python serve.py --port 0           # any free port (the URL is printed)
    python serve.py build              # only bring web/vendor/ and models/ up to date
    python serve.py build --out DIR    # ... and write a static site any static host can serve
    python serve.py status             # what is built, what is stale and why

Standard library only (and the project's stdlib-only ``pyapp_build`` modules), so it runs on a
fresh machine before anything else is installed.
The server sends the headers the page needs (``crossOriginIsolated`` for WASM
threads), the right MIME types, never lists directories and never serves a file
outside its roots.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import gzip
import http
import http.server
import os
import posixpath
import re
import socket
import stat
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from pyapp_build import compress  # noqa: E402 (standard library only, like this file)
from pyapp_build.headers import CONTENT_SECURITY_POLICY as CONTENT_SECURITY_POLICY  # noqa: E402 (after sys.path)
from pyapp_build.headers import SECURITY_HEADERS  # noqa: E402

MIME_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".bin": "application/octet-stream",
    ".py": "text/x-python; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}


#: Files of these types are sent compressed to clients that accept it: from a ``X.br`` or
#: ``X.gz`` sibling the build wrote, else gzipped here.
COMPRESSIBLE_SUFFIXES = compress.COMPRESSIBLE_SUFFIXES
#: Content-Encoding -> the suffix of a precompressed sibling, in the server's order of preference.
SIBLING_SUFFIXES: Mapping[str, str] = {"br": ".br", "gzip": ".gz"}
#: Files up to this size without a ``.gz`` sibling are gzipped on the fly (and kept in memory).
GZIP_ON_THE_FLY_MAX = 2 << 20
#: Smaller files are not worth compressing unless the client refuses them uncompressed.
GZIP_ON_THE_FLY_MIN = 1024
#: Cloudflare Pages reads at most this many rules from ``_headers``.
STATIC_HOST_MAX_RULES = 100
#: Seconds a connection may take from starting to wait for a request to having sent all its headers:
#: bounds idle keep-alive connections and requests sent a byte at a time (slowloris) alike.
REQUEST_TIMEOUT = 10.0
#: Seconds any one read or write on a connection may block (a client that stops reading a response).
IO_TIMEOUT = 30.0
#: Connections served at once (one thread each); more are answered 503 and closed.
MAX_CONNECTIONS = 256


def encoded_siblings(site: Path) -> dict[str, str]:
    """Precompressed siblings in an exported site: path (``vendor/x.js.br``) -> Content-Encoding.

    ``X.br`` / ``X.gz`` is a sibling when ``X`` is there too and is of a compressible type;
    other ``.gz`` files (``digits.csv.gz``) are files of their own.
    """
    found = {}
    for path in sorted(site.rglob("*")):
        for coding, suffix in SIBLING_SUFFIXES.items():
            if not path.name.endswith(suffix) or len(path.name) == len(suffix) or not path.is_file():
                continue
            original = path.with_name(path.name[: -len(suffix)])
            if original.suffix.lower() in COMPRESSIBLE_SUFFIXES and original.is_file():
                found[path.relative_to(site).as_posix()] = coding
    return found


def _encoding_rules(site: Path) -> list[tuple[str, dict[str, str]]]:
    """``_headers`` rules that serve each sibling ``X.br`` / ``X.gz`` as ``X``, encoded.

    One rule per sibling while they fit under :data:`STATIC_HOST_MAX_RULES`; beyond that,
    siblings of one folder, type and encoding share a ``/folder/*.js.br`` rule, but only
    where that pattern (``*`` matches across ``/``) matches nothing but such siblings.
    """
    siblings = encoded_siblings(site)

    def headers(rel: str) -> dict[str, str]:
        coding = siblings[rel]
        original = PurePosixPath(rel[: -len(SIBLING_SUFFIXES[coding])])
        return {
            "Content-Encoding": coding,
            "Content-Type": MIME_TYPES.get(original.suffix.lower(), "application/octet-stream"),
            "Vary": "Accept-Encoding",
        }

    explicit = [(f"/{rel}", headers(rel)) for rel in siblings]
    if len(explicit) + 1 <= STATIC_HOST_MAX_RULES:
        return explicit
    groups: dict[tuple[str, str], list[str]] = {}
    for rel in siblings:
        path = PurePosixPath(rel)
        ending = "".join(path.suffixes[-2:])
        groups.setdefault((path.parent.as_posix(), ending), []).append(rel)
    everything = [p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()]
    rules: list[tuple[str, dict[str, str]]] = []
    for (folder, ending), members in sorted(groups.items()):
        prefix = "" if folder == "." else f"{folder}/"
        matched = [f for f in everything if f.startswith(prefix) and f.endswith(ending)]
        if len(members) > 1 and sorted(matched) == sorted(members):
            rules.append((f"/{prefix}*{ending}", headers(members[0])))
        else:
            rules += [(f"/{rel}", headers(rel)) for rel in members]
    return rules


def static_host_headers(site: Path | None = None) -> str:
    """The security headers in the ``_headers`` format of Netlify / Cloudflare Pages.

    With ``site`` (an exported site), also the rules that serve its precompressed
    siblings: a request for ``X.br`` gets ``Content-Encoding: br``, ``X``'s Content-Type
    and ``Vary: Accept-Encoding``. Netlify ignores Content-Encoding set this way
    (it compresses by itself); hosts that honour it serve the siblings as they are.
    """
    lines = ["/*"] + [f"  {k}: {v}" for k, v in SECURITY_HEADERS.items()]
    rules = _encoding_rules(site) if site is not None else []
    if rules:
        lines += ["", "# Precompressed siblings: X.br and X.gz are X, brotli- or gzip-encoded."]
    for pattern, headers in rules:
        lines += [pattern] + [f"  {k}: {v}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def parse_accept_encoding(value: str | None) -> dict[str, float]:
    """An Accept-Encoding header as coding -> q-value (lower-case; ``x-gzip`` is ``gzip``).

    Entries with a malformed q-value are dropped.

    >>> parse_accept_encoding("gzip, deflate, br;q=0.5, *;q=0, identity;q=0.1")
    {'gzip': 1.0, 'deflate': 1.0, 'br': 0.5, '*': 0.0, 'identity': 0.1}
    """
    prefs: dict[str, float] = {}
    for item in (value or "").split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if not coding:
            continue
        coding = coding.lower()
        coding = "gzip" if coding == "x-gzip" else coding
        q: float | None = 1.0
        for param in params:
            name, _, raw = param.partition("=")
            if name.strip().lower() == "q":
                raw = raw.strip()
                q = float(raw) if _QVALUE.fullmatch(raw) else None
        if q is not None:
            prefs[coding] = max(q, prefs.get(coding, 0.0))
    return prefs


_QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


def choose_encoding(accept: str | None, available: Sequence[str], prefer_identity: bool = False) -> str | None:
    """The content coding to answer with, ``"identity"`` for none, or None when the client accepts nothing we have.

    ``available``: the codings this response can have besides identity, in the server's
    order of preference. The client's highest q-value wins, the server's order breaks
    ties, and a compressed coding wins a tie with identity. Identity is acceptable unless
    refused (``identity;q=0``, or ``*;q=0`` without an ``identity`` entry); where the
    header does not mention it, it is the last resort. No header at all: identity.
    ``prefer_identity``: answer uncompressed whenever that is acceptable (small files).

    >>> choose_encoding("gzip, deflate, br, zstd", ["br", "gzip"])
    'br'
    >>> choose_encoding("br;q=0.5, gzip", ["br", "gzip"])
    'gzip'
    >>> choose_encoding("br;q=0, gzip;q=0", ["br", "gzip"])
    'identity'
    >>> choose_encoding("br, identity;q=0", []) is None
    True
    """
    if accept is None:
        return "identity"
    prefs = parse_accept_encoding(accept)

    def q(coding: str) -> float:
        return prefs.get(coding, prefs.get("*", 0.0))

    best = max((c for c in available if q(c) > 0), key=lambda c: (q(c), -available.index(c)), default=None)
    listed = "identity" in prefs or "*" in prefs
    identity_ok = not listed or q("identity") > 0
    if identity_ok and (prefer_identity or best is None or (listed and q("identity") > q(best))):
        return "identity"
    return best


class _GzipCache:
    """Files gzipped on the fly, by (path, mtime_ns, size); least recently used go past ``limit`` bytes."""

    def __init__(self, limit: int = 64 << 20) -> None:
        self.limit = limit
        self.size = 0
        self._items: collections.OrderedDict[tuple[str, int, int], bytes] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, st: os.stat_result) -> bytes:
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        data = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        with self._lock:
            if key not in self._items:
                self._items[key] = data
                self.size += len(data)
            while self.size > self.limit and self._items:
                self.size -= len(self._items.popitem(last=False)[1])
        return data


_gzip_cache = _GzipCache()


class PathRejected(Exception):
    """A request path that must not be served; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def resolve_request_path(url_path: str, mounts: Mapping[str, Path]) -> Path:
    """Map a URL path onto a file under one of ``mounts`` (URL prefix -> directory).

    Rejects, rather than normalises, anything that tries to leave its root: a
    ``..`` or ``.`` segment (also percent-encoded), backslashes, NUL bytes,
    and symlinks that point outside.

    >>> resolve_request_path("/a/../../etc/passwd", {"/": Path("/srv")})
    Traceback (most recent call last):
    ...
    serve.PathRejected: path escapes the web root
    """
    raw = url_path.split("?", 1)[0].split("#", 1)[0]
    path = urllib.parse.unquote(raw, errors="strict")
    if "\x00" in path or "\\" in path:
        raise PathRejected(400, "invalid character in path")
    if not path.startswith("/"):
        raise PathRejected(400, "path must be absolute")
    segments = path.split("/")
    if any(seg in ("..", ".") for seg in segments):
        raise PathRejected(400, "path escapes the web root")
    prefix = max((p for p in mounts if path.startswith(p)), key=len, default=None)
    if prefix is None:
        raise PathRejected(404, "not found")
    root = mounts[prefix].resolve()
    rel = posixpath.normpath(path[len(prefix) :]).lstrip("/")
    target = (root / rel).resolve() if rel not in ("", ".") else root
    if target != root and root not in target.parents:
        raise PathRejected(403, "path escapes the web root")
    return target


class Handler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD only, from the mounts; no listings, no escapes."""

    #: A socket timeout on every read and write (StreamRequestHandler applies it).
    timeout = IO_TIMEOUT
    server_version = "pyapp-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Errors on unparseable request lines still get a status line and headers.
    default_request_version = "HTTP/1.0"
    mounts: Mapping[str, Path] = {}
    quiet = False
    #: URL prefixes served without the Content-Security-Policy (test pages with inline scripts).
    csp_exempt: tuple[str, ...] = ()

    def handle_one_request(self) -> None:
        # From here until the headers are parsed the server's reaper may close the connection:
        # a socket timeout alone is per recv(), which a byte every few seconds never trips.
        server = self.server
        if isinstance(server, Server):
            server.watch(self.connection)
        try:
            super().handle_one_request()
        finally:
            if isinstance(server, Server):
                server.unwatch(self.connection)

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if isinstance(self.server, Server):
            self.server.unwatch(self.connection)  # headers are in: the response is bounded by IO_TIMEOUT
        return ok

    def _headers(self) -> Mapping[str, str]:
        if self.csp_exempt and self.path.startswith(self.csp_exempt):
            return {k: v for k, v in SECURITY_HEADERS.items() if k != "Content-Security-Policy"}
        return SECURITY_HEADERS

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _not_allowed(self) -> None:
        self._error(405, "method not allowed", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests (bad request line, version, over-long URL) end up here:
        # answer in plain text with the same headers as everything else.
        self.close_connection = True
        self._error(code, message or http.HTTPStatus(code).phrase)

    def _error(self, status: int, reason: str, extra: Mapping[str, str] | None = None) -> None:
        body = f"{status} {reason}\n".encode()
        self.send_response(status)
        for key, value in {**self._headers(), **(extra or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, send_body: bool) -> None:
        try:
            target = resolve_request_path(self.path, self.mounts)
        except PathRejected as exc:
            self._error(exc.status, exc.reason)
            return
        except UnicodeDecodeError:
            self._error(400, "path is not valid UTF-8")
            return
        if target.is_dir():
            if not self.path.split("?", 1)[0].endswith("/"):
                location = self.path.split("?", 1)[0] + "/"
                self.send_response(301)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            target = target / "index.html"
        if not target.is_file() or target.name.startswith(".stamp-"):
            self._error(404, "not found")
            return
        ctype = MIME_TYPES.get(target.suffix.lower(), "application/octet-stream")
        negotiable = target.suffix.lower() in COMPRESSIBLE_SUFFIXES
        coding: str | None = None
        if negotiable:
            encoded = self._encoded(target)
            if encoded is None:
                self._error(406, "no acceptable content coding", extra={"Vary": "Accept-Encoding"})
                return
            coding, data = encoded
        else:
            data = target.read_bytes()
        # One ETag per representation (file version and content coding): a browser revalidating what it
        # has (Cache-Control: no-cache below) gets a 304 with no body. A repeat visit's update checks
        # (build.json, the service worker's script) then cost a few hundred bytes each.
        st = target.stat()
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}-{coding or "identity"}"'
        fresh = etag in (t.strip() for t in self.headers.get("If-None-Match", "").split(","))
        self.send_response(304 if fresh else 200)
        for key, value in self._headers().items():
            self.send_header(key, value)
        self.send_header("ETag", etag)
        if negotiable:
            self.send_header("Vary", "Accept-Encoding")
        # Revalidate every time; offline caching is the service worker's job.
        self.send_header("Cache-Control", "no-cache")
        if fresh:
            self.end_headers()
            return
        self.send_header("Content-Type", ctype)
        if coding is not None:
            self.send_header("Content-Encoding", coding)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def _encoded(self, target: Path) -> tuple[str | None, bytes] | None:
        """(Content-Encoding or None, body) for ``target`` as this request accepts it; None: nothing acceptable.

        A fresh sibling (``X.br``, ``X.gz``: a regular file at least as new as ``X``) is
        sent as it is; without a ``.gz`` sibling, files up to :data:`GZIP_ON_THE_FLY_MAX`
        are gzipped here.
        """
        st = target.stat()
        siblings: dict[str, Path] = {}
        for coding, suffix in SIBLING_SUFFIXES.items():
            candidate = target.with_name(target.name + suffix)
            try:
                sst = candidate.lstat()
            except OSError:
                continue
            if stat.S_ISREG(sst.st_mode) and sst.st_mtime_ns >= st.st_mtime_ns:
                siblings[coding] = candidate
        available = list(siblings)
        if "gzip" not in siblings and st.st_size <= GZIP_ON_THE_FLY_MAX:
            available.append("gzip")
        small = st.st_size < GZIP_ON_THE_FLY_MIN and not siblings
        chosen = choose_encoding(self.headers.get("Accept-Encoding"), available, prefer_identity=small)
        if chosen is None:
            return None
        if chosen == "identity":
            return None, target.read_bytes()
        if chosen in siblings:
            return chosen, siblings[chosen].read_bytes()
        return chosen, _gzip_cache.get(target, st)

    def log_message(self, format: str, *args: object) -> None:
        if not self.quiet:
            super().log_message(format, *args)


def default_mounts(site: Path | None = None) -> dict[str, Path]:
    """URL prefix -> directory: the source tree, or an exported static site."""
    if site is not None:
        return {"/": site}
    return {"/": ROOT / "web", "/models/": ROOT / "models"}


class PortInUse(OSError):
    """The requested port is taken by another program."""


class Server(http.server.ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them, each closed when a request
    (idle wait + headers) takes longer than ``request_timeout`` seconds.

    >>> server = Server(("127.0.0.1", 0), Handler, request_timeout=2.0, max_connections=8)
    >>> server.request_timeout, server.max_connections
    (2.0, 8)
    >>> server.server_close()
    """

    daemon_threads = True
    allow_reuse_address = False
    #: The listen backlog (socketserver's default is 5): a burst beyond it has its SYNs dropped and
    #: retried a second later, which is what a page's parallel requests then wait.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        request_timeout: float = REQUEST_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._active = 0
        self._deadlines: dict[socket.socket, float] = {}
        self._closed = threading.Event()
        super().__init__(address, handler)
        self._reaper = threading.Thread(target=self._reap, name="serve-reaper", daemon=True)
        self._reaper.start()

    def watch(self, conn: socket.socket) -> None:
        """Close ``conn`` unless :meth:`unwatch` is called within ``request_timeout`` seconds."""
        with self._lock:
            self._deadlines[conn] = time.monotonic() + self.request_timeout

    def unwatch(self, conn: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(conn, None)

    def _reap(self) -> None:
        interval = min(0.5, self.request_timeout / 5)
        while not self._closed.wait(interval):
            now = time.monotonic()
            with self._lock:
                expired = [c for c, t in self._deadlines.items() if t <= now]
                for conn in expired:
                    del self._deadlines[conn]
            for conn in expired:
                # Wakes the handler's blocked read with end-of-file; it then ends the connection.
                with contextlib.suppress(OSError):  # already gone
                    conn.shutdown(socket.SHUT_RDWR)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            # Answered on the accepting thread: a short write to a fresh socket's empty buffer.
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._active -= 1

    def server_close(self) -> None:
        self._closed.set()
        super().server_close()


def make_server(
    host: str,
    port: int,
    mounts: Mapping[str, Path],
    quiet: bool = False,
    csp_exempt: tuple[str, ...] = (),
    request_timeout: float = REQUEST_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> Server:
    """A ready (not yet serving) threaded server; raises :class:`PortInUse` with a clear message.

    ``csp_exempt``: URL prefixes answered without the Content-Security-Policy (test and
    benchmark pages, which use inline scripts); everything else gets every security header.
    ``request_timeout`` and ``max_connections``: see :class:`Server`.
    """
    handler = type(
        "BoundHandler", (Handler,), {"mounts": dict(mounts), "quiet": quiet, "csp_exempt": tuple(csp_exempt)}
    )
    try:
        server = Server((host, port), handler, request_timeout=request_timeout, max_connections=max_connections)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                errno.EADDRINUSE,
                f"port {port} on {host} is already in use; stop the other program or pass --port N (0 = any free port)",
            ) from None
        raise
    server.handle_error = _quiet_disconnects(server.handle_error)  # type: ignore[method-assign]
    return server


def _quiet_disconnects(handle_error: Any) -> Any:
    """Browsers drop connections all the time (cancelled fetches, reloads); that is not an error."""

    def handle(request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        handle_error(request, client_address)

    return handle


def _cmd_build(args: argparse.Namespace) -> int:
    import pyapp_build

    try:
        report = pyapp_build.build(force=args.force)
        if args.out:
            out = pyapp_build.export_static(Path(args.out), static_host_headers())
            _compress_site(out)
            print(f"static site written to {out}")
    except (pyapp_build.BuildError, compress.CompressError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    done = ", ".join(report.rebuilt) or "nothing (up to date)"
    print(f"built: {done} in {report.seconds:.1f}s")
    return 0


def _compress_site(out: Path) -> None:
    """Write the exported site's .br/.gz siblings and the ``_headers`` rules that serve them; print the totals."""

    report = compress.compress_tree(out)
    # export_static writes the site afresh each time, so nothing there can be stale: the
    # index of what was compressed would only be published.
    (out / compress.INDEX_NAME).unlink(missing_ok=True)
    headers = static_host_headers(out)
    (out / "_headers").write_text(headers)
    rules = sum(1 for line in headers.splitlines() if line.startswith("/"))
    original, br, gz = report.total(), report.total("br"), report.total("gzip")
    print(
        f"compressed {len(report.files)} files ({len(report.compressed)} new): {original:,} bytes,"
        f" {br:,} with brotli ({br / max(original, 1):.0%}), {gz:,} with gzip ({gz / max(original, 1):.0%})"
    )
    if rules > STATIC_HOST_MAX_RULES:
        print(
            f"warning: _headers has {rules} rules; Cloudflare Pages reads only {STATIC_HOST_MAX_RULES}", file=sys.stderr
        )


def _cmd_status(_: argparse.Namespace) -> int:
    import pyapp_build

    state = pyapp_build.status()
    for name, why in state.items():
        print(f"{name:10} {why}")
    return 0 if all(v == "ok" for v in state.values()) else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    if not args.no_build and args.site is None:
        import pyapp_build

        try:
            report = pyapp_build.build()
        except pyapp_build.BuildError as exc:
            print(f"build failed: {exc}", file=sys.stderr)
            return 1
        if report.rebuilt:
            print(f"built {', '.join(report.rebuilt)} in {report.seconds:.1f}s")
    mounts = default_mounts(Path(args.site).resolve() if args.site else None)
    try:
        server = make_server(args.host, args.port, mounts, quiet=args.quiet)
    except PortInUse as exc:
        print(f"error: {exc.strerror}", file=sys.stderr)
        return 2
    port = server.server_address[1]
    print(f"pyapp serving on http://{args.host}:{port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve.py", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PYAPP_PORT", "8000")))
    parser.add_argument("--no-build", action="store_true", help="serve as is, without building")
    parser.add_argument("--site", help="serve an exported static site directory instead of the tree")
    parser.add_argument("--quiet", action="store_true", help="no request log")
    parser.set_defaults(func=_cmd_serve)
    sub = parser.add_subparsers()
    build = sub.add_parser("build", help="build web/vendor and models (and a static site with --out)")
    build.add_argument("--out", help="write a static site into this directory")
    build.add_argument("--force", action="store_true", help="rebuild every step")
    build.set_defaults(func=_cmd_build)
    status = sub.add_parser("status", help="show which build steps are stale")
    status.set_defaults(func=_cmd_status)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
