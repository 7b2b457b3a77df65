"""The page, as a Python worker sees it: DOM updates sent as messages.

A Web Worker cannot touch the page. With SharedArrayBuffer (a cross-origin
isolated page) PyScript can make synchronous calls into it, but without one (a
static host that sends no COOP/COEP headers and no service worker to add them;
WebKit, which has no SharedArrayBuffer at all) only messages cross, and a
synchronous call blocks Python until the page's thread answers. So every
update takes the one path that works in both modes and never waits: Python
queues operations and sends them to the page in one message per event-loop
turn, and ``js/python.js`` applies them in order. Nothing is read back: the
page passes what Python needs as arguments.

Example::

    >>> sent = []
    >>> page = Page(sent.append, schedule=lambda flush: None)
    >>> page.text("#status", "ready").prop("#run", "disabled", False)
    <Page: 2 queued>
    >>> page.flush()
    >>> sent
    ['[["text","#status","ready"],["prop","#run","disabled",false]]']
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

#: Element methods the page will call on request (anything else is refused there too).
CALLS = ("focus", "click", "remove")
#: insertAdjacentHTML positions.
WHERE = ("beforebegin", "afterbegin", "beforeend", "afterend")


def _next_turn(flush: Callable[[], None]) -> None:
    asyncio.get_event_loop().call_soon(flush)


class Page:
    """Queued DOM operations on elements named by CSS selectors; sent by :meth:`flush`.

    ``send`` gets one JSON string per flush; ``schedule`` arranges a flush after the
    current event-loop turn (the default), so a burst of updates is one message. Code that
    holds the event loop (a cell in a tight loop that prints) still reaches the page: a queue
    older than ``max_delay`` seconds is sent at once.
    """

    def __init__(
        self,
        send: Callable[[str], Any],
        schedule: Callable[[Callable[[], None]], None] = _next_turn,
        max_delay: float = 0.1,
    ):
        self._send = send
        self._schedule = schedule
        self._max_delay = max_delay
        self._ops: list[list[Any]] = []
        self._since = 0.0

    def __repr__(self) -> str:
        return f"<Page: {len(self._ops)} queued>"

    def _queue(self, *op: Any) -> Page:
        if not self._ops:
            self._since = time.monotonic()
            self._schedule(self.flush)
        self._ops.append(list(op))
        if time.monotonic() - self._since > self._max_delay:
            self.flush()
        return self

    def text(self, selector: str, value: str) -> Page:
        """Set an element's ``textContent`` (never parsed as HTML)."""
        return self._queue("text", selector, str(value))

    def html(self, selector: str, value: str) -> Page:
        """Set an element's ``innerHTML`` (built by Python, escaped there)."""
        return self._queue("html", selector, value)

    def outer(self, selector: str, value: str) -> Page:
        """Replace an element with ``value`` (its ``outerHTML``)."""
        return self._queue("outer", selector, value)

    def insert(self, selector: str, where: str, value: str) -> Page:
        """``insertAdjacentHTML(where, value)`` on an element."""
        if where not in WHERE:
            raise ValueError(f"where must be one of {WHERE}, got {where!r}")
        return self._queue("insert", selector, where, value)

    def append_text(self, selector: str, value: str) -> Page:
        """Append plain text to an element (streamed output)."""
        return self._queue("append", selector, str(value))

    def prop(self, selector: str, name: str, value: Any) -> Page:
        """Set a property (``value``, ``hidden``, ``disabled``, ``className``, ``max``...)."""
        return self._queue("prop", selector, name, value)

    def data(self, selector: str, key: str, value: str) -> Page:
        """Set ``dataset[key]`` (the attributes tests and CSS read)."""
        return self._queue("data", selector, key, str(value))

    def call(self, selector: str, method: str) -> Page:
        """Call one of :data:`CALLS` on an element."""
        if method not in CALLS:
            raise ValueError(f"method must be one of {CALLS}, got {method!r}")
        return self._queue("call", selector, method)

    def flush(self) -> None:
        """Send what is queued now, in order."""
        if not self._ops:
            return
        ops, self._ops = self._ops, []
        self._send(json.dumps(ops, separators=(",", ":")))


def connect() -> Page:
    """The page of this worker: each flush is one message, ``{pyapp: "page", ops}``, that ``js/python.js``
    applies in order.

    A plain ``postMessage``, isolated or not. PyScript's synchronous ``window`` proxy (isolated pages only) costs a
    blocking round trip to the page's thread for each property it touches: the boot's progress updates alone made
    ~600 of them, 0.3 s of a repeat visit's wait for its first result (measured in the cold benchmark's timeline).
    A message is never waited for, whatever the page's thread is doing.
    """
    import js  # the worker's global scope

    def send(ops: str) -> None:
        js.postMessage(js.Object.fromEntries([["pyapp", "page"], ["ops", ops]]))

    return Page(send)
