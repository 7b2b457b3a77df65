"""pyapp.fetch: site-relative URLs, and the page's early fetches (js/pyodide-boot.mjs's preload map), in the
browser: each is used once, a failed one is asked again, unused ones are released."""

from __future__ import annotations

from typing import Any

from harness import run_in_pyodide


@run_in_pyodide
async def test_an_early_fetch_is_used_once_then_the_network_again(pyodide: Any) -> None:
    """A preloaded Response answers the first fetch of its URL (plain and with progress); the second goes to
    the server; a preload that failed on the network is asked again; drop_preloaded releases the rest."""
    import js
    from pyodide.code import run_js

    from pyapp import fetch
    from pyapp.errors import FetchError
    from pyapp.progress import fetch_with_progress

    url = fetch.resolve_url("/vendor/samples/chelsea.png")
    real = await fetch.fetch_bytes(url)
    assert real[:8] == b"\x89PNG\r\n\x1a\n"
    # Bodies that differ from the server's, so that the answer shows where it came from.
    js.globalThis.pyappPreloaded = run_js(
        f"""new Map([
            [{url!r}, Promise.resolve(new Response("early"))],
            [{url + "?progress"!r}, Promise.resolve(new Response("early, with progress"))],
            [{url + "?failed"!r}, Promise.reject(new TypeError("Failed to fetch"))],
            [{url + "?unused"!r}, Promise.resolve(new Response("never read"))],
        ])"""
    )
    assert await fetch.fetch_bytes(url) == b"early"
    assert await fetch.fetch_bytes(url) == real  # used once
    seen: list[tuple[int, int | None]] = []

    async def report(loaded: int, total: int | None) -> None:
        seen.append((loaded, total))

    assert await fetch_with_progress(url + "?progress", report) == b"early, with progress"
    assert seen[-1] == (20, 20)
    assert await fetch.fetch_bytes(url + "?failed") == real  # the network, once more
    assert int(js.globalThis.pyappPreloaded.size) == 1
    assert fetch.drop_preloaded() == 1
    assert int(js.globalThis.pyappPreloaded.size) == 0
    assert fetch.drop_preloaded() == 0
    try:
        await fetch.fetch_bytes("/no/such/file.png")
    except FetchError as exc:
        assert "HTTP 404" in str(exc)
        assert "/no/such/file.png" in str(exc)
    else:
        raise AssertionError("a 404 was returned as bytes")
    del js.globalThis.pyappPreloaded
