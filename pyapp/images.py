"""Images in, model-ready NHWC float32 out: safe decoding with Pillow, resizing in numpy.

Pure Python + numpy + Pillow; the same code runs on the host and in Pyodide. In the
browser, encoded images are decoded by the browser itself (:mod:`pyapp.browser`);
Pillow decodes here on the host, for formats the browser cannot decode (TIFF), and
PIL images given directly, following the browser's rules: EXIF orientation applied,
colour converted to sRGB, alpha dropped as ``tf.browser.fromPixels`` drops it.
Resizing matches ``tf.image.resizeBilinear`` / ``resizeNearestNeighbor``
(``align_corners`` both ways, ``half_pixel_centers``) so that results agree
with TF.js pipelines such as NSFWJS's.

Example::

    >>> import numpy as np
    >>> img = np.zeros((10, 20, 3), np.uint8)
    >>> preprocess(img, size=4).shape
    (1, 4, 4, 3)
    >>> float(preprocess(img, 4, options=Preprocess(normalize="symmetric", crop=True)).min())
    -1.0
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from pyapp import icc
from pyapp.decoders import Decoded, pillow_formats, pillow_libraries, refusal
from pyapp.errors import InvalidImage, InvalidInput
from pyapp.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Normalize, Preprocess, center_square, resolve
from pyapp.sniff import MAX_PIXELS, probe, sniff

__all__ = [
    "MAX_PIXELS",
    "Decoded",
    "Normalize",
    "Preprocess",
    "as_array",
    "decode",
    "decode_image",
    "preprocess",
    "sniff",
    "to_rgb",
]

_IMAGENET_MEAN = np.array(IMAGENET_MEAN, np.float32)
_IMAGENET_STD = np.array(IMAGENET_STD, np.float32)
#: Pixels handled at a time where whole-image integer temporaries would cost 16+ bytes a pixel.
_CHUNK_PIXELS = 1 << 16
_EXIF_ORIENTATION = 0x0112
#: PIL modes whose pixels are RGB data that an RGB ICC profile describes.
_RGB_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA")


def decode(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes with Pillow into an RGB ``uint8`` array of shape (H, W, 3).

    See :func:`decode_image`, which also says what was done. Raises :class:`InvalidImage`
    naming the cause.
    """
    return decode_image(data, max_pixels).pixels


