"""Fetching files of the site (models, data) from Python in the browser.

Relative URLs are resolved against the site root, not against the running
script: in a Web Worker (the app, the playground) ``location`` is the worker's
own script, so ``"models/..."`` would point into ``vendor/pyscript/``. The root
is ``globalThis.PYAPP_ROOT`` when the page set it, else the document's URL.

Example (in the browser)::

    from pyapp.fetch import fetch_bytes, resolve_url
    print(resolve_url("models/nsfw-mobilenet-v2/manifest.json"))   # http://127.0.0.1:8000/models/...
    photo = await fetch_bytes("vendor/samples/chelsea.png")
    print(len(photo))
"""

from __future__ import annotations

import re

from pyapp.errors import FetchError

_ABSOLUTE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def is_absolute(url: str) -> bool:
    """True for URLs with a scheme (``https:``, ``blob:``, ``indexeddb:``...).

    >>> is_absolute("https://x/y"), is_absolute("indexeddb://m"), is_absolute("models/m.json")
    (True, True, False)
    """
    return bool(_ABSOLUTE.match(url))


def site_root() -> str:
    """The base URL relative URLs are resolved against."""
    from pyapp._js import js

    root = getattr(js.globalThis, "PYAPP_ROOT", None)
    return str(root) if root else str(js.location.href)


def resolve_url(url: str) -> str:
    """``url`` made absolute against :func:`site_root` (absolute URLs are returned as they are)."""
    if is_absolute(url):
        return url
    from pyapp._js import js

    return str(js.URL.new(url, site_root()).href)


async def fetch_bytes(url: str) -> bytes:
    """GET ``url`` (resolved by :func:`resolve_url`); :class:`FetchError` on network errors and non-2xx answers.

    The message names the URL as given, which is what the caller recognises.
    """
    from pyodide.http import pyfetch

    try:
        resp = await pyfetch(resolve_url(url))
    except Exception as exc:  # a network failure surfaces as OSError or JsException
        raise FetchError(f"cannot fetch {url}: {exc}") from None
    if not resp.ok:
        raise FetchError(f"cannot fetch {url}: HTTP {resp.status}")
    data: bytes = await resp.bytes()
    return data
