"""A corpus of malformed, unusual and hostile images, built on the host from real photos and code.

Each case is a file plus what decoding it must give: an RGB array close to a
reference (saved as .npy), or an ``InvalidImage`` whose message contains a cause.
``error`` is what Pillow on the host must give, ``browser_error`` what the browser
path must give (the browser's decoders, or Pyodide's Pillow for TIFF), when they differ.
References follow the browser's rules: EXIF orientation applied, colour in sRGB,
alpha dropped after premultiplied storage (fully transparent pixels are black).
"""

from __future__ import annotations

import bz2
import io
import json
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import cve_2023_4863
import iccprofiles
import numpy as np
from PIL import Image, ImageCms, ImageOps

import pyapp_build
from pyapp.images import flatten_alpha


@dataclass
class Case:
    name: str
    file: str
    error: str | None = None  # substring of the InvalidImage message, or None when it must decode
    browser_error: str | None = None  # the same, on the browser path
    browser_reference: bool = True  # False: the browser's pixels differ from the reference (shape checked)
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
    samples = pyapp_build.VENDOR / "samples"
    photo = Image.open(samples / "chelsea.png").convert("RGB")  # 451x300 cat
    coffee = Image.open(samples / "coffee.png").convert("RGB")
    rgb = np.asarray(photo)
    cases: list[Case] = []

    same = object()

    def add(
        name: str, data: bytes, reference: np.ndarray | None = None, browser_error: object = same, **kw: object
    ) -> None:
        (dest / name).write_bytes(data)
        ref = None
        if reference is not None:
            ref = name + ".npy"
            np.save(dest / ref, np.ascontiguousarray(reference, dtype=np.uint8))
        in_browser = kw.get("error") if browser_error is same else browser_error
        cases.append(Case(name=name, file=name, reference=ref, browser_error=in_browser, **kw))  # type: ignore[arg-type]

    png = _png(photo)
    jpeg = _save(photo, "JPEG", quality=92)
    # --- malformed
    add("empty.jpg", b"", error="empty input")
    add("truncated.png", png[: len(png) // 2], error="truncated")
    add("truncated.jpg", jpeg[: len(jpeg) // 2], error="truncated")
    add("header-only.png", png[:60], error="")
    # Pillow checks chunk CRCs; browsers skip a chunk whose name is broken, as here.
    add("bad-crc.png", png[:40] + bytes([png[40] ^ 0xFF]) + png[41:], error="corrupt", browser_error=None)
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
    alpha[:, : rgb.shape[1] // 2] = 0  # left half transparent -> black, as fromPixels gives it
    rgba.putalpha(Image.fromarray(alpha))
    on_black = rgb.copy()
    on_black[:, : rgb.shape[1] // 2] = 0
    add("rgba.png", _png(rgba), reference=on_black, shape=rgb.shape)
    la = grey.copy()
    la.putalpha(Image.fromarray(alpha))
    la_black = grey3.copy()
    la_black[:, : rgb.shape[1] // 2] = 0
    add("la.png", _png(la), reference=la_black, shape=rgb.shape)
    # A photo at alpha 200: colours keep their value up to premultiplied rounding (the browser's differs
    # at exact halves only), and a logo-like ramp over every alpha.
    veiled = photo.copy()
    veiled.putalpha(200)
    add("alpha-200.png", _png(veiled), reference=flatten_alpha(np.asarray(veiled)), tolerance=0.05, shape=rgb.shape)
    ramp = np.zeros((256, 256, 4), np.uint8)
    ramp[..., 0] = np.arange(256)[None, :]
    ramp[..., 1] = 255 - np.arange(256)[None, :]
    ramp[..., 2] = 90
    ramp[..., 3] = np.arange(256)[:, None]
    add("alpha-ramp.png", _png(Image.fromarray(ramp, "RGBA")), reference=flatten_alpha(ramp), tolerance=0.05)
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    add("palette.png", _png(pal), reference=np.asarray(pal.convert("RGB")), shape=rgb.shape)
    pal_t = pal.copy()
    pal_t.info["transparency"] = int(np.asarray(pal)[0, 0])
    pal_png = _png(pal_t, transparency=int(np.asarray(pal)[0, 0]))
    pal_ref = flatten_alpha(np.asarray(Image.open(io.BytesIO(pal_png)).convert("RGBA")))
    add("palette-transparent.png", pal_png, reference=pal_ref, shape=rgb.shape)
    g16_dark = Image.fromarray(np.asarray(grey).astype(np.uint16))  # a 16-bit PNG whose values are all < 256
    add("grey16-dark.png", _png(g16_dark), reference=np.zeros_like(grey3), shape=grey3.shape)
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        tagged = _save(photo, "JPEG", quality=95, exif=exif.tobytes())
        shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(tagged))))
        add(f"exif-{orientation}.jpg", tagged, reference=shown, tolerance=0.01, shape=shown.shape)
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
    # Compressed TIFF goes through libtiff: Pyodide's 4.4.0 is refused, the host's is newer.
    deflate = _save(photo, "TIFF", compression="tiff_deflate")
    add("photo-deflate.tif", deflate, reference=rgb, shape=rgb.shape, browser_error="CVE-2023-52356")
    add("photo.webp", _save(photo, "WEBP", lossless=True), reference=rgb, shape=rgb.shape)
    # Overflows libwebp 1.2.2's Huffman tables (tests/cve_2023_4863.py); patched decoders reject it.
    add("cve-2023-4863.webp", cve_2023_4863.crafted(), error="corrupt")
    add("cve-2023-4863-valid-twin.webp", cve_2023_4863.crafted(valid=True), reference=np.zeros((16, 16, 3)))
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
    # Display P3, as phones embed it: converted to sRGB (littlecms on the host is the reference).
    p3 = iccprofiles.display_p3()
    p3_ref = ImageCms.profileToProfile(
        photo, ImageCms.ImageCmsProfile(io.BytesIO(p3)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    add("display-p3.png", _png(photo, icc_profile=p3), reference=np.asarray(p3_ref), tolerance=0.1, shape=rgb.shape)
    # Hostile profiles: ignored (the pixels as stored), never another error. Chromium applies two of
    # them (gamma 0: near white; an all-zero matrix: black); its pixels are its own there.
    for name, profile in iccprofiles.hostile().items():
        applied = name in ("zero-gamma", "degenerate-matrix")
        add(f"icc-{name}.png", _png(photo, icc_profile=profile), rgb, shape=rgb.shape, browser_reference=not applied)
    (dest / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=1))
    return cases


def _png16(rgb16: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    height, width, _ = rgb16.shape
    raw = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def build_parity(dest: Path) -> list[str]:
    """Photos as people send them, for parity with NSFWJS on an ``<img>``.

    Four sources, each from a wheel sha256-checked against its lock: scikit-image's samples (the shipped
    ones), scikit-learn's two photos and matplotlib's three sample images (JPEGs and PNGs from other
    cameras and encoders, two of them with transparency), and scipy's raccoon face (raw pixels). Then two
    photos re-encoded every common way (baseline and progressive JPEG, 4:4:4 and 4:2:0, CMYK, grey, EXIF
    orientations 2-8, transparent and semi-transparent PNG and WebP, palette PNG with tRNS, 16-bit PNG,
    an animated GIF, Display P3, 4x upscaled), and the same kinds again from the other sources' photos."""
    dest.mkdir(parents=True, exist_ok=True)
    samples = pyapp_build.VENDOR / "samples"
    files: dict[str, bytes] = {name: (samples / name).read_bytes() for name in pyapp_build.SAMPLES}
    with zipfile.ZipFile(io.BytesIO(pyapp_build.pyodide.pyodide_wheel("scikit-learn")[1])) as sklearn:
        for name in ("china.jpg", "flower.jpg"):
            files[f"sklearn-{name}"] = sklearn.read(f"sklearn/datasets/images/{name}")
    with zipfile.ZipFile(io.BytesIO(pyapp_build.pyodide.pyodide_wheel("matplotlib")[1])) as mpl:
        for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
            files[f"mpl-{name}"] = mpl.read(f"matplotlib/mpl-data/sample_data/{name}")
    with zipfile.ZipFile(io.BytesIO(pyapp_build.pyodide.pyodide_wheel("scipy")[1])) as scipy:
        # scipy.datasets.face(): 1024x768 RGB pixels, bzip2-compressed, as raw bytes (no pickle)
        raw = bz2.decompress(scipy.read("scipy/misc/face.dat"))
    face = Image.fromarray(np.frombuffer(raw, np.uint8).reshape(768, 1024, 3))
    hopper = Image.open(io.BytesIO(files["mpl-grace_hopper.jpg"])).convert("RGB")
    china = Image.open(io.BytesIO(files["sklearn-china.jpg"])).convert("RGB")
    # The same encodings again, from photos of other sources, cameras and sizes.
    files["face.png"] = _png(face)
    files["face-progressive-444.jpg"] = _save(face, "JPEG", quality=88, progressive=True, subsampling=0)
    files["face-cmyk.jpg"] = _save(face.convert("CMYK"), "JPEG", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    files["face-exif-6.jpg"] = _save(face, "JPEG", quality=90, exif=exif.tobytes())
    veiled_face = face.copy()
    veiled_face.putalpha(160)
    files["face-alpha-160.webp"] = _save(veiled_face, "WEBP", quality=85)
    files["face-rgb16.png"] = _png16(np.asarray(face).astype(np.uint16) * 257)
    files["face-display-p3.jpg"] = _save(face, "JPEG", quality=90, icc_profile=iccprofiles.display_p3())
    files["hopper-baseline-420-q75.jpg"] = _save(hopper, "JPEG", quality=75, subsampling=2)
    files["hopper-grey-progressive.jpg"] = _save(hopper.convert("L"), "JPEG", quality=90, progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 3
    files["hopper-exif-3.jpg"] = _save(hopper, "JPEG", quality=90, exif=exif.tobytes())
    files["hopper-upscaled-4x.png"] = _png(hopper.resize((hopper.width * 4, hopper.height * 4)))
    china_pal = china.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    files["china-palette-trns.png"] = _png(china_pal, transparency=int(np.asarray(china_pal)[0, 0]))
    files["china-lossless.webp"] = _save(china, "WEBP", lossless=True)
    gif = io.BytesIO()
    china.save(gif, format="GIF", save_all=True, append_images=[face.resize(china.size)], duration=80, loop=0)
    files["china-animated.gif"] = gif.getvalue()
    photo = Image.open(samples / "chelsea.png").convert("RGB")
    coffee = Image.open(samples / "coffee.png").convert("RGB")
    files["baseline-420.jpg"] = _save(photo, "JPEG", quality=90, subsampling=2)
    files["baseline-444.jpg"] = _save(photo, "JPEG", quality=90, subsampling=0)
    files["progressive.jpg"] = _save(coffee, "JPEG", quality=85, progressive=True)
    files["cmyk.jpg"] = _save(photo.convert("CMYK"), "JPEG", quality=92)
    files["grey.jpg"] = _save(coffee.convert("L"), "JPEG", quality=90)
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        files[f"exif-{orientation}.jpg"] = _save(coffee, "JPEG", quality=90, exif=exif.tobytes())
    veiled = photo.copy()
    veiled.putalpha(200)
    files["alpha-200.png"] = _png(veiled)
    files["alpha-200.webp"] = _save(veiled, "WEBP", quality=90)
    yy, xx = np.mgrid[: photo.height, : photo.width]
    disc = ((yy - photo.height / 2) ** 2 + (xx - photo.width / 2) ** 2 < (photo.height / 2.2) ** 2) * 255
    logo = photo.copy()
    logo.putalpha(Image.fromarray(disc.astype(np.uint8)))  # a cut-out on a transparent background
    files["cut-out.png"] = _png(logo)
    files["cut-out.webp"] = _save(logo, "WEBP", lossless=True)
    pal = coffee.convert("P", palette=Image.Palette.ADAPTIVE, colors=128)
    files["palette-trns.png"] = _png(pal, transparency=int(np.asarray(pal)[0, 0]))
    files["grey16.png"] = _png(Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257))
    files["rgb16.png"] = _png16(np.asarray(coffee).astype(np.uint16) * 257 + 128)
    gif = io.BytesIO()
    coffee.save(gif, format="GIF", save_all=True, append_images=[photo.resize(coffee.size)], duration=100, loop=0)
    files["animated.gif"] = gif.getvalue()
    files["display-p3.jpg"] = _save(coffee, "JPEG", quality=90, icc_profile=iccprofiles.display_p3())
    files["upscaled-4x.jpg"] = _save(photo.resize((photo.width * 4, photo.height * 4)), "JPEG", quality=90)
    for name, data in files.items():
        (dest / name).write_bytes(data)
    return list(files)
