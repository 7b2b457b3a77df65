"""serve.py: MIME types, isolation headers, no listings, no path escapes, clear port errors."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import serve

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>home</title>")
    (web / "app.wasm").write_bytes(b"\0asm\1\0\0\0")
    (web / "mod.mjs").write_text("export const x = 1;")
    (web / "manifest.webmanifest").write_text("{}")
    (web / "sub" / "data.json").write_text("{}")
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.bin").write_bytes(b"\1\2\3")
    (models / ".stamp-model.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("do not serve")
    server = serve.make_server("127.0.0.1", 0, {"/": web, "/models/": models}, quiet=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield str(host), int(port), tmp_path
    server.shutdown()
    server.server_close()


def get(
    site: tuple[str, int, Path], path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(site[0], site[1], timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def fetch(
    site: tuple[str, int, Path], path: str, accept: str | None, method: str = "GET", etag: str | None = None
) -> tuple[Any, bytes]:
    """(response, body as sent) with ``Accept-Encoding: accept`` (None: no such header), and
    ``If-None-Match: etag`` where given."""
    conn = http.client.HTTPConnection(site[0], site[1], timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    if accept is not None:
        conn.putheader("Accept-Encoding", accept)
    if etag is not None:
        conn.putheader("If-None-Match", etag)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if method == "GET" and resp.status != 304:
        assert int(resp.getheader("Content-Length")) == len(body)
    return resp, body


def test_revalidation_answers_304_per_representation(encoded_site: tuple[str, int, Path]) -> None:
    """A browser revalidating a file it has (the update checks of a repeat visit) gets a 304 and no body;
    the brotli and the gzip copy have different ETags, and a changed file a new one."""
    root = encoded_site[2]
    first, body = fetch(encoded_site, "/app.js", "br")
    etag = first.getheader("ETag")
    assert first.status == 200
    assert etag
    assert body
    again, body = fetch(encoded_site, "/app.js", "br", etag=etag)
    assert again.status == 304
    assert body == b""
    assert again.getheader("ETag") == etag
    assert again.getheader("Cache-Control") == "no-cache"
    assert again.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
    assert fetch(encoded_site, "/app.js", "gzip", etag=f'"x", {etag}')[0].status == 200, "gzip is another copy"
    assert fetch(encoded_site, "/app.js", "br", etag=f'"x", {etag}')[0].status == 304, "a list of tags"
    time.sleep(0.01)
    for name in ("app.js", "app.js.br", "app.js.gz"):
        (root / name).write_bytes((root / name).read_bytes())  # a new version (here: a new mtime)
    changed, body = fetch(encoded_site, "/app.js", "br", etag=etag)
    assert changed.status == 200
    assert changed.getheader("ETag") != etag
    assert body


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/app.wasm", "application/wasm"),
        ("/mod.mjs", "text/javascript; charset=utf-8"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/", "text/html; charset=utf-8"),
        ("/models/m.bin", "application/octet-stream"),
    ],
)
def test_mime_types(site: tuple[str, int, Path], path: str, ctype: str) -> None:
    """WASM streaming compile and module scripts need exact MIME types."""
    resp = get(site, path)
    assert resp.status == 200
    assert resp.getheader("Content-Type") == ctype


def test_cross_origin_isolation_headers_on_every_response(site: tuple[str, int, Path]) -> None:
    """COOP+COEP (crossOriginIsolated, so WASM threads) also on errors."""
    for path in ("/", "/nope"):
        resp = get(site, path)
        assert resp.getheader("Cross-Origin-Opener-Policy") == "same-origin"
        assert resp.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        assert resp.getheader("X-Content-Type-Options") == "nosniff"


def test_content_security_policy_forbids_eval_and_inline_script(site: tuple[str, int, Path]) -> None:
    """Every answer carries the CSP: no unsafe-eval, no unsafe-inline, nothing sent off-origin.

    The app working under it is tested in the browser (test_faults.py).
    """
    for path in ("/", "/nope", "/models/m.bin"):
        policy = get(site, path).getheader("Content-Security-Policy")
        assert policy == serve.CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in serve.CONTENT_SECURITY_POLICY.split("; "))
    assert "'unsafe-eval'" not in directives["script-src"].split()
    assert "'wasm-unsafe-eval'" in directives["script-src"].split()
    assert all("'unsafe-inline'" not in v for v in directives.values())
    assert directives["connect-src"] == "'self' blob: data:"
    assert directives["object-src"] == directives["base-uri"] == "'none'"


def test_csp_exempt_prefix_only_drops_the_csp(tmp_path: Path) -> None:
    """Test pages (inline scripts) may be served without the CSP; they keep the isolation headers."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "page.html").write_text("<script>1</script>")
    (tmp_path / "index.html").write_text("home")
    server = serve.make_server("127.0.0.1", 0, {"/": tmp_path}, quiet=True, csp_exempt=("/t/",))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        where = (str(server.server_address[0]), int(server.server_address[1]), tmp_path)
        exempt, app = get(where, "/t/page.html"), get(where, "/index.html")
        assert exempt.getheader("Content-Security-Policy") is None
        assert exempt.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        assert app.getheader("Content-Security-Policy") == serve.CONTENT_SECURITY_POLICY
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/models/../secret.txt",
        "/..%5csecret.txt",
        "/sub/./data.json",
        "/a%00b",
    ],
)
def test_path_escapes_rejected(site: tuple[str, int, Path], path: str) -> None:
    """Anything with a dot segment, backslash or NUL is refused, never normalised into the root."""
    resp = get(site, path)
    assert resp.status in (400, 403)


