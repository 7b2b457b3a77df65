"""Live video for Python: the camera, and the newest frame of a ``<video>``, MediaStream or frame port.

A frame is taken when the caller asks for one, never queued: ``requestVideoFrameCallback`` says
when the next frame is shown, and the frames shown since the last one taken (the caller was busy,
or over its ``fps`` cap) are counted as dropped, from the browser's own ``presentedFrames``
count. Frames stop, and the camera is released, when the caller stops (``break``, ``aclose()``,
the end of ``async with``), when the page is hidden, when the camera ends (revoked, unplugged) or
when a ``<video>`` is paused or ends; :attr:`FrameStats.stopped` says which. A source that shows
no frame for ``stall_timeout`` seconds, for none of those reasons, raises :class:`VideoError`:
never a silent wait.

Python in a Web Worker has no ``<video>`` and no camera: there the page runs ``js/frames.js``'s
``pumpFrames(video, port)`` and hands Python the other end of the MessageChannel, a frame port,
which gives the same frames (as VideoFrames: no pixel is copied on the page's thread; ImageBitmaps
where the browser has no VideoFrame) and the same counts.

Example (in a page)::

    from pyapp import video
    camera = await video.open_camera(facing="user")
    async with video.frames(camera, fps=10) as frames:
        async for frame in frames:
            print(frame.index, frame.width, frame.height)  # e.g. 0 640 480
            if frame.index == 2:
                break
    print(frames.stats.taken, frames.stats.stopped, camera.disposed)  # 3 closed True
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pyapp._js import IN_BROWSER, JsException, JsProxy, create_proxy, error_message, js, js_object
from pyapp.errors import InvalidInput, VideoError
from pyapp.lifecycle import Disposable

#: Which way a camera faces: the user (a laptop's, a phone's front camera) or the scene (a phone's back one).
Facing = Literal["user", "environment"]
#: Why frames stopped: the caller closed them; the page was hidden; the camera's track ended (revoked,
#: unplugged, stopped); the ``<video>`` ended or was paused; the frame port's page side went away.
StopReason = Literal["closed", "hidden", "camera ended", "video ended", "video paused", "port closed"]

#: getUserMedia's errors, as what the user can do about them.
_CAMERA_ERRORS = {
    "NotAllowedError": "camera permission was denied: allow the camera for this site and try again",
    "NotFoundError": "no camera was found: connect one and try again",
    "OverconstrainedError": "no camera can give the size or facing asked for",
    "NotReadableError": "the camera is in use by another application, or the system refused it",
    "AbortError": "the camera could not be started",
    "SecurityError": "the camera is not allowed here (a page not served over HTTPS, or a policy forbids it)",
}


def epoch_ms() -> float:
    """Now, in milliseconds since the Unix epoch, to the browser's timer precision (the clock frames use)."""
    return float(js.performance.timeOrigin) + float(js.performance.now())


class Camera(Disposable):
    """An open camera: its MediaStream, and a ``<video>`` playing it (not in the page unless you put it there).

    Open one with :func:`open_camera`. ``dispose()`` stops the camera (its light goes off); safe twice.

    Example (in a page)::

        from pyapp.video import open_camera
        async with await open_camera() as camera:
            print(camera.settings["width"], camera.settings["height"])  # e.g. 640 480
        print(camera.disposed)  # True
    """

    def __init__(self, stream: Any, video: Any) -> None:
        self.stream = stream
        self.video = video
        self._stopped = False

    @property
    def settings(self) -> dict[str, Any]:
        """The video track's actual settings: width, height, frameRate, facingMode (where known), deviceId."""
        tracks = self.stream.getVideoTracks()
        return dict(tracks[0].getSettings().to_py()) if tracks.length else {}

    @property
    def disposed(self) -> bool:
        """Whether the camera was stopped here, or every track of it has ended (revoked, unplugged)."""
        return self._stopped or _all_ended(self.stream.getTracks())

    def _dispose(self) -> None:
        self._stopped = True
        _stop_tracks(self.stream)
        self.video.pause()
        self.video.srcObject = None


