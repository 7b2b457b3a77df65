"""Fetching files of the site (models, data) from Python in the browser.

Relative URLs are resolved against the site root, not against the running
script: in a Web Worker (the app, the playground) ``location`` is the worker's
own script, so ``"models/..."`` would point into ``vendor/pyscript/``. The root
is ``globalThis.PYAPP_ROOT`` when the page set it, else the document's URL.

Example (in the browser)::

    from pyapp.fetch import fetch_bytes, resolve_url
    print(resolve_url("models/nsfw-mobilenet-v2/manifest.json"))   # http://.../models/nsfw-mobilenet-v2/manifest.json
    photo = await fetch_bytes("vendor/samples/chelsea.png")
    print(len(photo))
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pyapp._js import js
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

    root = getattr(js.globalThis, "PYAPP_ROOT", None)
    return str(root) if root else str(js.location.href)


def resolve_url(url: str) -> str:
    """``url`` made absolute against :func:`site_root` (absolute URLs are returned as they are)."""
    if is_absolute(url):
        return url

    return str(js.URL.new(url, site_root()).href)


#: The global a page's boot script leaves its early fetches in (web/js/pyodide-boot.mjs): a JS ``Map`` from
#: absolute URL to the promise of its ``Response``, started before Python ran so that the downloads overlap
#: Pyodide's boot. Each is used once, by the first fetch of its URL; what is used goes through the same checks.
PRELOADED = "pyappPreloaded"


def take_preloaded(url: str) -> Any | None:
    """The promise of a ``Response`` that the page started for absolute ``url`` before Python ran, or None.

    One use each: a second fetch of the URL goes to the network (or the service worker) again.
    """

    preloaded = getattr(js.globalThis, PRELOADED, None)
    if preloaded is None or not preloaded.has(url):
        return None
    promise = preloaded.get(url)
    preloaded.delete(url)
    return promise


def drop_preloaded() -> int:
    """Cancel the page's early fetches that nothing used (a model variant never loaded); returns how many.

    Called once the model is loaded, so that unused bodies are not held for the page's life.
    """

    preloaded = getattr(js.globalThis, PRELOADED, None)
    if preloaded is None:
        return 0
    promises = list(preloaded.values())
    preloaded.clear()
    for promise in promises:
        _background.add(task := asyncio.ensure_future(_cancel_body(promise)))
        task.add_done_callback(_background.discard)
    return len(promises)


_background: set[asyncio.Future[None]] = set()  # the event loop keeps only weak references to tasks


async def _cancel_body(promise: Any) -> None:
    """Release an unused early fetch: its body is cancelled once it answers; a failed one is ignored."""
    try:
        response = await promise
        if response.body is not None:
            await response.body.cancel()
    except Exception:  # nothing was waiting for it
        pass


async def fetch_response(url: str) -> Any:
    """GET ``url`` (resolved by :func:`resolve_url`): the JS ``Response``, from the page's early fetch when it
    made one (:func:`take_preloaded`). :class:`FetchError` on a network error; the status is the caller's to
    check. A preloaded fetch that failed on the network is asked again, once."""

    absolute = resolve_url(url)
    early = take_preloaded(absolute)
    if early is not None:
        try:
            return await early
        except Exception:  # the network may be back; the fresh fetch below reports its own error
            pass
    try:
        return await js.fetch(absolute)
    except Exception as exc:  # a network failure surfaces as a JsException (TypeError: Failed to fetch)
        raise FetchError(f"cannot fetch {url}: {exc}") from None


async def fetch_bytes(url: str) -> bytes:
    """GET ``url`` (resolved by :func:`resolve_url`); :class:`FetchError` on network errors and non-2xx answers.

    The message names the URL as given, which is what the caller recognises.
    """
    resp = await fetch_response(url)
    if not resp.ok:
        raise FetchError(f"cannot fetch {url}: HTTP {resp.status}")
    try:
        data: bytes = (await resp.arrayBuffer()).to_bytes()
    except Exception as exc:  # the body broke off
        raise FetchError(f"cannot fetch {url}: the download broke off ({exc})") from None
    return data
