"""Images in, model-ready NHWC float32 out: safe decoding with Pillow, resizing in numpy.

Pure Python + numpy + Pillow; the same code runs on the host and in Pyodide.
Resizing matches ``tf.image.resizeBilinear`` / ``resizeNearestNeighbor``
(``align_corners`` both ways, ``half_pixel_centers``) so that results agree
with TF.js pipelines such as NSFWJS's.

Example::

    >>> import numpy as np
    >>> img = np.zeros((10, 20, 3), np.uint8)
    >>> preprocess(img, size=4).shape
    (1, 4, 4, 3)
"""

from __future__ import annotations

import io
from typing import Any, Literal

import numpy as np

from pyapp.errors import InvalidImage, InvalidInput
from pyapp.icc import to_srgb as icc_to_srgb

#: Decompression-bomb guard: images with more pixels than this are refused.
MAX_PIXELS = 40_000_000

Normalize = Literal["unit", "symmetric", "none", "imagenet"]
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff(data: bytes) -> str | None:
    r"""The image format named by the first bytes, if any (for clearer errors).

    >>> sniff(b"\x89PNG\r\n\x1a\n...."), sniff(b"RIFF0000WEBPVP8 "), sniff(b"hello")
    ('PNG', 'WEBP', None)
    """
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes into an RGB ``uint8`` array of shape (H, W, 3).

    EXIF orientation and embedded ICC profiles are applied (as browsers do);
    any mode (CMYK, L, LA, P, RGBA, 16-bit) becomes RGB; transparent pixels
    are composited on white; for animations the first frame is used.
    Raises :class:`InvalidImage` naming the cause.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    raw = bytes(data)
    if not raw:
        raise InvalidImage("empty input (0 bytes)")
    head = raw[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<svg", b"<?xml")):
        raise InvalidImage("not a raster image: looks like HTML/SVG/XML text")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise InvalidImage(f"image too large: {width}x{height} exceeds the {max_pixels} pixel limit")
            img.seek(0)
            # Only RGB data carries an RGB profile we can apply; others are left as decoded.
            icc = img.info.get("icc_profile") if img.mode in ("RGB", "RGBA", "RGBX", "P", "PA") else None
            oriented = ImageOps.exif_transpose(img)
            rgb = to_rgb(oriented)
    except InvalidImage:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image too large (decompression bomb guard): {exc}") from None
    except UnidentifiedImageError:
        kind = sniff(raw)
        if kind is not None:
            raise InvalidImage(f"corrupt {kind} file: its header could not be parsed") from None
        raise InvalidImage("not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"corrupt or truncated image: {exc}") from None
    if icc:
        # Browsers show (and NSFWJS classifies) such photos converted to sRGB.
        converted = icc_to_srgb(rgb, icc)
        if converted is not None:
            return converted
    return rgb


def to_rgb(img: Any) -> np.ndarray:
    """A PIL image in any mode as an RGB uint8 (H, W, 3) array."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale to 8 bits instead of clipping (PIL's convert clips).
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(np.rint(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite on white: transparent pixels have undefined colour otherwise.
        from PIL import Image

        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def as_array(image: Any) -> np.ndarray:
    """Bytes, a PIL image or a numpy array as an (H, W, 3) array (uint8 or float)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode(image)
    if isinstance(image, np.ndarray):
        return _check_array(image)
    if hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "convert"):
        return to_rgb(image)
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
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
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


def preprocess(
    image: Any,
    size: int,
    *,
    resize: Literal["bilinear", "nearest"] = "bilinear",
    align_corners: bool = True,
    normalize_mode: Normalize = "unit",
    crop: bool = False,
) -> np.ndarray:
    """Any supported image -> a (1, size, size, 3) float32 batch ready for the model.

    Resizes, then normalises: both are linear, so this equals NSFWJS's order
    (normalise, then resize) up to float rounding, and only the small result is
    ever converted to float. Float arrays are taken as already normalised.
    """
    arr = as_array(image)
    from_uint8 = arr.dtype == np.uint8
    if crop:
        arr = center_crop(arr)
    if arr.shape[:2] != (size, size):
        fn = resize_bilinear if resize == "bilinear" else resize_nearest
        arr = fn(arr, (size, size), align_corners=align_corners)
    x = normalize(arr, normalize_mode, from_uint8=from_uint8)
    return np.ascontiguousarray(x[None], dtype=np.float32)