async def open_camera(
    facing: Facing | None = "user", *, width: int = 640, height: int = 480, frame_rate: float | None = None
) -> Camera:
    """Ask for the camera (the browser asks the user) and start it, playing in a ``<video>``.

    ``width``, ``height`` and ``frame_rate`` are what to ask for; the camera gives what it can
    (:attr:`Camera.settings`). Raises :class:`~pyapp.errors.VideoError` saying what to do when it
    cannot open: permission denied, no camera, the camera busy, or no page here (Python in a Web
    Worker: the page opens the camera and hands over a frame port, see this module).

    Example (in a page)::

        from pyapp import browser
        camera = await browser.open_camera(facing="user")
        print(camera.settings["facingMode"] if "facingMode" in camera.settings else "unknown")
        camera.dispose()
    """
    if facing not in ("user", "environment", None):
        raise InvalidInput(f"facing must be 'user', 'environment' or None, not {facing!r}")
    if width <= 0 or height <= 0 or (frame_rate is not None and frame_rate <= 0):
        raise InvalidInput(f"width, height and frame_rate must be positive, not {width}, {height}, {frame_rate}")
    if not IN_BROWSER or getattr(js, "document", None) is None:
        raise VideoError(
            "open_camera needs a page (a window): Python here runs in a Web Worker or outside a browser. "
            "Have the page open the camera and pass a frame port (js/frames.js's pumpFrames) instead"
        )
    devices = getattr(js.navigator, "mediaDevices", None)
    if devices is None:
        raise VideoError("this page cannot use a camera: it is not served over HTTPS or from localhost")
    video: dict[str, Any] = {"width": {"ideal": width}, "height": {"ideal": height}}
    if facing is not None:
        video["facingMode"] = facing
    if frame_rate is not None:
        video["frameRate"] = {"ideal": frame_rate}
    try:
        stream = await devices.getUserMedia(js_object({"video": js_object(video), "audio": False}))
    except JsException as exc:
        name = str(getattr(exc, "name", "Error"))
        why = _CAMERA_ERRORS.get(name, "the camera could not be opened")
        raise VideoError(f"{why} ({name}: {error_message(exc)})") from None
    element = js.document.createElement("video")
    element.muted = True
    element.playsInline = True
    element.srcObject = stream
    await _play(element, 10.0, lambda: _stop_tracks(stream))
    return Camera(stream, element)


async def _play(video: Any, timeout: float, stop: Callable[[], None]) -> None:
    """``video.play()``, which never settles for a stream that shows no frame: after ``timeout`` s, an error."""
    try:
        await asyncio.wait_for(video.play(), timeout)
    except (JsException, TimeoutError) as exc:
        stop()
        why = f"no video frame came for {timeout:g} s" if isinstance(exc, TimeoutError) else error_message(exc)
        raise VideoError(f"the video would not play: {why}; the camera was released") from None


def _all_ended(tracks: Any) -> bool:
    """Whether no track is live any more (stopped, revoked, unplugged)."""
    return not any(str(t.readyState) == "live" for t in tracks)


def _stop_tracks(stream: Any) -> None:
    for track in stream.getTracks():
        track.stop()


@dataclass(frozen=True)
class Frame:
    """One video frame, taken when asked for.

    ``image`` is a pixel source to read now: the ``<video>`` itself (it shows this frame until the
    next one), or, from a frame port, a VideoFrame (or ImageBitmap) that :meth:`FrameReader.__anext__`
    closes when the next frame is asked for; or what the reader's ``prepare`` made of either. ``time`` is when
    the frame was captured (or, where the source does not say, shown), in ms since the epoch
    (:func:`epoch_ms`); ``dropped``, how many frames were shown since the previous one taken and
    not taken.
    """

    image: Any
    index: int
    time: float
    dropped: int
    width: int
    height: int


@dataclass
class FrameStats:
    """Counts so far: frames taken, frames dropped (shown and not taken), and why frames stopped (None: running)."""

    taken: int = 0
    dropped: int = 0
    stopped: StopReason | None = None


@dataclass(frozen=True)
class _Delivered:
    """A frame as the browser's callback hands it over: its image (or what ``prepare`` made of it)."""

    value: Any
    presented: int
    time: float
    width: int
    height: int
    owned: bool  # a port's VideoFrame or ImageBitmap, which this reader closes when the next frame is asked for


