"""Browser images: encoded bytes decoded by the browser itself, pixels of ImageBitmap/<img>/<canvas>/ImageData,
and the backend ("GPU") preprocessing path with ``tf.browser.fromPixels``.

Browser-only (touches ``js``). Encoded images (Python bytes, File, Blob, ArrayBuffer,
typed arrays) are decoded by the browser's own decoders with ``createImageBitmap``
(:data:`BITMAP_OPTIONS`), in the page or the worker Python runs in: EXIF orientation
applied, colour converted to sRGB, alpha as in an ``<img>``. Their pixels are then read
exactly as those of any browser image (:func:`read_pixels`, the way
``tf.browser.fromPixels`` reads an ``<img>``), or the bitmap goes to the backend path,
so one image gives the same pixels however it arrives. Formats the browser cannot
decode (TIFF) go to Pillow (:mod:`pyapp.images`), within :mod:`pyapp.decoders`' rules.

Example (in the browser)::

    import js
    from pyapp import browser
    blob = await (await js.fetch(js.URL.new("vendor/samples/chelsea.png", js.PYAPP_ROOT))).blob()
    decoded = await browser.decode(blob)                   # a File or Blob, bytes, an ArrayBuffer
    print(decoded.decoder, decoded.format, decoded.pixels.shape)  # browser PNG (300, 451, 3)
    bitmap = await js.createImageBitmap(blob)
    x = browser.preprocess_on_backend(bitmap, 224)         # tf.Tensor (1, 224, 224, 3)
    print(list(x.shape))
    x.dispose()
    bitmap.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pyapp._js import IN_BROWSER, JsException, JsProxy, error_message, js, js_errors, js_object, pyodide_js, tf
from pyapp.decoders import Decoded, Decoder
from pyapp.errors import InvalidImage, InvalidInput
from pyapp.images import as_decoded, decode_image
from pyapp.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocess, center_square, resolve
from pyapp.sniff import MAX_PIXELS, probe
from pyapp.video import open_camera as open_camera  # the camera is one more browser image source

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
#: Formats every browser decodes itself; the rest (TIFF) go to Pillow.
BROWSER_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "ICO")
#: createImageBitmap options that give, pixel for pixel, what ``tf.browser.fromPixels`` gives for
#: the same file in an ``<img>`` (measured in Chromium over every colour at every alpha, PNG and
#: WebP): EXIF orientation applied, colour converted to sRGB, and alpha premultiplied by the
#: decoder as for an ``<img>``, so that reading the pixels back un-premultiplies them the same way.
#: (Un-premultiplied bitmaps give the same PNG pixels, but lossy WebP ones up to 2 levels off.)
BITMAP_OPTIONS = {
    "imageOrientation": "from-image",
    "premultiplyAlpha": "premultiply",
    "colorSpaceConversion": "default",
}
#: Pixels read from the browser at a time: a 12 MP photo costs its 3-byte RGB array, plus 4 MB.
_STRIP_PIXELS = 1 << 20


def js_class(obj: Any) -> str | None:
    """The JS class name of a JsProxy (``"Blob"``, ``"ImageBitmap"``...), or None for Python objects."""
    if not IN_BROWSER:  # CPython: no JS objects exist
        return None
    if not isinstance(obj, JsProxy):
        return None
    tag = str(js.Object.prototype.toString.call(obj))  # "[object Blob]"
    return tag[8:-1]


def is_pixel_source(obj: Any) -> bool:
    """True for browser objects holding decoded pixels (the backend path can read them directly)."""
    return js_class(obj) in PIXEL_SOURCES


def is_encoded(obj: Any) -> bool:
    """True for encoded image bytes: Python bytes or a JS File/Blob/ArrayBuffer/typed array."""
    return isinstance(obj, (bytes, bytearray, memoryview)) or js_class(obj) in BYTE_SOURCES


def can_decode() -> bool:
    """True where the browser's decoders can be used (``createImageBitmap`` and ``OffscreenCanvas``)."""
    if not IN_BROWSER:  # CPython: no browser
        return False
    return hasattr(js, "createImageBitmap") and hasattr(js, "OffscreenCanvas")


async def ensure_pillow() -> None:
    """Make Pillow importable, loading it into Pyodide on first need.

    The app starts without Pillow (the browser decodes every format it shows; Pillow is
    only for TIFF and PIL images), which saves its download and start-up on every first
    visit. On the host, or where Pillow is installed, this does nothing.

    Example (in the browser)::

        await pyapp.browser.ensure_pillow()
        from PIL import Image
    """
    try:
        import PIL
    except ImportError:
        pass
    else:
        return
    if not IN_BROWSER:
        raise InvalidImage("this image needs Pillow (pip install Pillow) and it is not installed")
    try:
        await pyodide_js.loadPackage("pillow")
        import PIL  # noqa: F401
    except Exception as exc:  # a failed download (offline, blocked): the image fails, nothing else does
        raise InvalidImage(
            "this image needs Pillow, which could not be loaded (it is downloaded on first need, and kept for "
            f"offline use from then on): {exc}"
        ) from None


