"""pyapp.video: the camera and the newest frame of a <video> or a frame port, on Chromium's camera showing real
images (tests/conftest.py's camera_page), with the checks that need no browser first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import Pyodide, run_in_pyodide

from pyapp.errors import InvalidInput, VideoError
from pyapp.video import FrameReader, frames, open_camera
from pyapp_build.camera import i420, write_scenes

# One camera browser serves both camera modules: their tests share one xdist worker (tools/test.sh: loadgroup).
pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("camera")]


def test_frames_refuse_what_is_not_a_video_source() -> None:
    """A number, a string or a bad rate is refused at once, naming what frames can come from."""
    with pytest.raises(InvalidInput, match="a <video>, a MediaStream, a Camera"):
        frames(42)
    with pytest.raises(InvalidInput, match="fps must be positive"):
        FrameReader("x", 0, True, 1.0)
    with pytest.raises(InvalidInput, match="stall_timeout must be positive"):
        FrameReader("x", None, True, 0)


def test_open_camera_says_where_it_can_run() -> None:
    """Off the page (here: CPython; in the browser: a Web Worker) the camera cannot open, and the error says what
    to do instead; bad sizes are refused before anything is asked of the browser."""

    # Not asyncio.run: Playwright's loop may run in this thread (the doctests' rule).
    def run(coro: Any) -> None:
        coro.send(None)

    with pytest.raises(VideoError, match=r"needs a page .* pass a frame port"):
        run(open_camera())
    with pytest.raises(InvalidInput, match="facing must be"):
        run(open_camera(facing="front"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="must be positive"):
        run(open_camera(width=0))


def test_scene_video_is_i420_y4m(tmp_path: Path) -> None:
    """The camera file: a Y4M header Chromium reads, then one I420 frame per 1/fps s of each image; a white
    pixel is Y 255 and neutral chroma, a red one BT.601's (76, 85, 255)."""
    white, red = np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert [p[0] for p in i420(white)] == [255, 128, 128]
    assert [p[0] for p in i420(red)] == [76, 85, 255]
    out = write_scenes(tmp_path / "s.y4m", [white, red], width=4, height=2, fps=10, seconds_each=0.5)
    data = out.read_bytes()
    header, _, rest = data.partition(b"\n")
    assert header == b"YUV4MPEG2 W4 H2 F10:1 Ip A1:1 C420jpeg"
    frame = b"FRAME\n" + bytes(8 + 2 + 2)
    assert len(rest) == 10 * len(frame)
    with pytest.raises(ValueError, match="even width and height"):
        write_scenes(tmp_path / "odd.y4m", [white], width=3, height=2)


@run_in_pyodide(timeout=300)
async def _frames_of_the_camera(pyodide: Pyodide) -> dict[str, Any]:
    import testutil

    from pyapp import video

    before = await testutil.leaks()
    camera = await video.open_camera()
    settings = camera.settings
    taken = []
    async with video.frames(camera, fps=10) as reader:
        async for frame in reader:
            taken.append([frame.index, frame.time, frame.dropped, frame.width, frame.height])
            if frame.index == 11:
                break
    first = {"taken": taken, "stats": [reader.stats.taken, reader.stats.dropped, reader.stats.stopped]}
    first["track"] = str(camera.stream.getVideoTracks()[0].readyState)
    del reader, frame
    # The idiom without a name: the reader is dropped at `break`, and the camera goes off then.
    camera = await video.open_camera()
    async for _frame in video.frames(camera):
        break
    del _frame
    second = str(camera.stream.getVideoTracks()[0].readyState)
    # release=False leaves the camera on, for the caller to stop.
    camera = await video.open_camera()
    async for _frame in video.frames(camera, release=False):
        break
    del _frame
    third = str(camera.stream.getVideoTracks()[0].readyState)
    camera.dispose()
    del camera  # its JS objects, so that the count below sees only what pyapp left
    after = await testutil.leaks()
    return {**first, "settings": settings, "second": second, "third": third, "before": before, "after": after}


