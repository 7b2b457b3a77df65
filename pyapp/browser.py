"""Browser image sources: File/Blob/ArrayBuffer bytes, pixels of ImageBitmap/<img>/<canvas>/ImageData,
and the backend ("GPU") preprocessing path with ``tf.browser.fromPixels``.

Browser-only (touches ``js``). The numpy path lives in :mod:`pyapp.images`;
this module hands it bytes or pixels, or skips it entirely on the backend path.

Example (in the browser)::

    import js
    from pyapp import browser
    blob = await (await js.fetch(js.URL.new("vendor/samples/chelsea.png", js.PYAPP_ROOT))).blob()
    pixels = await browser.to_array(blob)                  # a File or Blob: (H, W, 3) uint8
    bitmap = await js.createImageBitmap(blob)
    x = browser.preprocess_on_backend(bitmap, 224)         # tf.Tensor (1, 224, 224, 3)
    print(pixels.shape, list(x.shape))
    x.dispose()
    bitmap.close()
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from pyapp.errors import InvalidImage, InvalidInput
from pyapp.images import Normalize, as_array, decode

#: JS classes whose pixels the browser has already decoded.
PIXEL_SOURCES = (
    "ImageBitmap",
    "HTMLImageElement",
    "HTMLCanvasElement",
    "OffscreenCanvas",
    "ImageData",
    "HTMLVideoElement",
    "VideoFrame",
)
#: JS classes that hold encoded bytes.
BYTE_SOURCES = ("Blob", "File", "ArrayBuffer", "Uint8Array", "Uint8ClampedArray", "DataView")


def js_class(obj: Any) -> str | None:
    """The JS class name of a JsProxy (``"Blob"``, ``"ImageBitmap"``...), or None for Python objects."""
    from pyapp._js import JsProxy, js

    if not isinstance(obj, JsProxy):
        return None
    tag = str(js.Object.prototype.toString.call(obj))  # "[object Blob]"
    return tag[8:-1]


def is_pixel_source(obj: Any) -> bool:
    """True for browser objects holding decoded pixels (the backend path can read them directly)."""
    return js_class(obj) in PIXEL_SOURCES


async def to_bytes(obj: Any) -> bytes:
    """Encoded bytes of a JS File/Blob/ArrayBuffer/typed array."""
    from pyapp._js import js

    kind = js_class(obj)
    if kind in ("Blob", "File"):
        buffer = await obj.arrayBuffer()
        return bytes(js.Uint8Array.new(buffer).to_bytes())
    if kind == "ArrayBuffer":
        return bytes(js.Uint8Array.new(obj).to_bytes())
    if kind in ("Uint8Array", "Uint8ClampedArray"):
        return bytes(obj.to_bytes())
    if kind == "DataView":
        return bytes(js.Uint8Array.new(obj.buffer, obj.byteOffset, obj.byteLength).to_bytes())
    raise InvalidInput(f"not a byte source: {kind}")


def _dimensions(obj: Any, kind: str) -> tuple[int, int]:
    if kind == "HTMLImageElement":
        if not obj.complete or int(obj.naturalWidth) == 0:
            raise InvalidImage("the <img> has not loaded an image (not complete, or broken)")
        return int(obj.naturalWidth), int(obj.naturalHeight)
    if kind == "HTMLVideoElement":
        return int(obj.videoWidth), int(obj.videoHeight)
    if kind == "VideoFrame":
        return int(obj.displayWidth), int(obj.displayHeight)
    return int(obj.width), int(obj.height)


def read_pixels(obj: Any, max_pixels: int | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of a browser image object (alpha dropped, as fromPixels does)."""
    from pyapp._js import js, js_errors
    from pyapp.images import MAX_PIXELS

    kind = js_class(obj)
    if kind not in PIXEL_SOURCES:
        raise InvalidInput(f"not a browser image object: {kind}")
    width, height = _dimensions(obj, kind)
    limit = max_pixels or MAX_PIXELS
    if width <= 0 or height <= 0:
        raise InvalidImage(f"empty {kind} ({width}x{height})")
    if width * height > limit:
        raise InvalidImage(f"image too large: {width}x{height} exceeds the {limit} pixel limit")
    with js_errors(f"reading pixels of {kind}"):
        if kind == "ImageData":
            data = obj.data
        else:
            canvas = js.OffscreenCanvas.new(width, height)
            ctx = canvas.getContext("2d", js.Object.fromEntries([["willReadFrequently", True]]))
            ctx.drawImage(obj, 0, 0, width, height)
            data = ctx.getImageData(0, 0, width, height).data
    rgba = np.empty((height, width, 4), np.uint8)
    data.assign_to(rgba)
    return np.ascontiguousarray(rgba[..., :3])


async def to_array(image: Any) -> np.ndarray:
    """Any supported image (Python or browser object) as an (H, W, 3) array."""
    kind = js_class(image)
    if kind is None:
        return as_array(image)
    if kind in BYTE_SOURCES:
        return decode(await to_bytes(image))
    if kind in PIXEL_SOURCES:
        return read_pixels(image)
    raise InvalidInput(f"unsupported image object: JS {kind}")


def preprocess_on_backend(
    image: Any,
    size: int,
    *,
    resize: Literal["bilinear", "nearest"] = "bilinear",
    align_corners: bool = True,
    normalize_mode: Normalize = "unit",
    crop: bool = False,
) -> Any:
    """A browser image object -> a (1, size, size, 3) float32 tf.Tensor, computed on the backend.

    The same options and arithmetic as :func:`pyapp.images.preprocess`: crop, resize, then
    normalise, so the normalisation touches only the small result. The caller owns (and
    disposes) the tensor.
    """
    from pyapp._js import JsException, error_message, tf

    kind = js_class(image)
    if kind not in PIXEL_SOURCES:
        raise InvalidInput(f"the backend path needs a browser image object, not {kind or type(image).__name__}")
    width, height = _dimensions(image, kind)
    if width <= 0 or height <= 0:
        raise InvalidImage(f"empty {kind} ({width}x{height})")
    from pyapp.images import MAX_PIXELS

    if width * height > MAX_PIXELS:
        raise InvalidImage(f"image too large: {width}x{height} exceeds the {MAX_PIXELS} pixel limit")
    tfm = tf()
    engine = tfm.engine()
    engine.startScope("pyapp.preprocess")
    result = None
    try:
        x = tfm.browser.fromPixels(image, 3)
        if crop:
            side = min(width, height)
            x = x.slice([(height - side) // 2, (width - side) // 2, 0], [side, side, 3])
        x = x.toFloat()
        # Resize first: both steps are linear, and a 1 MP photo is then normalised at 224x224,
        # not at full size (measured: benchmarks/run.py --suite preprocess).
        if tuple(int(d) for d in x.shape[:2]) != (size, size):
            if resize == "bilinear":
                x = tfm.image.resizeBilinear(x, [size, size], align_corners)
            else:
                x = tfm.image.resizeNearestNeighbor(x, [size, size], align_corners)
        if normalize_mode == "unit":
            x = x.div(255)
        elif normalize_mode == "symmetric":
            x = x.div(127.5).sub(1)
        elif normalize_mode == "imagenet":
            mean = tfm.tensor1d([0.485, 0.456, 0.406])
            std = tfm.tensor1d([0.229, 0.224, 0.225])
            x = x.div(255).sub(mean).div(std)
        result = x.expandDims(0)
        tfm.keep(result)
    except JsException as exc:
        raise InvalidImage(f"the browser could not read this {kind}: {error_message(exc)}") from None
    finally:
        engine.endScope()
    return result