def decode_image(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Decode encoded image bytes with Pillow, as a browser would show them.

    EXIF orientation and embedded ICC profiles are applied (a profile that cannot be
    used is ignored, with a note); any mode (CMYK, L, LA, P, RGBA, 16-bit) becomes RGB;
    alpha is dropped as :func:`flatten_alpha` says; for animations the first frame is
    used. Formats whose decoder has a known vulnerability here are refused
    (:mod:`pyapp.decoders`). Raises :class:`InvalidImage` naming the cause.

    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("RGBA", (2, 1), (255, 0, 0, 0)).save(buf, "PNG")  # fully transparent red
    >>> d = decode_image(buf.getvalue())
    >>> d.decoder, d.format, d.pixels.tolist()
    ('pillow', 'PNG', [[[0, 0, 0], [0, 0, 0]]])
    """
    raw = bytes(data)
    head = probe(raw, max_pixels)  # empty, text, too large: refused before any decoder runs
    if head.format == "WEBP" and (why := refusal("WEBP")) is not None:
        raise InvalidImage(why)  # opening a WebP already runs libwebp: refuse before opening
    rgb, fmt, profile, orientation = _pillow_decode(raw, head.format, max_pixels)
    rgb = orient(rgb, orientation)
    notes: tuple[str, ...] = ()
    if profile:
        # Browsers show (and NSFWJS classifies) such photos converted to sRGB.
        rgb, note = icc.convert(rgb, profile)
        notes = (note,) if note else ()
    return Decoded(np.ascontiguousarray(rgb), "pillow", fmt, notes)


def _pillow_decode(raw: bytes, sniffed: str | None, max_pixels: int) -> tuple[np.ndarray, str, bytes | None, object]:
    """RGB pixels, format, ICC profile and EXIF orientation; the PIL image is freed on return."""
    from PIL import Image, UnidentifiedImageError

    Image.init()
    formats = [f for f in pillow_formats() if f in Image.OPEN]  # MPO opens through JPEG's plugin
    try:
        with Image.open(io.BytesIO(raw), formats=formats) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise InvalidImage(f"image too large: {width}x{height} exceeds the {max_pixels} pixel limit")
            why = refusal(img.format, libraries=pillow_libraries(img))
            if why is not None:
                raise InvalidImage(why)
            profile = img.info.get("icc_profile") if img.mode in _RGB_MODES else None
            rgb = to_rgb(img)
            return rgb, str(img.format), profile, img.getexif().get(_EXIF_ORIENTATION, 1)
    except InvalidImage:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image too large (decompression bomb guard): {exc}") from None
    except UnidentifiedImageError:
        if sniffed is not None:
            raise InvalidImage(f"corrupt {sniffed} file: its header could not be parsed") from None
        raise InvalidImage("not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"corrupt or truncated image: {exc}") from None


def orient(rgb: np.ndarray, orientation: object) -> np.ndarray:
    """The (H, W, C) array as EXIF ``orientation`` (1-8) says to display it: a view, nothing copied.

    Values outside 1-8 are ignored, as browsers ignore them.

    >>> a = np.arange(6).reshape(2, 3, 1)
    >>> orient(a, 6)[..., 0].tolist()  # rotate 90 degrees clockwise
    [[3, 0], [4, 1], [5, 2]]
    """
    if orientation == 2:
        return rgb[:, ::-1]
    if orientation == 3:
        return rgb[::-1, ::-1]
    if orientation == 4:
        return rgb[::-1]
    if orientation == 5:
        return rgb.transpose(1, 0, 2)
    if orientation == 6:
        return rgb.transpose(1, 0, 2)[:, ::-1]
    if orientation == 7:
        return rgb.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:
        return rgb.transpose(1, 0, 2)[::-1]
    return rgb


def flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """RGB of straight-alpha RGBA pixels, as ``tf.browser.fromPixels`` reads them from a browser image.

    The browser keeps a decoded image premultiplied (``round(c * a / 255)``) and
    returns it un-premultiplied, then fromPixels drops alpha: a semi-transparent
    pixel keeps its colour up to that rounding, a fully transparent one is black.
    The browser's own rounding differs by 1 at exact halves (about 2% of
    semi-transparent values); opaque and fully transparent pixels are exact.

    >>> flatten_alpha(np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [73, 182, 36, 10]]], np.uint8)).tolist()
    [[[200, 100, 50], [0, 0, 0], [76, 178, 26]]]
    """
    height, width = rgba.shape[:2]
    out = np.ascontiguousarray(rgba[..., :3])
    rows = max(1, _CHUNK_PIXELS // max(1, width))
    for top in range(0, height, rows):
        alpha = rgba[top : top + rows, :, 3:4]
        if alpha.min() == 255:
            continue
        a = alpha.astype(np.uint32)
        # Premultiply as Chromium's decoders do (image_frame.h), then un-premultiply, rounding half to even.
        premultiplied = (out[top : top + rows].astype(np.uint32) * a * 257 + 257 * 128) >> 16
        whole, rest = np.divmod(premultiplied * 255, np.maximum(a, 1))
        twice = 2 * rest
        whole += (twice > a) | ((twice == a) & (whole % 2 == 1))
        out[top : top + rows] = np.where(a == 0, 0, np.minimum(whole, 255))
    return out


def to_rgb(img: Any) -> np.ndarray:
    """A PIL image in any mode as an RGB uint8 (H, W, 3) array (no orientation or profile applied).

    16-bit images keep their high byte, as browsers decode them (a 16-bit image whose
    values are all below 256 is nearly black, not an 8-bit image); mode ``I`` is taken
    as 16-bit, as Pillow opens 16-bit PNGs. Alpha is dropped by :func:`flatten_alpha`.
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(img)
        if grey.dtype != np.uint16:
            grey = np.clip(grey, 0, 65535)
        high = (grey >> 8).astype(np.uint8)
        return np.repeat(high[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        return flatten_alpha(np.asarray(rgba))
    return np.asarray(img if mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def from_pil(img: Any) -> Decoded:
    """A PIL image given directly: its RGB pixels, converted to sRGB when it carries an ICC profile.

    EXIF orientation is not applied: an image in memory may have been rotated already.
    """
    rgb = to_rgb(img)
    notes: tuple[str, ...] = ()
    profile = img.info.get("icc_profile") if img.mode in _RGB_MODES else None
    if profile:
        rgb, note = icc.convert(rgb, profile)
        notes = (note,) if note else ()
    return Decoded(rgb, "pillow", getattr(img, "format", None), notes)


def as_array(image: Any) -> np.ndarray:
    """Bytes, a PIL image or a numpy array as an (H, W, 3) array (uint8 or float)."""
    return as_decoded(image).pixels


def as_decoded(image: Any) -> Decoded:
    """Bytes (decoded by Pillow), a PIL image or a numpy array as :class:`Decoded` pixels."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(image)
    if isinstance(image, np.ndarray):
        return Decoded(_check_array(image), "array")
    if hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "convert"):
        return from_pil(image)
    raise InvalidInput(f"unsupported image type {type(image).__name__}; pass bytes, a PIL image or an HWC array")


def _check_array(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise InvalidImage(f"expected an (H, W, C) array, got shape {arr.shape}")
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise InvalidImage(f"empty image of shape {arr.shape}")
    if c == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif c == 4:
        arr = arr[..., :3]
    elif c != 3:
        raise InvalidImage(f"expected 1, 3 or 4 channels, got {c}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InvalidImage("float image contains NaN or infinity")
        return arr.astype(np.float32, copy=False)
    if arr.dtype != np.uint8:
        raise InvalidImage(f"integer images must be uint8, got {arr.dtype}")
    return arr


def _source_coords(out_size: int, in_size: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    # The same mapping as TF's resize kernels (tfjs-backend-cpu resize_bilinear).
    scale = (in_size - 1) / (out_size - 1) if align_corners and out_size > 1 else in_size / out_size
    dst = np.arange(out_size, dtype=np.float64)
    if half_pixel:
        return (dst + 0.5) * scale - 0.5
    return dst * scale


def resize_bilinear(
    image: np.ndarray, size: tuple[int, int], align_corners: bool = False, half_pixel_centers: bool = False
) -> np.ndarray:
    """Bilinear resize of an (H, W, C) array to ``size`` (h, w), as ``tf.image.resizeBilinear``.

    >>> a = np.arange(4, dtype=np.float32).reshape(2, 2, 1)
    >>> resize_bilinear(a, (3, 3), align_corners=True)[..., 0].tolist()
    [[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]
    """
    if align_corners and half_pixel_centers:
        raise InvalidInput("align_corners and half_pixel_centers cannot both be true")
    in_h, in_w = image.shape[:2]
    out_h, out_w = size
    ys = _source_coords(out_h, in_h, align_corners, half_pixel_centers)
    xs = _source_coords(out_w, in_w, align_corners, half_pixel_centers)
    ys = np.clip(ys, 0, None) if half_pixel_centers else ys
    xs = np.clip(xs, 0, None) if half_pixel_centers else xs
    y0 = np.clip(np.floor(ys).astype(np.int64), 0, in_h - 1)
    x0 = np.clip(np.floor(xs).astype(np.int64), 0, in_w - 1)
    y1 = np.minimum(y0 + 1, in_h - 1)
    x1 = np.minimum(x0 + 1, in_w - 1)
    wy = (ys - y0).astype(np.float32)[:, None, None]
    wx = (xs - x0).astype(np.float32)[None, :, None]
    # Gather the needed rows, then columns, in the source dtype, and only then go to float32:
    # a large uint8 photo is never copied whole (a 40 MP image would take 480 MB as float32).
    top = image[y0]
    bottom = image[y1]
    tl, tr = top[:, x0].astype(np.float32), top[:, x1].astype(np.float32)
    bl, br = bottom[:, x0].astype(np.float32), bottom[:, x1].astype(np.float32)
    top_row = tl + (tr - tl) * wx
    bottom_row = bl + (br - bl) * wx
    out: np.ndarray = top_row + (bottom_row - top_row) * wy
    return out


def resize_nearest(
    image: np.ndarray, size: tuple[int, int], align_corners: bool = False, half_pixel_centers: bool = False
) -> np.ndarray:
    """Nearest-neighbour resize, as ``tf.image.resizeNearestNeighbor``."""
    in_h, in_w = image.shape[:2]
    out_h, out_w = size

    def index(out_size: int, in_size: int) -> np.ndarray:
        coords = _source_coords(out_size, in_size, align_corners, half_pixel_centers)
        if half_pixel_centers:
            coords = coords + 0.5
        # JS Math.round rounds halves up; np.round would round them to even.
        idx = np.floor(coords + 0.5) if align_corners else np.floor(coords)
        return np.clip(idx.astype(np.int64), 0, in_size - 1)

    out: np.ndarray = image[index(out_h, in_h)][:, index(out_w, in_w)]
    return out


def center_crop(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an (H, W, C) array."""
    top, left, side = center_square(*image.shape[:2])
    return image[top : top + side, left : left + side]


def normalize(pixels: np.ndarray, mode: Normalize, from_uint8: bool = True) -> np.ndarray:
    """Scale 0..255 pixel values: ``unit`` 0..1, ``symmetric`` -1..1, ``imagenet`` mean/std, ``none``."""
    x = pixels.astype(np.float32, copy=False)
    if not from_uint8:
        return x
    if mode == "unit":
        return x / np.float32(255.0)
    if mode == "symmetric":
        return x / np.float32(127.5) - np.float32(1.0)
    if mode == "imagenet":
        out: np.ndarray = (x / np.float32(255.0) - _IMAGENET_MEAN) / _IMAGENET_STD
        return out
    if mode == "none":
        return x
    raise InvalidInput(f"unknown normalisation {mode!r}")


def preprocess(image: Any, size: int, *, options: Preprocess | None = None, **old: Any) -> np.ndarray:
    """Any supported image -> a (1, size, size, 3) float32 batch ready for the model, as ``options``
    (a :class:`~pyapp.preprocessing.Preprocess`; its defaults when None) say.

    Crops, resizes, then normalises: both are linear, so this equals NSFWJS's order
    (normalise, then resize) up to float rounding, and only the small result is
    ever converted to float. Float arrays are taken as already normalised. The keywords
    ``resize``, ``align_corners``, ``normalize_mode`` and ``crop`` still work, deprecated.

    >>> preprocess(np.full((2, 2, 3), 255, np.uint8), 2, options=Preprocess(normalize="none")).max()
    np.float32(255.0)
    """
    opts = resolve(options, old, "pyapp.images.preprocess")
    arr = as_array(image)
    from_uint8 = arr.dtype == np.uint8
    if opts.crop:
        arr = center_crop(arr)
    if arr.shape[:2] != (size, size):
        fn = resize_bilinear if opts.resize == "bilinear" else resize_nearest
        arr = fn(arr, (size, size), align_corners=opts.align_corners)
    x = normalize(arr, opts.normalize, from_uint8=from_uint8)
    return np.ascontiguousarray(x[None], dtype=np.float32)
