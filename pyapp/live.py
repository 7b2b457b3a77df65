"""Classifying a live video stream: one result per frame taken, the newest frame only, nothing queued.

:meth:`pyapp.classifier.ImageClassifier.classify_stream` makes a :class:`LiveStream`: an async
iterator of :class:`StreamResult`, each with its frame's time, the latency from frame to result,
the frames dropped meanwhile and the preprocessing path. While a frame is classified the frames
that come are dropped (and counted), so results never fall behind the camera. Stopping the stream
(``break``, ``aclose()``, the end of ``async with``, a hidden page, an ended camera) releases the
camera and every tensor. A frame is read in the browser's frame callback, while it is the one shown; where the
backend computes in this thread (wasm, cpu) it is classified there too, with no event-loop turn between frame
and result (``Model.predict_now``).

Example (in a page)::

    from pyapp import browser
    from pyapp.classifier import ImageClassifier
    clf = await ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
    camera = await browser.open_camera(facing="user")
    async for result in clf.classify_stream(camera, fps=5):
        print(result.label, result.path, result.index)  # e.g. Neutral backend 0
        if result.index == 2:
            break  # the camera is released here
    clf.dispose()
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pyapp.predictions import Predictions
from pyapp.video import FrameReader, FrameStats, epoch_ms


class FrameResult(Protocol):
    """What classifying one frame gives: its top-k and the preprocessing path that made its input."""

    @property
    def top(self) -> Predictions: ...

    @property
    def path(self) -> Literal["numpy", "backend"]: ...


#: Classifies one frame (what the frame reader's ``prepare`` made of it); None skips the frame (its input was
#: lost with the backend, say).
FrameClassifier = Callable[[Any], Awaitable[FrameResult | None]]


@dataclass(frozen=True)
class StreamResult:
    """One frame's classification.

    ``time``: when the frame was captured (or shown), ms since the epoch; ``latency_ms``: from then
    to this result; ``dropped``: frames that came while the previous one was classified and were
    not (or were over the ``fps`` cap); ``path``: ``numpy`` or ``backend`` preprocessing.

    >>> r = StreamResult(Predictions([("cat", 0.9), ("dog", 0.1)]), 0, 1000.0, 42.0, 1, "backend")
    >>> r.label, r.confidence
    ('cat', 0.9)
    """

    top: Predictions
    index: int
    time: float
    latency_ms: float
    dropped: int
    path: Literal["numpy", "backend"]

    @property
    def label(self) -> str:
        """The top label ("" when there is none)."""
        return self.top.label if self.top else ""

    @property
    def confidence(self) -> float:
        """The top label's probability."""
        return self.top[0][1] if self.top else 0.0


@dataclass(frozen=True)
class StreamStats:
    """A live stream so far: results, frames dropped, results per second and latency over the last
    ``window`` results, and why it stopped (None while it runs).

    >>> StreamStats(30, 12, 14.8, 61.0, 70.5, None).summary()
    '14.8 fps · 61 ms latency (p90 70) · 12 dropped'
    """

    results: int
    dropped: int
    fps: float
    latency_ms: float
    latency_p90_ms: float
    stopped: str | None

    def summary(self) -> str:
        """One line for a status bar."""
        return (
            f"{self.fps:.1f} fps · {self.latency_ms:.0f} ms latency (p90 {self.latency_p90_ms:.0f}) · "
            f"{self.dropped} dropped"
        )


class LiveStream:
    """Results for a video source's frames as they come: an async iterator, and an async context manager.

    Made by :meth:`~pyapp.classifier.ImageClassifier.classify_stream`. ``stats()`` says how it goes;
    ``close()`` / ``aclose()`` (or leaving ``async with``, or dropping it after ``break``) stops it.
    """

    def __init__(self, frames: FrameReader, classify: FrameClassifier, window: int = 30) -> None:
        self.frames = frames
        self._classify = classify
        self._times: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)
        self.results = 0

    def __aiter__(self) -> LiveStream:
        return self

    async def __anext__(self) -> StreamResult:
        got: FrameResult | None = None
        while got is None:
            frame = await self.frames.__anext__()
            try:
                got = await self._classify(frame.image)
            except BaseException:
                self.close()  # an error ends the stream: the camera goes off, as on any other stop
                raise
        now = epoch_ms()
        latency = now - frame.time
        self._times.append(now)
        self._latencies.append(latency)
        self.results += 1
        return StreamResult(got.top, frame.index, frame.time, latency, frame.dropped, got.path)

    def stats(self) -> StreamStats:
        """Results, drops, fps and latency (median, p90) over the last results, and why it stopped."""
        frames: FrameStats = self.frames.stats
        times, latencies = list(self._times), sorted(self._latencies)
        fps = (len(times) - 1) * 1000 / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        median = statistics.median(latencies) if latencies else 0.0
        p90 = latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))] if latencies else 0.0
        return StreamStats(self.results, frames.dropped, fps, median, p90, frames.stopped)

    def close(self) -> None:
        """Stop: the frames stop and the camera is released (with ``release=True``); safe twice."""
        self.frames.close()

    async def aclose(self) -> None:
        """:meth:`close`, for ``async`` code."""
        self.close()

    async def __aenter__(self) -> LiveStream:
        await self.frames.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
