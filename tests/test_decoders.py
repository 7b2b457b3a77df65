"""Decoding on the host (Pillow): the browser's rules, the decoder-version table, bounded memory.

pyapp.sniff (headers read before any decoder), pyapp.decoders (which decoder may take which
bytes), pyapp.images' Pillow path (orientation, alpha, 16-bit, profiles) and the corpus.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import corpus
import cve_2023_4863
import iccprofiles
import numpy as np
import pytest
from PIL import Image, ImageOps

from pyapp import decoders
from pyapp.errors import InvalidImage
from pyapp.images import decode, decode_image, flatten_alpha, orient, to_rgb
from pyapp.sniff import probe

ROOT = Path(__file__).resolve().parent.parent
OLD_PYODIDE = {  # what Pyodide 0.27.7's Pillow reports (checked in the browser by test_images.py)
    "pillow": "10.2.0",
    "libwebp": "1.2.2",
    "libtiff": "4.4.0",
    "zlib": "1.3.1",
    "libjpeg-turbo": None,
    "libjpeg": "9.0",
}


def _save(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


# ------------------------------------------------------------------ sniffing headers


@pytest.mark.parametrize(
    ("fmt", "kw"),
    [
        ("PNG", {}),
        ("JPEG", {"quality": 80}),
        ("JPEG", {"progressive": True, "exif": b"Exif\0\0" + bytes(5000)}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {"quality": 80}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"lossless": True, "exif": b"Exif\0\0MM\0*\0\0\0\x08\0\0"}),  # VP8X
        ("ICO", {"sizes": [(48, 40)]}),
    ],
)
def test_probe_reads_format_and_size_from_the_header(fmt: str, kw: dict[str, Any]) -> None:
    img = Image.new("RGB", (48, 40) if fmt == "ICO" else (123, 45), (10, 20, 30))
    head = probe(_save(img, fmt, **kw))
    assert head.format == fmt
    assert (head.width, head.height) == img.size


def test_probe_refuses_text_empty_and_bombs_before_any_decoder() -> None:
    for data, message in [
        (b"", "empty input"),
        (b"  <!DOCTYPE html><p>", "HTML"),
        (b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", 50000, 50000) + bytes(9), "too large"),
        (b"\xff\xd8\xff\xe0" + bytes(3), "corrupt JPEG"),
        (b"RIFF\0\0\0\0WEBPVP8X" + bytes(4), "corrupt WEBP"),
    ]:
        with pytest.raises(InvalidImage, match=message):
            probe(data)


# ------------------------------------------------------------------ the decoder-version table


def test_version_table_refuses_vulnerable_decoders_and_names_the_cve() -> None:
    assert "CVE-2023-4863" in (decoders.refusal("WEBP", OLD_PYODIDE) or "")
    assert "fixed in 1.3.2" in (decoders.refusal("WEBP", OLD_PYODIDE) or "")
    assert decoders.refusal("WEBP", {**OLD_PYODIDE, "libwebp": "1.3.2"}) is None
    # libtiff runs only for compressed TIFF; Pillow decodes uncompressed TIFF itself.
    assert "CVE-2023-52356" in (decoders.refusal("TIFF", OLD_PYODIDE, libraries={"pillow", "libtiff"}) or "")
    assert decoders.refusal("TIFF", OLD_PYODIDE, libraries={"pillow"}) is None
    assert decoders.refusal("JPEG", OLD_PYODIDE) is None  # IJG libjpeg 9: CVE-2013-6629 is 6b's
    assert "CVE-2013-6629" in (decoders.refusal("JPEG", {"libjpeg": "6.2", "pillow": "10.2.0"}) or "")
    assert "CVE-2016-9841" in (decoders.refusal("PNG", {"zlib": "1.2.8", "pillow": "10.2.0"}) or "")
    assert "Pillow 9.1.0" in (decoders.refusal("GIF", {"pillow": "9.1.0"}) or "")
    assert "not decoded here" in (decoders.refusal("EPS") or "")
    assert "WEBP" not in decoders.pillow_formats(OLD_PYODIDE)
    assert "EPS" not in decoders.pillow_formats()


def test_vulnerable_webp_decoder_never_sees_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Pyodide's libwebp 1.2.2, WebP bytes are refused before Pillow opens them (opening runs libwebp)."""
    monkeypatch.setattr(decoders, "library_versions", lambda: dict(OLD_PYODIDE))

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was handed the bytes")

    monkeypatch.setattr(Image, "open", never)
    for data in (cve_2023_4863.crafted(), _save(Image.new("RGB", (8, 8)), "WEBP")):
        with pytest.raises(InvalidImage, match="CVE-2023-4863"):
            decode(data)