async def to_bytes(obj: Any) -> bytes:
    """Encoded bytes of a JS File/Blob/ArrayBuffer/typed array."""

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
    """RGB uint8 (H, W, 3) pixels of a browser image object, as ``tf.browser.fromPixels`` reads them.

    Drawn on a 2D canvas and read back with ``getImageData`` (un-premultiplied; alpha
    dropped), a strip of rows at a time, so that Python's heap holds only the RGB result.
    """

    kind = js_class(obj)
    if kind not in PIXEL_SOURCES:
        raise InvalidInput(f"not a browser image object: {kind}")
    width, height = _dimensions(obj, kind)
    limit = max_pixels or MAX_PIXELS
    if width <= 0 or height <= 0:
        raise InvalidImage(f"empty {kind} ({width}x{height})")
    if width * height > limit:
        raise InvalidImage(f"image too large: {width}x{height} exceeds the {limit} pixel limit")
    rgb = np.empty((height, width, 3), np.uint8)
    rows = max(1, _STRIP_PIXELS // width)
    strip = np.empty((min(rows, height), width, 4), np.uint8)
    with js_errors(f"reading pixels of {kind}"):
        if kind == "ImageData":
            whole = obj.data
            ctx = None
        else:
            canvas = js.OffscreenCanvas.new(width, height)
            ctx = canvas.getContext("2d", js_object({"willReadFrequently": True}))
            ctx.drawImage(obj, 0, 0, width, height)
        for top in range(0, height, rows):
            n = min(rows, height - top)
            if ctx is None:
                data = whole.subarray(top * width * 4, (top + n) * width * 4)
            else:
                data = ctx.getImageData(0, top, width, n).data
            data.assign_to(strip[:n])
            rgb[top : top + n] = strip[:n, :, :3]
    return rgb


@dataclass
class Opened:
    """An image ready for either path: a browser pixel source, or pixels decoded in Python.

    ``close()`` releases a bitmap decoded here (not a caller's own objects).
    """

    decoder: Decoder
    format: str | None
    source: Any = None  # a PIXEL_SOURCES object, for read_pixels or the backend path
    decoded: Decoded | None = None
    owned: bool = False

    def pixels(self) -> np.ndarray:
        """The RGB (H, W, 3) pixels (read from the browser source, or decoded already)."""
        if self.decoded is not None:
            return self.decoded.pixels
        return read_pixels(self.source)

    def close(self) -> None:
        if self.owned and self.source is not None:
            self.source.close()
        self.source = None

    async def __aenter__(self) -> Opened:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


async def open_image(image: Any, max_pixels: int = MAX_PIXELS) -> Opened:
    """Any supported image, opened for reading: encoded bytes decoded by the browser where it can.

    Browser image objects are used as they are; encoded images in :data:`BROWSER_FORMATS`
    become an ImageBitmap (closed by :meth:`Opened.close`); everything else (numpy
    arrays, PIL images, TIFF bytes, any bytes where there is no browser) is decoded in
    Python by :func:`pyapp.images.as_decoded`.
    """
    kind = js_class(image)
    if kind in PIXEL_SOURCES:
        return Opened("browser", None, source=image)
    if kind is not None and kind not in BYTE_SOURCES:
        raise InvalidInput(f"unsupported image object: JS {kind}")
    if not is_encoded(image):
        decoded = as_decoded(image)
        return Opened(decoded.decoder, decoded.format, decoded=decoded)
    data = await to_bytes(image) if kind is not None else bytes(image)
    head = probe(data, max_pixels)  # empty, text, too large: refused before any decoder sees the bytes
    if head.format not in BROWSER_FORMATS or not can_decode():
        await ensure_pillow()
        decoded = decode_image(data, max_pixels)
        return Opened(decoded.decoder, decoded.format, decoded=decoded)
    bitmap = await _create_bitmap(data if kind is None else image, head.format)
    width, height = int(bitmap.width), int(bitmap.height)
    if width * height > max_pixels:  # an ICO whose entries understate their size, say
        bitmap.close()
        raise InvalidImage(f"image too large: {width}x{height} exceeds the {max_pixels} pixel limit")
    return Opened("browser", head.format, source=bitmap, owned=True)


async def _create_bitmap(encoded: Any, fmt: str) -> Any:
    """An ImageBitmap of Python bytes or a JS byte source (handed over without a copy through Python)."""

    if isinstance(encoded, bytes):
        array = js.Uint8Array.new(len(encoded))
        array.assign(encoded)
        encoded = array
    blob = encoded if js_class(encoded) in ("Blob", "File") else js.Blob.new([encoded])
    try:
        return await js.createImageBitmap(blob, js_object(BITMAP_OPTIONS))
    except JsException as exc:
        why = error_message(exc)
        raise InvalidImage(f"corrupt or truncated image: the browser could not decode this {fmt} ({why})") from None


async def decode(image: Any, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Any supported image as :class:`~pyapp.decoders.Decoded` RGB pixels, saying which decoder ran."""
    async with await open_image(image, max_pixels) as opened:
        if opened.decoded is not None:
            return opened.decoded
        return Decoded(opened.pixels(), opened.decoder, opened.format)


async def to_array(image: Any) -> np.ndarray:
    """Any supported image (Python or browser object) as an (H, W, 3) array."""
    return (await decode(image)).pixels


def preprocess_on_backend(image: Any, size: int, *, options: Preprocess | None = None, **old: Any) -> Any:
    """A browser image object (or decoded uint8 pixels) -> a (1, size, size, 3) float32 tf.Tensor, on the backend.

    The same options (a :class:`~pyapp.preprocessing.Preprocess`) and arithmetic as
    :func:`pyapp.images.preprocess`: crop, resize, then normalise, so the normalisation touches
    only the small result. The caller owns (and disposes) the tensor. The old keywords still
    work, deprecated, as there.
    """
    from pyapp.tensors import tidy, to_tensor

    opts = resolve(options, old, "pyapp.browser.preprocess_on_backend")
    kind = js_class(image)
    pixels = None
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        pixels, kind = image, "array"  # decoded by Pillow (a TIFF, say): uploaded as fromPixels would give it
        height, width = image.shape[:2]
    elif kind in PIXEL_SOURCES:
        width, height = _dimensions(image, kind)
    else:
        raise InvalidInput(f"the backend path needs a browser image object, not {kind or type(image).__name__}")
    if width <= 0 or height <= 0:
        raise InvalidImage(f"empty {kind} ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise InvalidImage(f"image too large: {width}x{height} exceeds the {MAX_PIXELS} pixel limit")
    tfm = tf()
    try:
        with tidy("pyapp.preprocess") as scope:
            if pixels is not None:
                x = to_tensor(pixels)
            else:
                x = tfm.browser.fromPixels(_as_uploaded(image, kind, width, height, str(tfm.getBackend())), 3)
            if opts.crop:
                top, left, side = center_square(height, width)
                x = x.slice([top, left, 0], [side, side, 3])
            x = x.toFloat()
            # Resize first: both steps are linear, and a 1 MP photo is then normalised at 224x224,
            # not at full size (measured: benchmarks/run.py --suite preprocess).
            if tuple(int(d) for d in x.shape[:2]) != (size, size):
                if opts.resize == "bilinear":
                    x = tfm.image.resizeBilinear(x, [size, size], opts.align_corners)
                else:
                    x = tfm.image.resizeNearestNeighbor(x, [size, size], opts.align_corners)
            if opts.normalize == "unit":
                x = x.div(255)
            elif opts.normalize == "symmetric":
                x = x.div(127.5).sub(1)
            elif opts.normalize == "imagenet":
                mean = tfm.tensor1d(list(IMAGENET_MEAN))
                std = tfm.tensor1d(list(IMAGENET_STD))
                x = x.div(255).sub(mean).div(std)
            return scope.keep(x.expandDims(0))
    except JsException as exc:
        raise InvalidImage(f"the browser could not read this {kind}: {error_message(exc)}") from None


def _as_uploaded(image: Any, kind: str, width: int, height: int, backend: str) -> Any:
    """What to hand ``fromPixels`` so that an ImageBitmap gives an ``<img>``'s pixels on every backend.

    WebGL and WebGPU upload an ImageBitmap as it is stored, and a premultiplied one (the
    default, and :data:`BITMAP_OPTIONS`) comes out darkened by its alpha. Drawn on a canvas
    first, as fromPixels draws an ``<img>``, it uploads un-premultiplied; a canvas kept in
    memory, as :func:`read_pixels`' is, so the backend path gets the numpy path's pixels (a GPU
    canvas redraws colour-managed bitmaps a level apart). On cpu and wasm fromPixels reads
    every source through such a canvas already. A VideoFrame (a camera's, from ``js/frames.js``)
    is drawn on one on every backend: fromPixels does not take it.
    """
    if kind != "VideoFrame" and (kind != "ImageBitmap" or backend not in ("webgl", "webgpu")):
        return image

    canvas = js.OffscreenCanvas.new(width, height)
    canvas.getContext("2d", js_object({"willReadFrequently": True})).drawImage(image, 0, 0)
    return canvas