def test_frames_newest_only_with_drops_counted_and_the_camera_released(camera_page: Pyodide) -> None:
    """A 60 fps camera read at fps=10: frames come ~100 ms apart, each after the ~5 shown meanwhile (counted as
    dropped); leaving ``async with``, or ``break`` out of an unnamed reader, stops the camera; ``release=False``
    does not; nothing is left in the page."""
    got = _frames_of_the_camera(camera_page)
    taken = got["taken"]
    assert [t[0] for t in taken] == list(range(12))
    assert (got["settings"]["width"], got["settings"]["height"], got["settings"]["frameRate"]) == (640, 480, 60)
    assert all((w, h) == (640, 480) for *_, w, h in taken)
    gaps = np.diff([t[1] for t in taken])
    assert gaps.min() >= 90, gaps
    assert np.median(gaps) < 200, gaps
    drops = [t[2] for t in taken[1:]]
    assert taken[0][2] == 0
    assert 3 <= np.median(drops) <= 8, drops
    assert got["stats"] == [12, sum(drops), "closed"]
    assert (got["track"], got["second"], got["third"]) == ("ended", "ended", "live")
    assert got["after"] == got["before"]


@run_in_pyodide(timeout=300)
async def _ways_frames_stop(pyodide: Pyodide) -> dict[str, Any]:
    import js
    import testutil

    from pyapp import video
    from pyapp.errors import VideoError

    before = await testutil.leaks()
    out: dict[str, Any] = {}

    async def run(reader: video.FrameReader, act: Any) -> list[Any]:
        n = 0
        async for _frame in reader:
            n += 1
            if n == 3:
                act()
        return [n, reader.stats.stopped]

    # The camera revoked or unplugged: its track ends (here stopped, and told so as the browser tells it).
    camera = await video.open_camera()
    track = camera.stream.getVideoTracks()[0]

    def revoke(track: Any = track) -> None:
        track.stop()
        track.dispatchEvent(js.Event.new("ended"))

    out["revoked"] = await run(video.frames(camera), revoke)
    # A track stopped by other code says nothing; the next frame never comes, and the reader asks why.
    camera = await video.open_camera()
    out["stopped"] = await run(video.frames(camera, stall_timeout=1), camera.stream.getVideoTracks()[0].stop)
    # The <video> paused.
    camera = await video.open_camera()
    out["paused"] = await run(video.frames(camera.video), camera.video.pause)
    out["paused camera"] = str(camera.stream.getVideoTracks()[0].readyState)
    # The page hidden (headless Chromium never hides a page: its state is set as a hidden tab's is).
    camera = await video.open_camera()

    def hide() -> None:
        js.eval("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})")
        js.document.dispatchEvent(js.Event.new("visibilitychange"))

    try:
        out["hidden"] = await run(video.frames(camera), hide)
    finally:
        js.eval("delete document.visibilityState")
    out["hidden camera"] = camera.disposed
    # A paused <video> at the start is an error, not an empty stream.
    camera = await video.open_camera()
    camera.video.pause()
    out["paused at start"] = str(await testutil.raises(video.frames(camera.video).__anext__(), VideoError, "paused"))
    out["paused at start camera"] = str(camera.stream.getVideoTracks()[0].readyState)
    # A source that never shows a frame (a canvas stream nobody draws on): an error, after stall_timeout.
    canvas = js.document.createElement("canvas")
    stream = canvas.captureStream(0)
    reader = video.frames(stream, stall_timeout=1)
    out["no frames"] = str(await testutil.raises(reader.__anext__(), VideoError, "no video frame came for 1 s"))
    out["no frames track"] = str(stream.getVideoTracks()[0].readyState)
    del reader, camera, track, canvas, stream, revoke, hide
    after = await testutil.leaks()
    return {**out, "before": before, "after": after}