def test_vulnerable_libtiff_is_refused_compressed_tiff_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoders, "library_versions", lambda: dict(OLD_PYODIDE))
    img = Image.new("RGB", (8, 8), (1, 2, 3))
    assert decode(_save(img, "TIFF")).tolist() == np.asarray(img).tolist()
    for compression in ("tiff_deflate", "tiff_lzw", "packbits"):
        with pytest.raises(InvalidImage, match=r"libtiff 4\.4\.0 has CVE-2023-52356"):
            decode(_save(img, "TIFF", compression=compression))


def test_only_reviewed_formats_reach_pillow() -> None:
    """Formats outside the list (here PCX and TGA) are never tried, so never decoded."""
    for fmt in ("PCX", "TGA"):
        with pytest.raises(InvalidImage, match="not a recognised image format"):
            decode(_save(Image.new("RGB", (8, 8)), fmt))


def test_crafted_webp_has_the_cve_2023_4863_shape() -> None:
    """Its first four codes fill libwebp 1.2.2's table buffer exactly; the fifth writes 122 entries past it.

    The valid twin, which differs only in a complete fifth code, decodes (so the bits say what we mean);
    the crafted file is rejected by this Pillow's patched libwebp.
    """
    sizes = [cve_2023_4863.table_writes(c)[1] for c in cve_2023_4863.CODE_LENGTH_COUNTS[:4]]
    assert sum(sizes) + 410 == cve_2023_4863.TABLE_SIZE  # the maxima kTableSize is built from
    assert cve_2023_4863.overflow(cve_2023_4863.CODE_LENGTH_COUNTS) == 122
    twin = (*cve_2023_4863.CODE_LENGTH_COUNTS[:4], cve_2023_4863.VALID_DISTANCE_COUNTS)
    assert cve_2023_4863.overflow(twin) == 0
    assert decode(cve_2023_4863.crafted(valid=True)).tolist() == np.zeros((16, 16, 3), np.uint8).tolist()
    with pytest.raises(InvalidImage, match="corrupt"):
        decode(cve_2023_4863.crafted())


# ------------------------------------------------------------------ the browser's rules, on Pillow's pixels


def test_alpha_is_dropped_as_from_pixels_drops_it() -> None:
    """Premultiplied storage, read back un-premultiplied: exact rule checked against a plain loop."""
    grid = np.zeros((256, 256, 4), np.uint8)
    grid[..., 0] = np.arange(256)[None, :]
    grid[..., 1] = 255 - np.arange(256)[None, :]
    grid[..., 3] = np.arange(256)[:, None]
    got = flatten_alpha(grid)
    for a in (0, 1, 2, 10, 128, 200, 254, 255):
        for c in range(256):
            p = (c * a * 257 + 257 * 128) >> 16
            want = 0 if a == 0 else min(255, round(p * 255 / a))  # round: half to even, as numpy
            assert got[a, c, 0] == want, (a, c)
    assert (got[255, :, :3] == grid[255, :, :3]).all()  # opaque: unchanged
    assert (got[0] == 0).all()  # fully transparent: black
    assert np.abs(got[40:].astype(int) - grid[40:, :, :3]).max() <= 3  # semi-transparent: the stored colour


