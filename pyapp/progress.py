"""Typed progress events while a model loads, for progress bars (as Transformers.js's ``progress_callback``).

Pass ``progress=callback`` to :meth:`pyapp.model.Model.load` (and so to
:meth:`pyapp.classifier.ImageClassifier.load` and the
:class:`~pyapp.transfer.TransferClassifier` loaders); the callback gets one
:class:`LoadProgress` per step, in order. It may be a coroutine function: it is awaited.

Example (in the browser)::

    from pyapp.model import Model
    def show(event):
        if event.stage == "download" and event.total:
            print(f"{event.file}: {event.loaded}/{event.total} bytes")
        else:
            print(event.stage, event.variant)
    model = await Model.load("models/nsfw-mobilenet-v2/manifest.json", progress=show)
    model.dispose()
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pyapp.errors import FetchError

#: In the order they come: the manifest, each file of a variant, building it, warming it up,
#: ready. "skipped" reports a variant that failed (``detail`` says why) before the next one's files.
Stage = Literal["manifest", "download", "build", "skipped", "warmup", "ready"]


@dataclass(frozen=True)
class LoadProgress:
    """One step of loading a model.

    ``file`` is the URL of the file being fetched ("manifest", "download"); ``loaded`` counts its
    bytes so far and ``total`` is its size, None while not yet known (a compressed transfer has no
    length of the decoded bytes): a file's last event always has ``loaded == total``. For "ready",
    ``loaded`` and ``total`` are the bytes of every file of the variant loaded.

    >>> e = LoadProgress("download", "models/m/uint8/model.json", 512, 2048, "uint8")
    >>> e.fraction, e.done
    (0.25, False)
    """

    stage: Stage
    file: str = ""
    loaded: int = 0
    total: int | None = None
    variant: str = ""
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        """``loaded / total`` (0..1), None while the total is unknown."""
        if self.total is None:
            return None
        return 1.0 if self.total == 0 else self.loaded / self.total

    @property
    def done(self) -> bool:
        """Whether this event ends its file (or its stage)."""
        return self.total is not None and self.loaded == self.total


ProgressCallback = Callable[[LoadProgress], Any]


async def emit(callback: ProgressCallback | None, event: LoadProgress) -> None:
    """Hand ``event`` to ``callback`` (awaiting it when it returns an awaitable)."""
    if callback is None:
        return
    result = callback(event)
    if inspect.isawaitable(result):
        await result


async def fetch_with_progress(
    url: str, report: Callable[[int, int | None], Awaitable[None]], max_bytes: int | None = None
) -> bytes:
    """GET ``url`` (see :func:`pyapp.fetch.fetch_bytes`), reading the body in chunks and calling
    ``report(loaded, total)`` as they arrive: first (0, total), last (n, n).

    With ``max_bytes``, a body declared (Content-Length) or found larger is refused with
    :class:`FetchError` and the download cancelled: at most one chunk past the cap is held.
    """
    from pyapp.fetch import fetch_response

    resp = await fetch_response(url)
    if not resp.ok:
        raise FetchError(f"cannot fetch {url}: HTTP {resp.status}")
    headers = resp.headers
    encoding = str(headers.get("Content-Encoding") or "identity").strip().lower()
    length = headers.get("Content-Length")
    total = int(length) if length is not None and encoding == "identity" else None
    body = resp.body
    too_large = FetchError(f"cannot fetch {url}: larger than the {max_bytes} bytes allowed")
    if max_bytes is not None and total is not None and total > max_bytes:
        if body is not None:
            await body.cancel()
        raise too_large
    await report(0, total)
    if body is None:
        data: bytes = (await resp.arrayBuffer()).to_bytes()
        if max_bytes is not None and len(data) > max_bytes:
            raise too_large
    else:
        reader = body.getReader()
        chunks: list[bytes] = []
        loaded = 0
        try:
            while True:
                try:
                    chunk = await reader.read()
                except Exception as exc:
                    raise FetchError(f"cannot fetch {url}: the download broke off ({exc})") from None
                if chunk.done:
                    break
                part = chunk.value.to_bytes()
                loaded += len(part)
                if max_bytes is not None and loaded > max_bytes:
                    # A compressed body (no usable Content-Length) can decode to more than declared.
                    await reader.cancel()
                    raise too_large
                chunks.append(part)
                if loaded != total:  # the last one is reported below, with the total
                    await report(loaded, total)
        finally:
            reader.releaseLock()
        data = b"".join(chunks)
    await report(len(data), len(data))
    return data
