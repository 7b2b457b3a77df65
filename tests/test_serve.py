"""serve.py: MIME types, isolation headers, no listings, no path escapes, clear port errors."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

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


def get(site: tuple[str, int, Path], path: str, method: str = "GET") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(site[0], site[1], timeout=10)
    conn.request(method, path)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


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