class _Session:
    """What the browser's callbacks reach: the pending request and the source's listeners.

    Apart from :class:`FrameReader`, so that the proxies the browser holds do not keep the reader
    alive: a reader dropped after ``break`` is collected at once, and stops its source.
    """

    def __init__(self, prepare: Callable[[Any], Any] | None) -> None:
        self.waiter: asyncio.Future[_Delivered | StopReason] | None = None
        self.ended: StopReason | None = None
        self.prepare = prepare
        self.not_before = 0.0  # frames captured earlier are not taken (epoch ms; the fps cap)
        self.proxies: list[Any] = []
        self.listeners: list[tuple[Any, str, Any]] = []

    def frame(self, image: Any, presented: int, time: float, width: int, height: int, owned: bool) -> bool:
        """A frame came: prepare it now, while it is the one shown, and hand it to the waiting request.

        ``owned``: a port's VideoFrame or ImageBitmap, closed here once prepared (or when not taken). Preparing in
        the browser's frame callback also spares an event-loop turn before the work starts. False when
        the frame is not taken: nobody waits, or it was captured before ``not_before`` (the fps cap).
        """
        waiter = self.waiter
        if waiter is None or waiter.done() or time < self.not_before:
            if owned:
                image.close()
            return False
        if self.prepare is None:
            waiter.set_result(_Delivered(image, presented, time, width, height, owned))
            return True
        try:
            value = self.prepare(image)
        except Exception as exc:  # the caller's own error, raised where it awaits the frame
            waiter.set_exception(exc)
            return True
        finally:
            if owned:
                image.close()
        waiter.set_result(_Delivered(value, presented, time, width, height, False))
        return True

    def waiting(self) -> bool:
        """Whether a request waits for a frame."""
        return self.waiter is not None and not self.waiter.done()

    def fail(self, error: VideoError) -> None:
        if self.ended is None:
            self.ended = "port closed"
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def end(self, reason: StopReason) -> None:
        if self.ended is None:
            self.ended = reason
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(reason)

    def listen(self, target: Any, event: str, handler: Any) -> None:
        proxy = create_proxy(handler)
        self.proxies.append(proxy)
        self.listeners.append((target, event, proxy))
        target.addEventListener(event, proxy)

    def release(self) -> None:
        for target, event, proxy in self.listeners:
            target.removeEventListener(event, proxy)
        self.listeners.clear()
        for proxy in self.proxies:
            proxy.destroy()
        self.proxies.clear()


class _ElementSource:
    """Frames of a ``<video>`` in this page, by ``requestVideoFrameCallback``."""

    def __init__(self, session: _Session, video: Any, tracks: list[Any], stop: Any) -> None:
        self.session = session
        self.video = video
        self.tracks = tracks
        self._stop = stop
        self._handle: Any = None
        self._latest: tuple[int, float, int, int] | None = None  # the newest frame shown and not taken
        self._callback = create_proxy(self._on_frame)
        session.proxies.append(self._callback)
        document = js.document
        session.listen(document, "visibilitychange", self._on_event)
        for event in ("ended", "pause"):
            session.listen(video, event, self._on_event)
        for track in tracks:
            session.listen(track, "ended", self._on_event)

    def _on_event(self, _event: Any) -> None:
        reason = self.why_stopped()
        if reason is not None:
            self.session.end(reason)

    def _on_frame(self, _now: float, meta: Any) -> None:
        self._handle = None
        if self.tracks and _all_ended(self.tracks):
            self.session.end("camera ended")  # a frame the compositor still had, of a camera now stopped
            return
        capture = getattr(meta, "captureTime", None)
        shown = float(js.performance.timeOrigin) + float(capture if capture is not None else meta.presentationTime)
        self._latest = (int(meta.presentedFrames), shown, int(meta.width), int(meta.height))
        if self.session.waiting():
            self._take()
        self._arm()

    def _take(self) -> None:
        assert self._latest is not None
        presented, shown, width, height = self._latest
        self._latest = None
        self.session.frame(self.video, presented, shown, width, height, False)

    def _arm(self) -> None:
        # Always one callback asked for while frames run: a request made after the caller's work would wait
        # for the next frame to be shown (measured: 6 ms on average, and a tenth of the frame rate on wasm);
        # this way the newest frame shown is known, and taken the moment the caller asks.
        if self._handle is None and self.session.ended is None:
            self._handle = self.video.requestVideoFrameCallback(self._callback)

    def why_stopped(self) -> StopReason | None:
        """Why no frame comes, if the source says (a timeout asks before it blames the source)."""
        if str(js.document.visibilityState) == "hidden":
            return "hidden"
        if self.tracks and _all_ended(self.tracks):
            return "camera ended"
        if bool(self.video.ended):
            return "video ended"
        if bool(self.video.paused):
            return "video paused"
        return None

    def request(self) -> None:
        """Take the newest frame shown since the last one taken, now; or the next one, when it is shown."""
        if self._latest is not None:
            self._take()
        self._arm()

    def close(self, release: bool) -> None:
        if self._handle is not None:
            self.video.cancelVideoFrameCallback(self._handle)
            self._handle = None
        if release:
            self._stop()