def test_escape_through_symlink_rejected(site: tuple[str, int, Path]) -> None:
    """A symlink inside the root that points outside is not followed."""
    (site[2] / "web" / "link.txt").symlink_to(site[2] / "secret.txt")
    assert get(site, "/link.txt").status == 403


def test_no_directory_listing(site: tuple[str, int, Path]) -> None:
    """A directory without index.html is a 404, not a listing."""
    assert get(site, "/sub/").status == 404
    assert get(site, "/sub").status == 301


def test_build_stamps_are_not_served(site: tuple[str, int, Path]) -> None:
    assert get(site, "/models/.stamp-model.json").status == 404


def test_only_get_and_head(site: tuple[str, int, Path]) -> None:
    assert get(site, "/", "HEAD").status == 200
    resp = get(site, "/", "POST")
    assert resp.status == 405
    assert resp.getheader("Allow") == "GET, HEAD"


@pytest.mark.parametrize(
    "raw",
    [b"GET / HTTX/1.1\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"],
)
def test_malformed_requests_rejected(site: tuple[str, int, Path], raw: bytes) -> None:
    """Bad versions, extra words and over-long request lines get a 4xx status, never a file."""
    with socket.create_connection((site[0], site[1]), timeout=10) as sock:
        sock.sendall(raw)
        reply = sock.recv(200)
    assert reply.split(b" ", 2)[1] in (b"400", b"414")


def test_port_in_use_is_a_clear_error() -> None:
    """A taken port gives PortInUse with advice, and the CLI exits 2 with that message."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(serve.PortInUse, match=f"port {port} .* already in use"):
            serve.make_server("127.0.0.1", port, serve.default_mounts(), quiet=True)
        proc = subprocess.run(
            [sys.executable, str(ROOT / "serve.py"), "--no-build", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr


def test_static_host_headers_match_server_policy() -> None:
    """The _headers file written for static hosts carries the same isolation headers."""
    text = serve.static_host_headers()
    assert text.startswith("/*\n")
    for key, value in serve.SECURITY_HEADERS.items():
        assert f"  {key}: {value}\n" in text


def test_readme_documents_the_headers_static_hosts_need() -> None:
    """The README's header list for other hosts is the one serve.py sends (docs cannot drift)."""
    readme = (ROOT / "README.md").read_text()
    for key, value in serve.SECURITY_HEADERS.items():
        assert f"\n{key}: {value}\n" in readme, key


