"""A camera's view made of real photos: a Y4M video that Chromium plays as its camera, for tests and benchmarks.

Chromium's fake camera (``--use-fake-device-for-media-stream``) shows a synthetic pattern; with
``--use-file-for-fake-video-capture=FILE.y4m`` it shows the file instead, looping. Scenes that
change (a cat for a second, then a rocket) let a test see labels change with the scene.

>>> import numpy as np
>>> frame = np.zeros((4, 6, 3), np.uint8)
>>> [len(plane) for plane in i420(frame)]  # Y at full size, U and V at a quarter each
[24, 6, 6]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: The photos a scene video shows, in turn (scikit-image's samples, from its pinned wheel): through the camera
#: at 640x480 the model calls the cat Neutral (0.95) and the rocket a Drawing (0.81). (At 320x240 the rocket
#: loses the detail that makes it a Drawing; matplotlib's logo is Neutral through a camera.)
SCENES = ("chelsea.png", "rocket.jpg")


def scene_images() -> list[np.ndarray]:
    """:data:`SCENES` as RGB uint8 arrays, from the built site's samples."""
    from PIL import Image

    from pyapp_build.pins import VENDOR

    images = []
    for name in SCENES:
        with Image.open(VENDOR / "samples" / name) as im:
            images.append(np.asarray(im.convert("RGB")))
    return images


def i420(rgb: np.ndarray) -> tuple[bytes, bytes, bytes]:
    """An (H, W, 3) uint8 RGB frame (H and W even) as I420's Y, U and V planes (BT.601, full range, as JPEG's).

    Chroma is the mean of each 2x2 block.
    """
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

    def plane(p: np.ndarray) -> bytes:
        return bytes(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes())

    def quarter(p: np.ndarray) -> np.ndarray:
        h, w = p.shape
        blocks: np.ndarray = p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return blocks

    return plane(y), plane(quarter(u)), plane(quarter(v))


def fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """An RGB image resized to the frame, aspect not kept: the model squeezes a frame to its square input
    anyway, so a frame made this way shows the model what the image alone would."""
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))


def write_scenes(
    out: Path,
    images: Sequence[np.ndarray],
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    seconds_each: float = 1.0,
) -> Path:
    """Write a Y4M video showing each RGB image for ``seconds_each``, in turn; returns ``out``.

    Chromium loops it as its camera at ``fps``.
    """
    if width % 2 or height % 2:
        raise ValueError(f"I420 needs an even width and height, not {width}x{height}")
    per_scene = max(1, round(fps * seconds_each))
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in images:
            planes = b"".join(i420(fit(image, width, height)))
            for _ in range(per_scene):
                f.write(b"FRAME\n")
                f.write(planes)
    return out