def test_frames_stop_when_the_source_does_and_say_why(camera_page: Pyodide) -> None:
    """Frames end (with the reason in ``stats.stopped``, and the camera released) when the camera's track ends
    with or without an event, the <video> pauses, or the page is hidden; a paused <video> at the start, and a
    source that shows nothing, raise VideoError saying so instead of waiting forever; nothing is left behind."""
    got = _ways_frames_stop(camera_page)
    assert got["revoked"] == [3, "camera ended"]
    assert got["stopped"] == [3, "camera ended"]
    assert got["paused"] == [3, "video paused"]
    assert got["paused camera"] == "ended"
    assert got["hidden"] == [3, "hidden"]
    assert got["hidden camera"] is True
    assert "play() it before taking its frames" in got["paused at start"]
    assert got["paused at start camera"] == "ended"
    assert "no video frame came for 1 s" in got["no frames"]
    assert got["no frames track"] == "ended"
    assert got["after"] == got["before"]


@run_in_pyodide(timeout=300)
async def _through_a_frame_port(pyodide: Pyodide) -> dict[str, Any]:
    import asyncio

    import js
    import testutil
    from pyodide.ffi import create_proxy

    from pyapp import video

    before = await testutil.leaks()
    pump = await js.eval("import('/js/frames.js')")
    stops: list[str] = []
    on_stop = create_proxy(lambda reason: stops.append(str(reason)))
    out: dict[str, Any] = {}
    # Python asks; the page's pump posts each frame as a VideoFrame; Python stops it and the camera goes off.
    camera = await video.open_camera()
    channel = js.MessageChannel.new()
    pump.pumpFrames(camera.video, channel.port1, js.Object.fromEntries([["onStop", on_stop]]))
    seen, images = [], []
    async with video.frames(channel.port2) as reader:
        async for frame in reader:
            kind = str(js.Object.prototype.toString.call(frame.image))
            seen.append([frame.index, frame.width, frame.height, frame.dropped, kind])
            images.append(frame.image)
            if frame.index == 4:
                break
    await asyncio.sleep(0.1)
    out["seen"] = seen
    out["closed frames"] = [int(f.displayWidth) for f in images]  # a closed VideoFrame is 0 wide
    out["stops"] = list(stops)
    out["track"] = str(camera.stream.getVideoTracks()[0].readyState)
    del images, frame
    # The page ends the frames (its camera ended): Python stops with the page's reason.
    camera = await video.open_camera()
    channel = js.MessageChannel.new()
    end = pump.pumpFrames(camera.video, channel.port1, js.Object.fromEntries([["onStop", on_stop]]))
    reader = video.frames(channel.port2)
    n = 0
    async for _frame in reader:
        n += 1
        if n == 2:
            end("camera ended")
    await asyncio.sleep(0.1)
    out["ended"] = [n, reader.stats.stopped, list(stops)]
    out["ended track"] = str(camera.stream.getVideoTracks()[0].readyState)
    del reader, _frame, end, camera, channel, pump
    on_stop.destroy()
    del on_stop
    after = await testutil.leaks()
    return {**out, "before": before, "after": after}


def test_frame_port_gives_python_in_a_worker_the_same_frames(camera_page: Pyodide) -> None:
    """Through js/frames.js's pump and a MessageChannel (as Python in a Web Worker gets them): VideoFrames of the
    camera's size (no pixel copied on the page's thread), each closed when the next is asked for; Python's stop
    reaches the page, which stops the camera; the page's own end reaches Python with its reason; nothing is left
    behind."""
    got = _through_a_frame_port(camera_page)
    assert [s[:3] for s in got["seen"]] == [[i, 640, 480] for i in range(5)]
    assert {s[4] for s in got["seen"]} == {"[object VideoFrame]"}
    assert got["closed frames"] == [0] * 5
    assert got["stops"] == ["closed"]
    assert got["track"] == "ended"
    assert got["ended"] == [2, "camera ended", ["closed", "camera ended"]]
    assert got["ended track"] == "ended"
    assert got["after"] == got["before"]
