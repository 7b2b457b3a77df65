#!/usr/bin/env python3
"""Build the browser assets and serve the pyapp web app on localhost.

Usage::

    python serve.py                    # build what is missing, then serve on 127.0.0.1:8000
    python serve.py --port 0           # any free port (the URL is printed)
    python serve.py build              # only bring web/vendor/ and models/ up to date
    python serve.py build --out DIR    # ... and write a static site any static host can serve
    python serve.py status             # what is built, what is stale and why

Standard library only, so it runs on a fresh machine before anything else is installed.
The server sends the headers the page needs (``crossOriginIsolated`` for WASM
threads), the right MIME types, never lists directories and never serves a file
outside its roots.
"""

from __future__ import annotations

import argparse
import errno
import http
import http.server
import os
import posixpath
import sys
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

#: The app's Content-Security-Policy. No ``unsafe-eval`` and no inline script:
#: ``wasm-unsafe-eval`` lets Pyodide and TF.js compile WebAssembly; ``blob:`` in
#: script-src/worker-src is for the workers PyScript and TF.js's WASM thread pool
#: start from blob URLs (their scripts are ours, not downloaded); images are
#: previewed from blob: URLs; nothing may be sent anywhere but this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self' blob: data:",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

#: Sent with every response. COOP+COEP make the page crossOriginIsolated
#: (SharedArrayBuffer, so WASM threads); CORP lets the isolated page load them.
SECURITY_HEADERS: Mapping[str, str] = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

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


def static_host_headers() -> str:
    """The security headers in the ``_headers`` format of Netlify / Cloudflare Pages."""
    lines = ["/*"] + [f"  {k}: {v}" for k, v in SECURITY_HEADERS.items()]
    return "\n".join(lines) + "\n"


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

    server_version = "pyapp-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # Errors on unparseable request lines still get a status line and headers.
    default_request_version = "HTTP/1.0"
    mounts: Mapping[str, Path] = {}
    quiet = False
    #: URL prefixes served without the Content-Security-Policy (test pages with inline scripts).
    csp_exempt: tuple[str, ...] = ()

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
        data = target.read_bytes()
        self.send_response(200)
        for key, value in self._headers().items():
            self.send_header(key, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        # Revalidate every time; offline caching is the service worker's job.
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

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


def make_server(
    host: str, port: int, mounts: Mapping[str, Path], quiet: bool = False, csp_exempt: tuple[str, ...] = ()
) -> http.server.ThreadingHTTPServer:
    """A ready (not yet serving) threaded server; raises :class:`PortInUse` with a clear message.

    ``csp_exempt``: URL prefixes answered without the Content-Security-Policy (test and
    benchmark pages, which use inline scripts); everything else gets every security header.
    """
    handler = type(
        "BoundHandler", (Handler,), {"mounts": dict(mounts), "quiet": quiet, "csp_exempt": tuple(csp_exempt)}
    )
    http.server.ThreadingHTTPServer.allow_reuse_address = False
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                errno.EADDRINUSE,
                f"port {port} on {host} is already in use; stop the other program or pass --port N (0 = any free port)",
            ) from None
        raise
    server.daemon_threads = True
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
    from pyapp import assets

    try:
        report = assets.build(force=args.force)
        if args.out:
            out = assets.export_static(Path(args.out), static_host_headers())
            print(f"static site written to {out}")
    except assets.BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    done = ", ".join(report.rebuilt) or "nothing (up to date)"
    print(f"built: {done} in {report.seconds:.1f}s")
    return 0


def _cmd_status(_: argparse.Namespace) -> int:
    from pyapp import assets

    state = assets.status()
    for name, why in state.items():
        print(f"{name:10} {why}")
    return 0 if all(v == "ok" for v in state.values()) else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    if not args.no_build and args.site is None:
        from pyapp import assets

        try:
            report = assets.build()
        except assets.BuildError as exc:
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