# --------------------------------------------------------------------------- Content-Encoding


def _js(size: int) -> bytes:
    """Compressible JS-like text of ``size`` bytes."""
    lines = (b"export const v%d = tf.tidy(() => x.mul(%d));\n" % (i, i % 7) for i in range(size // 30 + 1))
    return b"".join(lines)[:size]


@pytest.fixture
def encoded_site(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """A root with siblings the build would write (app.js.br/.gz), a file without, and odd cases."""
    from pyapp_build import compress

    root = tmp_path / "root"
    root.mkdir()
    (root / "app.js").write_bytes(_js(50_000))
    (root / "plain.json").write_bytes(_js(30_000))  # no siblings: gzipped on the fly
    (root / "tiny.js").write_bytes(b"export const x = 1;\n")
    (root / "photo.png").write_bytes(b"\x89PNG" + _js(5_000))
    (root / "big.bin").write_bytes(_js(serve.GZIP_ON_THE_FLY_MAX + 1))
    (root / "digits.csv.gz").write_bytes(gzip.compress(b"1,2,3\n" * 400))
    compress.compress_files([(root / "app.js", root / "app.js")])
    server = serve.make_server("127.0.0.1", 0, {"/": root}, quiet=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield str(server.server_address[0]), int(server.server_address[1]), root
    server.shutdown()
    server.server_close()


def test_compressible_suffixes_match_the_build() -> None:
    """serve.py (standard library only) keeps its own copy of the build's list."""
    from pyapp_build import compress

    assert serve.COMPRESSIBLE_SUFFIXES == compress.COMPRESSIBLE_SUFFIXES
    assert dict(serve.SIBLING_SUFFIXES) == compress.SIBLINGS


def test_brotli_sibling_preferred(encoded_site: tuple[str, int, Path]) -> None:
    """Chrome's Accept-Encoding gets the .br sibling's bytes, with the original's type, and Vary."""
    root = encoded_site[2]
    resp, body = fetch(encoded_site, "/app.js", "gzip, deflate, br, zstd")
    assert resp.status == 200
    assert resp.getheader("Content-Encoding") == "br"
    assert resp.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert resp.getheader("Vary") == "Accept-Encoding"
    assert resp.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
    assert body == (root / "app.js.br").read_bytes()
    assert len(body) < (root / "app.js").stat().st_size / 4


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("GZIP;Q=1", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0.4, gzip;q=0.8", "gzip"),  # the client's preference wins
        ("br;q=0.8, gzip;q=0.8", "br"),  # ties go to the smaller
        ("*", "br"),
        ("*;q=0.5, br;q=0", "gzip"),
        ("br;q=0, gzip;q=0", None),
        ("identity", None),
        ("", None),
        ("gzip;q=0.5, identity", None),  # identity preferred outright
        ("deflate, zstd", None),
        ("br;q=2, gzip;q=abc", None),  # malformed q-values: those entries are ignored
    ],
)
def test_negotiation(encoded_site: tuple[str, int, Path], accept: str, coding: str | None) -> None:
    root = encoded_site[2]
    resp, body = fetch(encoded_site, "/app.js", accept)
    assert resp.status == 200
    assert resp.getheader("Content-Encoding") == coding
    assert resp.getheader("Vary") == "Accept-Encoding"
    expected = {"br": "app.js.br", "gzip": "app.js.gz", None: "app.js"}[coding]
    assert body == (root / expected).read_bytes()


def test_no_accept_encoding_means_identity(encoded_site: tuple[str, int, Path]) -> None:
    resp, body = fetch(encoded_site, "/app.js", None)
    assert resp.getheader("Content-Encoding") is None
    assert resp.getheader("Vary") == "Accept-Encoding"
    assert body == (encoded_site[2] / "app.js").read_bytes()


def test_identity_refused(encoded_site: tuple[str, int, Path]) -> None:
    """identity;q=0 (or *;q=0) with no acceptable coding: 406, not the file uncompressed."""
    for accept in ("br;q=0, gzip;q=0, identity;q=0", "*;q=0"):
        resp, _ = fetch(encoded_site, "/app.js", accept)
        assert resp.status == 406
        assert resp.getheader("Vary") == "Accept-Encoding"
    resp, body = fetch(encoded_site, "/app.js", "*;q=0, gzip")
    assert resp.getheader("Content-Encoding") == "gzip"
    # A file too small to compress is still gzipped when identity is refused.
    resp, body = fetch(encoded_site, "/tiny.js", "gzip, identity;q=0")
    assert resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == (encoded_site[2] / "tiny.js").read_bytes()


def test_head_has_the_encoded_length(encoded_site: tuple[str, int, Path]) -> None:
    root = encoded_site[2]
    for accept, name in (("br", "app.js.br"), ("gzip", "app.js.gz"), ("identity", "app.js")):
        resp, body = fetch(encoded_site, "/app.js", accept, method="HEAD")
        assert resp.status == 200
        assert body == b""
        assert int(resp.getheader("Content-Length")) == (root / name).stat().st_size
        assert resp.getheader("Vary") == "Accept-Encoding"


def test_stale_sibling_ignored(encoded_site: tuple[str, int, Path]) -> None:
    """A sibling older than its original is not sent (the original changed since): gzip on the fly instead."""
    root = encoded_site[2]
    (root / "app.js").write_bytes(_js(40_000) + b"// changed\n")
    for sibling in ("app.js.br", "app.js.gz"):
        st = (root / "app.js").stat()
        os.utime(root / sibling, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    resp, body = fetch(encoded_site, "/app.js", "br, gzip")
    assert resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == (root / "app.js").read_bytes()
    resp, body = fetch(encoded_site, "/app.js", "br")
    assert resp.getheader("Content-Encoding") is None
    assert body == (root / "app.js").read_bytes()


def test_symlinked_sibling_ignored(encoded_site: tuple[str, int, Path]) -> None:
    """A sibling must be a regular file: a link could lead outside the root."""
    root = encoded_site[2]
    (root.parent / "outside").write_bytes(b"secret")
    (root / "plain.json.br").symlink_to(root.parent / "outside")
    resp, body = fetch(encoded_site, "/plain.json", "br")
    assert resp.getheader("Content-Encoding") is None
    assert b"secret" not in body


def test_gzip_on_the_fly(encoded_site: tuple[str, int, Path]) -> None:
    """Compressible files without siblings: gzipped here (up to 2 MiB), decoded to the exact bytes."""
    root = encoded_site[2]
    resp, body = fetch(encoded_site, "/plain.json", "gzip, deflate, br, zstd")
    assert resp.getheader("Content-Encoding") == "gzip"
    assert resp.getheader("Content-Type") == "application/json"
    assert gzip.decompress(body) == (root / "plain.json").read_bytes()
    assert len(body) < (root / "plain.json").stat().st_size / 3
    _, body2 = fetch(encoded_site, "/plain.json", "gzip")
    assert body2 == body
    # Changed: the cache is keyed by mtime and size, so the new bytes are sent.
    (root / "plain.json").write_bytes(_js(20_000) + b"\n// new\n")
    _, body3 = fetch(encoded_site, "/plain.json", "gzip")
    assert gzip.decompress(body3) == (root / "plain.json").read_bytes()
    # Too big to gzip per request, too small to gain: as they are.
    resp, body = fetch(encoded_site, "/big.bin", "gzip")
    assert resp.getheader("Content-Encoding") is None
    assert len(body) == serve.GZIP_ON_THE_FLY_MAX + 1
    resp, body = fetch(encoded_site, "/tiny.js", "gzip")
    assert resp.getheader("Content-Encoding") is None
    assert body == (root / "tiny.js").read_bytes()


def test_compressed_formats_are_sent_as_they_are(encoded_site: tuple[str, int, Path]) -> None:
    """PNGs, wheels and .gz files of the site never get a Content-Encoding (digits.csv.gz stays gzip bytes)."""
    root = encoded_site[2]
    for path in ("/photo.png", "/digits.csv.gz"):
        resp, body = fetch(encoded_site, path, "gzip, br")
        assert resp.getheader("Content-Encoding") is None
        assert resp.getheader("Vary") is None
        assert body == (root / path[1:]).read_bytes()


def test_gzip_cache_is_bounded(tmp_path: Path) -> None:
    cache = serve._GzipCache(limit=3_000)
    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.js"
        path.write_bytes(os.urandom(1_000))  # incompressible: about 1 KB each gzipped
        paths.append(path)
        assert gzip.decompress(cache.get(path, path.stat())) == path.read_bytes()
    assert cache.size <= 3_000
    assert len(cache._items) == 2


def _rules(headers: str) -> dict[str, dict[str, str]]:
    rules: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in headers.splitlines():
        if line.startswith("/"):
            current = rules.setdefault(line, {})
        elif line.startswith("  "):
            key, _, value = line.strip().partition(": ")
            current[key] = value
    return rules


def _matching(rules: dict[str, dict[str, str]], rel: str) -> list[str]:
    """Patterns that match /rel (``*`` matches anything, ``/`` included, as on Cloudflare Pages)."""
    return [p for p in rules if p != "/*" and re.fullmatch(re.escape(p).replace(r"\*", ".*"), f"/{rel}")]


def test_headers_rules_for_siblings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One rule per sibling while they fit; past the limit, folder patterns that match only siblings."""
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    (site / "data").mkdir()
    for name in ("js/a.js", "js/b.js", "index.html", "data/x.csv"):
        (site / name).write_bytes(b"x")
        (site / f"{name}.br").write_bytes(b"y")
        (site / f"{name}.gz").write_bytes(b"z")
    (site / "data" / "digits.csv.gz").write_bytes(b"a file of its own")
    (site / "orphan.js.br").write_bytes(b"no original")
    siblings = serve.encoded_siblings(site)
    assert sorted(siblings) == sorted(
        f"{n}.{e}" for n in ("js/a.js", "js/b.js", "index.html", "data/x.csv") for e in ("br", "gz")
    )
    text = serve.static_host_headers(site)
    assert text.startswith(serve.static_host_headers())  # the security block first, unchanged
    rules = _rules(text)
    assert rules["/js/a.js.br"] == {
        "Content-Encoding": "br",
        "Content-Type": "text/javascript; charset=utf-8",
        "Vary": "Accept-Encoding",
    }
    assert rules["/data/x.csv.gz"]["Content-Encoding"] == "gzip"
    assert len(rules) == 1 + len(siblings)
    monkeypatch.setattr(serve, "STATIC_HOST_MAX_RULES", 5)
    rules = _rules(serve.static_host_headers(site))
    assert "/js/*.js.br" in rules
    assert "/js/*.js.gz" in rules
    # data/*.csv.gz would also match digits.csv.gz: that one keeps an explicit rule.
    assert "/data/x.csv.gz" in rules
    assert not any("*" in p and p.startswith("/data/") for p in rules)
    every = [p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()]
    for rel in every:
        matched = _matching(rules, rel)
        if rel in siblings:
            assert len(matched) == 1, rel
            assert rules[matched[0]]["Content-Encoding"] == siblings[rel]
        else:
            assert matched == [], rel


def test_export_writes_siblings_and_headers_rules(built: None, tmp_path: Path) -> None:
    """build --out: .br/.gz next to the big files, decoding to them; _headers serves every sibling, encoded."""
    from pyapp_build import compress

    out = tmp_path / "site"
    assert serve.main(["build", "--out", str(out)]) == 0
    for rel in ("vendor/pyodide/pyodide.asm.wasm", "vendor/tfjs/tf.min.js", "index.html", "vendor/build.json"):
        original = (out / rel).read_bytes()
        assert compress.decode_sibling(out / f"{rel}.gz") == original
        assert (out / f"{rel}.br").stat().st_size < len(original)
    assert (
        compress.decode_sibling(out / "vendor/pyodide/pyodide.asm.wasm.br")
        == (out / "vendor/pyodide/pyodide.asm.wasm").read_bytes()
    )
    import pyapp_build

    # The bytecode archives are stored, for the wire to compress; a deflated wheel saves too little.
    for rel in (
        "vendor/pyodide/python_stdlib.zip",
        f"vendor/pyodide/{pyapp_build.pyodide.lock_entries()['numpy']['file_name']}",
    ):
        assert compress.decode_sibling(out / f"{rel}.br") == (out / rel).read_bytes()
        assert (out / f"{rel}.br").stat().st_size < (out / rel).stat().st_size * 0.4
    assert not list(out.rglob(f"{pyapp_build.PYPI_WHEELS['pyfive'][0]}.*"))
    assert not list(out.rglob("*.png.*"))
    info = json.loads((out / "vendor" / "build.json").read_text())
    assert not [f for f in info["files"] if f.endswith((".br", ".gz")) and not f.endswith("digits.csv.gz")]
    text = (out / "_headers").read_text()
    assert text.startswith(serve.static_host_headers())
    rules = _rules(text)
    assert len(rules) <= serve.STATIC_HOST_MAX_RULES
    siblings = serve.encoded_siblings(out)
    assert "vendor/pyodide/pyodide.asm.wasm.br" in siblings
    for rel in (p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()):
        matched = _matching(rules, rel)
        if rel in siblings:
            assert len(matched) == 1, rel
            headers = rules[matched[0]]
            original = rel.rsplit(".", 1)[0]
            assert headers["Content-Encoding"] == siblings[rel]
            assert headers["Content-Type"] == serve.MIME_TYPES.get(Path(original).suffix, "application/octet-stream")
            assert headers["Vary"] == "Accept-Encoding"
        else:
            assert matched == [], rel
    # serve.py --site negotiates from the same siblings.
    server = serve.make_server("127.0.0.1", 0, serve.default_mounts(out), quiet=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        where = (str(server.server_address[0]), int(server.server_address[1]), out)
        resp, body = fetch(where, "/vendor/pyodide/pyodide.asm.wasm", "gzip, deflate, br, zstd")
        assert resp.getheader("Content-Encoding") == "br"
        assert resp.getheader("Content-Type") == "application/wasm"
        assert body == (out / "vendor/pyodide/pyodide.asm.wasm.br").read_bytes()
    finally:
        server.shutdown()
        server.server_close()


def _closed_by_server(sock: socket.socket, wait: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), or None if it was still open after ``wait``."""
    start = time.monotonic()
    sock.settimeout(wait)
    try:
        while sock.recv(4096):  # a 4xx answer to a half-sent request may come first
            pass
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return time.monotonic() - start


def test_idle_and_stalled_connections_are_closed_while_requests_are_served(tmp_path: Path) -> None:
    """50 connections that send nothing, half a request, or a request a byte at a time (slowloris), and
    keep-alive connections left idle: normal requests are still served at once, and the server closes
    every one of them within its request timeout (2 s here; 10 s by default). The bounds sit far from both
    sides on a busy machine: a request served at once takes milliseconds, one queued behind a stalled
    connection waits out its timeout."""
    (tmp_path / "index.html").write_text("<!doctype html><title>home</title>")
    server = serve.make_server("127.0.0.1", 0, {"/": tmp_path}, quiet=True, request_timeout=2.0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    addr = server.server_address[:2]
    try:
        opened = time.monotonic()
        idle = [socket.create_connection(addr, timeout=5) for _ in range(20)]
        half = [socket.create_connection(addr, timeout=5) for _ in range(20)]
        for sock in half:
            sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        kept = []
        for _ in range(5):  # a full request, answered; then the connection is kept open and idle
            conn = http.client.HTTPConnection(*addr, timeout=5)
            conn.request("GET", "/index.html")
            assert conn.getresponse().read().startswith(b"<!doctype")
            kept.append(conn)
        trickle = [socket.create_connection(addr, timeout=5) for _ in range(5)]
        stop = threading.Event()

        def slowloris() -> None:  # one byte of an endless header every 50 ms, on each connection
            line = b"GET / HTTP/1.1\r\nX-A: " + b"a" * 1000
            for i in range(len(line)):
                for sock in trickle:
                    with contextlib.suppress(OSError):  # closed by the server: what is expected
                        sock.send(line[i : i + 1])
                if stop.wait(0.05):
                    return

        threading.Thread(target=slowloris, daemon=True).start()
        served = []
        for _ in range(20):
            started = time.monotonic()
            resp = get((str(addr[0]), int(addr[1]), tmp_path), "/index.html")
            served.append(time.monotonic() - started)
            assert resp.status == 200
        assert max(served) < 1.5, f"with 50 stalled connections open, requests took up to {max(served):.2f}s"
        stalled = idle + half + trickle + [conn.sock for conn in kept]
        closed = [_closed_by_server(sock, wait=6.0) for sock in stalled]
        stop.set()
        assert None not in closed, f"{closed.count(None)} of {len(stalled)} stalled connections still open after 6 s"
        since_open = time.monotonic() - opened
        print(f"\n20 requests beside 50 stalled connections: slowest {max(served) * 1e3:.0f} ms; all 50 closed by the")
        print(f"server {since_open:.2f} s after they were opened (request timeout 2 s)")
        assert since_open < 6.0, f"the stalled connections took {since_open:.1f}s to be closed"
        assert get((str(addr[0]), int(addr[1]), tmp_path), "/index.html").status == 200
        for sock in stalled:
            sock.close()
    finally:
        server.shutdown()
        server.server_close()


def test_connection_cap_answers_503_at_once(tmp_path: Path) -> None:
    """Beyond max_connections the server answers 503 and closes, rather than starting yet another thread;
    once the stalled connections time out, requests are served again."""
    (tmp_path / "index.html").write_text("home")
    server = serve.make_server("127.0.0.1", 0, {"/": tmp_path}, quiet=True, request_timeout=2.0, max_connections=10)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    addr = server.server_address[:2]
    site = (str(addr[0]), int(addr[1]), tmp_path)
    try:
        held = [socket.create_connection(addr, timeout=5) for _ in range(10)]
        time.sleep(0.1)  # each is accepted (and counted) by the server's loop
        started = time.monotonic()
        assert get(site, "/index.html").status == 503
        assert time.monotonic() - started < 1.5  # at once, not after the 2 s timeout of a held connection
        assert all(_closed_by_server(sock, wait=6.0) is not None for sock in held)
        time.sleep(0.1)
        assert get(site, "/index.html").status == 200
        for sock in held:
            sock.close()
    finally:
        server.shutdown()
        server.server_close()


def test_default_timeouts_are_set() -> None:
    """serve.py's own server (and the test server) use the timeouts: none is left unbounded."""
    server = serve.make_server("127.0.0.1", 0, {"/": ROOT / "web"}, quiet=True)
    try:
        assert server.RequestHandlerClass.timeout == serve.IO_TIMEOUT > 0  # type: ignore[attr-defined]
        assert server.request_timeout == serve.REQUEST_TIMEOUT > 0
        assert server.max_connections == serve.MAX_CONNECTIONS > 0
    finally:
        server.server_close()
