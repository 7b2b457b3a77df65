"""web/page.py on the host: the one-way channel the Python workers use to change the page (no browser needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))

from page import Page


def _page(max_delay: float = 60.0) -> tuple[Page, list[list[list[object]]], list[object]]:
    sent: list[list[list[object]]] = []
    scheduled: list[object] = []
    page = Page(lambda ops: sent.append(json.loads(ops)), schedule=scheduled.append, max_delay=max_delay)
    return page, sent, scheduled


def test_updates_are_batched_in_order_and_sent_once_per_flush() -> None:
    page, sent, scheduled = _page()
    page.text("#a", "x<b>").html("#b", "<i>y</i>").insert("#c", "afterbegin", "<li>").data("#d", "k", 5)
    page.prop("#e", "disabled", True).append_text("#f", "line\n").outer("#g", "<p>").call("#h", "focus")
    assert len(scheduled) == 1, "one flush is scheduled for a burst"
    assert sent == []
    page.flush()
    page.flush()  # nothing queued: nothing sent
    assert sent == [
        [
            ["text", "#a", "x<b>"],
            ["html", "#b", "<i>y</i>"],
            ["insert", "#c", "afterbegin", "<li>"],
            ["data", "#d", "k", "5"],
            ["prop", "#e", "disabled", True],
            ["append", "#f", "line\n"],
            ["outer", "#g", "<p>"],
            ["call", "#h", "focus"],
        ]
    ]
    page.text("#a", "again")
    assert len(scheduled) == 2, "the next burst schedules its own flush"


def test_a_queue_older_than_max_delay_is_sent_at_once() -> None:
    """A cell that holds the event loop (a tight loop that prints) still reaches the page."""
    page, sent, _ = _page(max_delay=0.0)
    page.append_text("#out", "a")
    page.append_text("#out", "b")
    assert [op[2] for batch in sent for op in batch] == ["a", "b"]


def test_unknown_positions_and_methods_are_refused() -> None:
    page, _, _ = _page()
    with pytest.raises(ValueError, match="where must be one of"):
        page.insert("#a", "inside", "<p>")
    with pytest.raises(ValueError, match="method must be one of"):
        page.call("#a", "submit")