class _PortSource:
    """Frames from a page's ``js/frames.js`` pump, over a MessagePort (Python in a Web Worker)."""

    def __init__(self, session: _Session, port: Any) -> None:
        self.session = session
        self.port = port
        session.listen(port, "message", self._on_message)
        port.start()

    def _on_message(self, event: Any) -> None:
        data = event.data
        kind = str(getattr(data, "type", ""))
        if kind == "frame":
            size = int(data.width), int(data.height)
            taken = self.session.frame(data.image, int(data.presented), float(data.time), *size, True)
            if not taken and self.session.waiting():
                self.request()  # captured before the fps cap allows: the next one
        elif kind == "end":
            reason = str(data.reason)
            if reason in ("closed", "hidden", "camera ended", "video ended", "video paused"):
                self.session.end(reason)  # type: ignore[arg-type]
            else:  # the page could not read the video: say what it said
                self.session.fail(VideoError(f"the page stopped the frames: {reason}"))

    def why_stopped(self) -> StopReason | None:
        return None  # the page side says why it stops, in an "end" message

    def request(self) -> None:
        self.port.postMessage(js_object({"type": "next"}))

    def close(self, release: bool) -> None:
        try:
            self.port.postMessage(js_object({"type": "stop", "release": release}))
        finally:
            self.port.close()