def test_sixteen_bit_keeps_the_high_byte_even_when_all_values_are_small() -> None:
    dark = Image.fromarray(np.full((4, 4), 255, np.uint16))  # 16-bit, every value <= 255: nearly black
    assert Image.open(io.BytesIO(_save(dark, "PNG"))).mode in ("I", "I;16")
    assert decode(_save(dark, "PNG")).max() == 0
    ramp = Image.fromarray(np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16))
    assert decode(_save(ramp, "PNG"))[..., 0].ravel().tolist() == list(range(0, 256))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation: int) -> None:
    rgb = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    png = _save(img, "PNG", exif=exif.tobytes())
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(png))).convert("RGB"))
    assert orient(rgb, orientation).tolist() == want.tolist()
    assert decode(png).tolist() == want.tolist()


def test_each_result_says_which_decoder_ran() -> None:
    img = Image.new("RGB", (4, 4), (9, 8, 7))
    got = decode_image(_save(img, "PNG", icc_profile=iccprofiles.hostile()["negative-gamma"]))
    assert (got.decoder, got.format) == ("pillow", "PNG")
    assert got.notes == ("ICC profile ignored: tone curve rTRC has gamma -2.1999969482421875",)
    assert to_rgb(img).tolist() == got.pixels.tolist()


_PEAK_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[2])
from pyapp.images import decode_image
def status(key):  # this process's own memory (ru_maxrss would include the parent's, from before exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
data = open(sys.argv[1], "rb").read()
base = status("VmRSS:")
decoded = decode_image(data)
print(json.dumps({"grew_kb": status("VmHWM:") - base, "shape": decoded.pixels.shape, "notes": decoded.notes}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc/self/status")
def test_decoding_a_12mp_display_p3_jpeg_peaks_under_16_bytes_a_pixel(tmp_path: Path) -> None:
    """Decode + colour conversion of a phone-sized P3 photo, measured as the process's peak memory growth."""
    photo = Image.open(ROOT / "web" / "vendor" / "samples" / "chelsea.png").convert("RGB").resize((4000, 3000))
    path = tmp_path / "p3.jpg"
    path.write_bytes(_save(photo, "JPEG", quality=85, icc_profile=iccprofiles.display_p3()))
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path), str(ROOT)], capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)
    assert got["shape"] == [3000, 4000, 3]
    assert got["notes"] == []
    per_pixel = got["grew_kb"] * 1024 / 12e6
    print(f"12 MP Display P3 JPEG: peak grew {got['grew_kb'] / 1024:.0f} MB, {per_pixel:.1f} bytes a pixel")
    assert per_pixel <= 16


# ------------------------------------------------------------------ the corpus, on the host


def test_corpus_on_the_host(built: None, tmp_path: Path) -> None:
    """Every corpus case through Pillow on the host: the right pixels, or InvalidImage naming the cause."""
    cases = corpus.build(tmp_path)
    problems = []
    for case in cases:
        data = (tmp_path / case.file).read_bytes()
        try:
            pixels = decode(data)
        except InvalidImage as exc:
            if case.error is None or case.error not in str(exc):
                problems.append(f"{case.name}: InvalidImage({exc}), expected {case.error!r}")
            continue
        if case.error is not None:
            problems.append(f"{case.name}: decoded, expected InvalidImage({case.error!r})")
            continue
        if case.shape and pixels.shape != tuple(case.shape):
            problems.append(f"{case.name}: shape {pixels.shape} != {case.shape}")
        if case.reference:
            ref = np.load(tmp_path / case.reference)
            diff = float(np.abs(ref.astype(float) - pixels).mean()) if ref.shape == pixels.shape else np.inf
            if diff > case.tolerance:
                problems.append(f"{case.name}: mean |diff| {diff:.3f} > {case.tolerance}")
    assert problems == []
