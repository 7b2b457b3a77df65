// The page's half of a frame port: Python in a Web Worker has no <video> and no
// requestVideoFrameCallback, so the page takes the frames it asks for and posts them over a
// MessageChannel (pyapp.video reads the other end). Only what the browser demands is here: one
// frame per request (newest only, nothing queued; the browser's `presentedFrames` lets Python count
// the drops), and why frames stop. The protocol:
//   Python -> page  {type: "next"}                   take the next frame shown
//                   {type: "stop", release: bool}    Python has stopped; stop the camera if asked
//   page -> Python  {type: "frame", image: VideoFrame or ImageBitmap (transferred), presented, time,
//                    width, height}
//                   {type: "end", reason}            hidden, camera ended, video ended, video paused, closed

/**
 * Pump the frames of a playing `video` into `port`, one per request.
 * @param {HTMLVideoElement} video
 * @param {MessagePort} port
 * @param {{onStop?: (reason: string) => void}} options `onStop` runs once, when Python has stopped, with
 *   why the frames ended ("closed" when Python stopped them)
 * @returns {(reason?: string) => void} ends the frames from the page's side (Python then stops)
 */
export function pumpFrames(video, port, { onStop } = {}) {
  let handle = null;
  let ended = null; // why the frames ended, once they have
  let stopped = false;
  const tracks = () => (video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks() : []);
  const why = () => {
    if (document.visibilityState === "hidden") return "hidden";
    const all = tracks();
    if (all.length && !all.some((t) => t.readyState === "live")) return "camera ended";
    if (video.ended) return "video ended";
    if (video.paused) return "video paused";
    return null;
  };
  const end = (reason) => {
    if (ended) return;
    ended = reason;
    if (handle !== null) video.cancelVideoFrameCallback(handle);
    handle = null;
    port.postMessage({ type: "end", reason });
  };
  const check = () => {
    const reason = why();
    if (reason) end(reason);
  };
  const watched = [[document, "visibilitychange"], [video, "ended"], [video, "pause"], ...tracks().map((t) => [t, "ended"])];
  for (const [target, type] of watched) target.addEventListener(type, check);

  // One callback always asked for while frames run, so that the newest frame shown is known and sent the
  // moment Python asks; asking only then would wait for the next frame to be shown.
  let latest = null; // the newest frame shown and not sent
  let wanted = false; // Python has asked and not been sent a frame
  const arm = () => {
    if (handle === null && !ended) handle = video.requestVideoFrameCallback(onFrame);
  };
  const send = async () => {
    const meta = latest;
    latest = null;
    wanted = false;
    let image;
    try {
      image = await grab(video);
    } catch (err) {
      end(`video unreadable: ${err.message ?? err}`);
      return;
    }
    if (ended) {
      image.close();
      return;
    }
    const shown = meta.captureTime ?? meta.presentationTime;
    const frame = { type: "frame", image, presented: meta.presentedFrames, time: performance.timeOrigin + shown };
    const [width, height] = "displayWidth" in image ? [image.displayWidth, image.displayHeight] : [image.width, image.height];
    port.postMessage({ ...frame, width, height }, [image]);
  };
  const onFrame = (_now, meta) => {
    handle = null;
    if (ended) return;
    latest = meta;
    if (wanted) send();
    arm();
  };
  port.onmessage = ({ data }) => {
    if (data?.type === "next" && !ended) {
      const reason = why();
      if (reason) end(reason);
      else {
        wanted = true;
        if (latest) send();
        arm();
      }
    } else if (data?.type === "stop" && !stopped) {
      stopped = true;
      end("closed");
      for (const [target, type] of watched) target.removeEventListener(type, check);
      if (data.release) for (const t of tracks()) t.stop();
      port.close();
      onStop?.(ended);
    }
  };
  return (reason = "closed") => end(reason);
}

/**
 * The frame `video` shows, to transfer: a VideoFrame, which holds the browser's own frame and copies no pixels
 * on this thread (they are read in Python's worker); an ImageBitmap where there is no VideoFrame. Measured in
 * the live test (Long Animation Frames): createImageBitmap(video) held the page's thread for 51 ms at a stream's
 * start, and a CI run saw a 67 ms task there; `new VideoFrame(video)` took under 0.5 ms.
 */
async function grab(video) {
  if (typeof VideoFrame === "function") {
    try {
      return new VideoFrame(video);
    } catch {
      // An engine whose VideoFrame cannot wrap a <video> (or this one's frame): the bitmap below.
    }
  }
  return createImageBitmap(video);
}
