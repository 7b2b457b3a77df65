r"""What encoded image bytes claim to be, read from their header without decoding anything.

Before untrusted bytes reach any decoder (the browser's or Pillow's), their format
and size are read here, in pure Python: text that is not an image, and images too
large to decode safely, are refused by :func:`probe` without a decoder ever seeing
them. The parsers read only fixed header fields, so a hostile file can at worst make
them raise :class:`~pyapp.errors.InvalidImage`.

Example::

    >>> sniff(b"\x89PNG\r\n\x1a\n...."), sniff(b"RIFF0000WEBPVP8 "), sniff(b"hello")
    ('PNG', 'WEBP', None)
    >>> import struct
    >>> ihdr = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", 640, 480) + bytes(9)
    >>> probe(ihdr)
    Probe(format='PNG', width=640, height=480)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pyapp.errors import InvalidImage

#: Decompression-bomb guard: images with more pixels than this are refused.
MAX_PIXELS = 40_000_000

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
)


def sniff(data: bytes) -> str | None:
    r"""The image format named by the first bytes, if any.

    >>> sniff(b"GIF89a..."), sniff(b"II*\x00....")
    ('GIF', 'TIFF')
    """
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


@dataclass(frozen=True)
class Probe:
    """A header's claims: the format (None when not sniffed) and the stored size (0 x 0 when unknown)."""

    format: str | None
    width: int
    height: int


def probe(data: bytes, max_pixels: int = MAX_PIXELS) -> Probe:
    """Format and size from the header; :class:`InvalidImage` for empty input, text, or too many pixels.

    A format with an unreadable header is a corrupt file of that format. The size is
    the stored one (before EXIF rotation, which keeps the pixel count).
    """
    if not data:
        raise InvalidImage("empty input (0 bytes)")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<svg", b"<?xml")):
        raise InvalidImage("not a raster image: looks like HTML/SVG/XML text")
    kind = sniff(data)
    reader = _READERS.get(kind or "")
    if reader is None:
        return Probe(kind, 0, 0)
    try:
        width, height = reader(data)
    except (struct.error, IndexError, ValueError):
        raise InvalidImage(f"corrupt {kind} file: its header could not be parsed") from None
    if width <= 0 or height <= 0:
        raise InvalidImage(f"corrupt {kind} file: its header gives a {width}x{height} image")
    if width * height > max_pixels:
        raise InvalidImage(f"image too large: {width}x{height} exceeds the {max_pixels} pixel limit")
    return Probe(kind, width, height)


def _png(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        raise ValueError("no IHDR")
    width, height = struct.unpack_from(">II", data, 16)
    return int(width), int(height)


def _gif(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack_from("<HH", data, 6)
    return int(width), int(height)


def _bmp(data: bytes) -> tuple[int, int]:
    if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return int(width), abs(int(height))  # negative height: rows stored top-down


def _jpeg(data: bytes) -> tuple[int, int]:
    # Walk the marker segments to the first start-of-frame; scan data never comes before it.
    pos = 2
    while True:
        if data[pos] != 0xFF:
            raise ValueError("not at a marker")
        while data[pos] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            continue
        if marker in (0xD9, 0xDA):
            raise ValueError("no frame header before the scan")
        (length,) = struct.unpack_from(">H", data, pos)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack_from(">HH", data, pos + 3)
            return int(width), int(height)
        if length < 2:
            raise ValueError("bad segment length")
        pos += length


def _webp(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ValueError("no VP8 start code")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ValueError("no VP8L signature")
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        if len(data) < 30:
            raise ValueError("short VP8X")
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise ValueError(f"unknown WebP chunk {chunk!r}")


def _ico(data: bytes) -> tuple[int, int]:
    # The largest entry, and for PNG entries the PNG's own header (the directory may understate it).
    (count,) = struct.unpack_from("<H", data, 4)
    if count == 0:
        raise ValueError("no images")
    sizes = []
    for i in range(min(count, 256)):
        width, height, _, _, _, _, _, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        sizes.append((width or 256, height or 256))
        entry = data[offset : offset + 24]
        if entry.startswith(b"\x89PNG\r\n\x1a\n"):
            sizes.append(_png(entry))
    return max(sizes, key=lambda s: s[0] * s[1])


_READERS = {"PNG": _png, "GIF": _gif, "BMP": _bmp, "JPEG": _jpeg, "WEBP": _webp, "ICO": _ico}