class FrameReader:
    """The frames of one source, newest only: an async iterator of :class:`Frame`, and an async context manager.

    Made by :func:`frames`. ``stats`` counts frames taken and dropped and says why they stopped.
    ``close()`` (or ``aclose()``, or leaving ``async with``, or dropping the reader after
    ``break``) stops the frames, and with ``release=True`` the camera behind them; safe twice.
    """

    def __init__(
        self,
        source: Any,
        fps: float | None,
        release: bool,
        stall_timeout: float,
        prepare: Callable[[Any], Any] | None = None,
        discard: Callable[[Any], None] | None = None,
    ) -> None:
        if fps is not None and fps <= 0:
            raise InvalidInput(f"fps must be positive (or None for every frame the caller can take), not {fps}")
        if stall_timeout <= 0:
            raise InvalidInput(f"stall_timeout must be positive, not {stall_timeout}")
        self.stats = FrameStats()
        self._session = _Session(prepare)
        self._discard = discard
        self._source_arg = source
        self._source: _ElementSource | _PortSource | None = None
        self._interval = 1000.0 / fps if fps else 0.0
        self._release = release
        self._stall = stall_timeout
        self._last_presented: int | None = None
        self._last_time: float | None = None  # the last frame's time (epoch ms)
        self._owned: Any = None  # the port's last frame, closed when the next is asked for
        self._closed = False
        kind = _kind(source)
        if kind not in ("Camera", "MediaStream", "HTMLVideoElement", "MessagePort"):
            raise InvalidInput(
                "frames come from a <video>, a MediaStream, a Camera (pyapp.video.open_camera) or a frame port "
                f"(js/frames.js), not {kind}"
            )

    async def _start(self) -> None:
        source, session = self._source_arg, self._session
        kind = _kind(source)
        if kind == "MessagePort":
            self._source = _PortSource(session, source)
            return
        if kind == "Camera":
            video, stream, stop = source.video, source.stream, source.dispose
        elif kind == "MediaStream":
            video, stream = js.document.createElement("video"), source
            video.muted = True
            video.playsInline = True
            video.srcObject = stream

            def stop() -> None:
                _stop_tracks(stream)
                video.pause()
                video.srcObject = None

            await _play(video, self._stall, stop)
        else:
            video = source
            stream = video.srcObject if _kind(video.srcObject) == "MediaStream" else None

            def stop() -> None:
                if stream is not None:
                    _stop_tracks(stream)

        tracks = list(stream.getVideoTracks()) if stream is not None else []
        self._source = _ElementSource(session, video, tracks, stop)
        reason = self._source.why_stopped()
        if reason in ("video paused", "video ended") and kind == "HTMLVideoElement":
            self.close()
            raise VideoError(f"the <video> is {reason.split()[1]}: play() it before taking its frames")
        if reason is not None:
            session.end(reason)

    def __aiter__(self) -> FrameReader:
        return self

    async def __anext__(self) -> Frame:
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        if self._closed or self._session.ended is not None:
            self._finish(self._session.ended or "closed")
            raise StopAsyncIteration
        if self._source is None:
            await self._start()
        source = self._source
        assert source is not None
        if self._interval and self._last_time is not None:
            # The cap spaces the frames' own times, not the moments they are taken: the newest frame shown
            # may have been captured a frame period before it is asked for.
            self._session.not_before = self._last_time + self._interval
            wait = self._session.not_before - epoch_ms()
            if wait > 0:
                await asyncio.sleep(wait / 1000)
        got = self._session.ended
        if got is None:
            self._session.waiter = asyncio.get_running_loop().create_future()
            source.request()
            try:
                got = await asyncio.wait_for(self._session.waiter, self._stall)
            except VideoError:
                self.close()
                raise
            except TimeoutError:
                got = source.why_stopped()
                if got is None:
                    self.close()
                    raise VideoError(
                        f"no video frame came for {self._stall:g} s, and the source says nothing about why "
                        "(a frozen camera or decoder?): frames stopped and the camera was released"
                    ) from None
            finally:
                self._session.waiter = None
        if isinstance(got, str):
            self._finish(got)
            raise StopAsyncIteration
        if got.owned:
            self._owned = got.value
        presented = got.presented
        dropped = 0 if self._last_presented is None else max(0, presented - self._last_presented - 1)
        self._last_presented = presented
        self._last_time = got.time
        frame = Frame(got.value, self.stats.taken, got.time, dropped, got.width, got.height)
        self.stats.taken += 1
        self.stats.dropped += dropped
        return frame

    def _finish(self, reason: StopReason) -> None:
        if self.stats.stopped is None:
            self.stats.stopped = reason
        self.close()

    def close(self) -> None:
        """Stop the frames and release what they hold (the camera too, with ``release=True``); safe twice."""
        if self._closed:
            return
        self._closed = True
        if self.stats.stopped is None:
            self.stats.stopped = self._session.ended or "closed"
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        waiter = self._session.waiter
        if waiter is not None and waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            got = waiter.result()  # prepared, and never taken: the caller would have disposed of it
            if isinstance(got, _Delivered) and self._discard is not None and self._session.prepare is not None:
                self._discard(got.value)
        try:
            if self._source is not None:
                self._source.close(self._release)
            elif self._release and _kind(self._source_arg) == "Camera":
                self._source_arg.dispose()
        finally:
            self._session.end("closed")
            self._session.release()

    async def aclose(self) -> None:
        """:meth:`close`, for ``async`` code (``contextlib.aclosing``, async generators' habits)."""
        self.close()

    async def __aenter__(self) -> FrameReader:
        if self._closed:
            raise VideoError("these frames were closed: ask for new ones with frames()")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A reader dropped after `break` is collected at once (refcounting): the camera goes off then.
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):  # a finalizer must not raise; the page may be gone
                self.close()


def frames(
    source: Any,
    fps: float | None = None,
    *,
    release: bool = True,
    stall_timeout: float = 10.0,
    prepare: Callable[[Any], Any] | None = None,
    discard: Callable[[Any], None] | None = None,
) -> FrameReader:
    """The newest frames of ``source``, one each time one is asked for; see :class:`FrameReader`.

    ``source``: a ``<video>`` (playing), a MediaStream, a :class:`Camera`, or a frame port (a
    MessagePort whose page side runs ``js/frames.js``'s ``pumpFrames``). ``fps`` caps how often a
    frame is taken. ``release`` stops the camera behind the source when the frames stop.
    ``prepare`` runs in the browser's frame callback, on the frame's image while it is the one
    shown; the frame then carries what it returned (a tensor, say), and ``discard`` disposes of a
    prepared frame that is never taken.

    Example (in a page)::

        from pyapp import video
        async for frame in video.frames(await video.open_camera()):
            print(frame.index, frame.dropped)  # 0 0
            break  # the camera is released here
    """
    return FrameReader(source, fps, release, stall_timeout, prepare, discard)


def _kind(obj: Any) -> str:
    if isinstance(obj, Camera):
        return "Camera"
    if IN_BROWSER and isinstance(obj, JsProxy):
        return str(js.Object.prototype.toString.call(obj))[8:-1]
    return type(obj).__name__
