"""A corpus of malformed and unusual images, built on the host from real photos.

Each case is a file plus what decoding it must give: an RGB array close to a
reference (saved as .npy), or an ``InvalidImage`` whose message contains a cause.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from pyapp import assets


@dataclass
class Case:
    name: str
    file: str
    error: str | None = None  # substring of the InvalidImage message, or None when it must decode
    reference: str | None = None  # .npy with the expected (H, W, 3) uint8 pixels
    tolerance: float = 0.0  # allowed mean |difference| against the reference
    shape: tuple[int, int, int] | None = None


def _png(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims width x height (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    ihdr_chunk = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    idat = zlib.compress(b"\0" * 64)
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr_chunk + idat_chunk + iend


def build(dest: Path) -> list[Case]:
    dest.mkdir(parents=True, exist_ok=True)
    samples = assets.VENDOR / "samples"
    photo = Image.open(samples / "chelsea.png").convert("RGB")  # 451x300 cat
    coffee = Image.open(samples / "coffee.png").convert("RGB")
    rgb = np.asarray(photo)
    cases: list[Case] = []

    def add(name: str, data: bytes, reference: np.ndarray | None = None, **kw: object) -> None:
        (dest / name).write_bytes(data)
        ref = None
        if reference is not None:
            ref = name + ".npy"
            np.save(dest / ref, np.ascontiguousarray(reference, dtype=np.uint8))
        cases.append(Case(name=name, file=name, reference=ref, **kw))  # type: ignore[arg-type]

    png = _png(photo)
    jpeg = _save(photo, "JPEG", quality=92)
    # --- malformed
    add("empty.jpg", b"", error="empty input")
    add("truncated.png", png[: len(png) // 2], error="truncated")
    add("truncated.jpg", jpeg[: len(jpeg) // 2], error="truncated")
    add("header-only.png", png[:60], error="")
    add("bad-crc.png", png[:40] + bytes([png[40] ^ 0xFF]) + png[41:], error="corrupt")
    add("jpeg-garbage.jpg", jpeg[:200] + bytes(range(256)) * 40, error="")
    add("random.bin", np.random.default_rng(0).bytes(5000), error="not a recognised image format")
    add("page.html.jpg", b"<!DOCTYPE html><html><body><img src=x></body></html>", error="HTML")
    add("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', error="SVG")
    add("xml.png", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', error="SVG")
    add("notes.txt.png", b"just some text, not an image\n" * 10, error="not a recognised image format")
    add("bomb.png", _png_with_size(30000, 30000), error="too large")
    add("bomb-wide.png", _png_with_size(200000, 300), error="too large")
    # --- unusual but valid
    add("plain.png", png, reference=rgb, shape=rgb.shape)
    add("plain.jpg", jpeg, reference=rgb, tolerance=3.0, shape=rgb.shape)
    add("cmyk.jpg", _save(photo.convert("CMYK"), "JPEG", quality=95), reference=rgb, tolerance=6.0, shape=rgb.shape)
    grey = photo.convert("L")
    grey3 = np.repeat(np.asarray(grey)[..., None], 3, axis=2)
    add("grey.png", _png(grey), reference=grey3, shape=grey3.shape)
    g16 = Image.fromarray((np.asarray(grey).astype(np.uint16) * 257).astype(np.uint16))
    add("grey16.png", _png(g16), reference=grey3, tolerance=0.01, shape=grey3.shape)
    rgba = photo.copy()
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, : rgb.shape[1] // 2] = 0  # left half transparent -> white
    rgba.putalpha(Image.fromarray(alpha))
    on_white = rgb.copy()
    on_white[:, : rgb.shape[1] // 2] = 255
    add("rgba.png", _png(rgba), reference=on_white, shape=rgb.shape)
    la = grey.copy()
    la.putalpha(Image.fromarray(alpha))
    la_white = grey3.copy()
    la_white[:, : rgb.shape[1] // 2] = 255
    add("la.png", _png(la), reference=la_white, shape=rgb.shape)
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    add("palette.png", _png(pal), reference=np.asarray(pal.convert("RGB")), shape=rgb.shape)
    pal_t = pal.copy()
    pal_t.info["transparency"] = int(np.asarray(pal)[0, 0])
    add("palette-transparent.png", _png(pal_t, transparency=int(np.asarray(pal)[0, 0])), shape=rgb.shape)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    add(
        "exif-rotated.jpg",
        _save(photo, "JPEG", quality=95, exif=exif.tobytes()),
        reference=np.asarray(photo.transpose(Image.Transpose.ROTATE_270)),
        tolerance=3.0,
        shape=(rgb.shape[1], rgb.shape[0], 3),
    )
    exif3 = Image.Exif()
    exif3[0x0112] = 3  # upside down
    add(
        "exif-180.jpg",
        _save(photo, "JPEG", quality=95, exif=exif3.tobytes()),
        reference=np.asarray(photo.transpose(Image.Transpose.ROTATE_180)),
        tolerance=3.0,
        shape=rgb.shape,
    )
    frames = [photo, coffee.resize(photo.size), photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = np.asarray(Image.open(io.BytesIO(gif.getvalue())).convert("RGB"))
    add("animated.gif", gif.getvalue(), reference=first, shape=rgb.shape)
    apng = _save(frames[0], "PNG", save_all=True, append_images=frames[1:])
    add("animated.png", apng, reference=rgb, shape=rgb.shape)
    add(
        "one-pixel.png",
        _png(Image.new("RGB", (1, 1), (200, 10, 30))),
        reference=np.array([[[200, 10, 30]]]),
        shape=(1, 1, 3),
    )
    add("tiny-2x2.jpg", _save(photo.resize((2, 2)), "JPEG"), shape=(2, 2, 3))
    huge = photo.resize((4000, 2660))
    add("huge-10mp.jpg", _save(huge, "JPEG", quality=80), shape=(2660, 4000, 3))
    add("panorama.png", _png(photo.resize((3000, 20))), shape=(20, 3000, 3))
    add("photo.bmp", _save(photo, "BMP"), reference=rgb, shape=rgb.shape)
    add("photo.tiff", _save(photo, "TIFF"), reference=rgb, shape=rgb.shape)
    multipage = _save(photo, "TIFF", save_all=True, append_images=[coffee.resize(photo.size)])
    add("multipage.tif", multipage, reference=rgb, shape=rgb.shape)
    add("photo.webp", _save(photo, "WEBP", lossless=True), reference=rgb, shape=rgb.shape)
    rocket = Image.open(samples / "rocket.jpg")
    src = ImageCms.ImageCmsProfile(io.BytesIO(rocket.info["icc_profile"]))
    rocket_srgb = np.asarray(ImageCms.profileToProfile(rocket, src, ImageCms.createProfile("sRGB"), outputMode="RGB"))
    add(
        "adobe-rgb.jpg",
        (samples / "rocket.jpg").read_bytes(),
        reference=rocket_srgb,
        tolerance=0.5,
        shape=rocket_srgb.shape,
    )
    add("photo.ico", _save(photo.resize((64, 64)), "ICO", sizes=[(64, 64)]), shape=(64, 64, 3))
    (dest / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=1))
    return cases
