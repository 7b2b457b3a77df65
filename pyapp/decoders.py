"""Which decoder decodes an image, and which decoders are refused untrusted bytes.

Encoded images are decoded by the browser where there is one (see
:mod:`pyapp.browser`), and by Pillow on the host, for formats the browser cannot
decode (TIFF), and for PIL images given directly. Every result says which decoder
ran: a :class:`Decoded`.

Pillow's codecs are checked at run time against :data:`FIXES`, the versions that
fixed known vulnerabilities reachable by decoding: bytes that would reach an
older one are refused with :class:`~pyapp.errors.InvalidImage` naming the CVE,
never decoded. Pyodide 0.27.7's Pillow 10.2.0, for one, links libwebp 1.2.2,
open to CVE-2023-4863 (a heap overflow exploited in the wild), and libtiff 4.4.0.

Example::

    >>> print(refusal("WEBP", {"pillow": "10.2.0", "libwebp": "1.2.2"}))  # doctest: +NORMALIZE_WHITESPACE
    WEBP refused: Pillow's libwebp 1.2.2 has CVE-2023-4863 (heap buffer overflow in lossless WebP's
    Huffman tables, exploited in the wild; fixed in 1.3.2)
    >>> refusal("WEBP", {"pillow": "10.2.0", "libwebp": "1.6.0"}) is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

#: ``browser``: the browser's own decoders (createImageBitmap) or pixels it had already decoded;
#: ``pillow``: Pillow; ``array``: pixels given as a numpy array, nothing decoded.
Decoder = Literal["browser", "pillow", "array"]


@dataclass(frozen=True)
class Decoded:
    """Decoded RGB pixels, the decoder that made them, the format, and notes (an ignored ICC profile...)."""

    pixels: np.ndarray
    decoder: Decoder
    format: str | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Fix:
    """A decoder library's first version without a known vulnerability that decoding can reach."""

    library: str  # a key of library_versions()
    fixed_in: str
    cve: str
    what: str
    formats: tuple[str, ...] | None  # the Pillow formats whose decoding runs it; None: all


FIXES = (
    Fix(
        "libwebp",
        "1.3.2",
        "CVE-2023-4863",
        "heap buffer overflow in lossless WebP's Huffman tables, exploited in the wild",
        ("WEBP",),
    ),
    Fix(
        "libtiff",
        "4.7.0",
        "CVE-2023-52356 and CVE-2022-3970",
        "heap buffer overflows in TIFFReadRGBATile, which Pillow calls",
        ("TIFF",),
    ),
    Fix("zlib", "1.2.9", "CVE-2016-9841", "out-of-bounds pointer arithmetic in inflate", ("PNG", "ICO", "TIFF")),
    Fix(
        "libjpeg-turbo",
        "1.3.1",
        "CVE-2013-6629 and CVE-2013-6630",
        "uninitialised memory read through crafted JPEG headers",
        ("JPEG", "MPO", "TIFF"),
    ),
    Fix(
        "libjpeg",
        "7.0",
        "CVE-2013-6629",
        "uninitialised memory read through crafted JPEG headers",
        ("JPEG", "MPO", "TIFF"),
    ),
    Fix(
        "pillow",
        "9.3.0",
        "CVE-2022-45198 and CVE-2022-45199",
        "decompression bombs in the GIF and TIFF decoders",
        None,
    ),
)

#: The formats Pillow may open at all: raster formats decoded by the libraries above or by
#: Pillow's own C code. EPS (Ghostscript), PSD, FITS, JPEG 2000 and the rest are never tried.
PILLOW_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "DIB", "TIFF", "WEBP", "ICO", "PPM")


def library_versions() -> dict[str, str | None]:
    """The decoder libraries in this Pillow, as ``PIL.features`` reports them (None: not built in).

    IJG libjpeg reports only its API level ("9.0" for every 9x release); libjpeg-turbo
    reports its own version, and then ``libjpeg`` is None.
    """
    from PIL import features

    turbo = features.version("libjpeg_turbo")
    return {
        "pillow": features.version("pil"),
        "libwebp": features.version("webp"),
        "libtiff": features.version("libtiff"),
        "zlib": features.version("zlib"),
        "libjpeg-turbo": turbo,
        "libjpeg": None if turbo else features.version("jpg"),
    }


def _version(text: str) -> tuple[int, ...]:
    """ "1.2.13" -> (1, 2, 13); "1.3.1.zlib-ng" -> (1, 3, 1)."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-")[0])[:4])


def refusal(fmt: str | None, versions: Mapping[str, str | None] | None = None, *, libraries: Any = None) -> str | None:
    """Why Pillow must not decode ``fmt`` here (a message naming the CVE), or None when it may.

    ``libraries``, when given, limits the check to those libraries (a TIFF without
    compression never reaches libtiff).
    """
    if fmt is not None and fmt not in PILLOW_FORMATS:
        return f"{fmt} is not decoded here (not one of {', '.join(PILLOW_FORMATS)})"
    versions = library_versions() if versions is None else versions
    for fix in FIXES:
        if fix.formats is not None and fmt not in fix.formats:
            continue
        if libraries is not None and fix.library not in libraries:
            continue
        have = versions.get(fix.library)
        if have is not None and _version(have) < _version(fix.fixed_in):
            name = "Pillow" if fix.library == "pillow" else f"Pillow's {fix.library}"
            return f"{fmt} refused: {name} {have} has {fix.cve} ({fix.what}; fixed in {fix.fixed_in})"
    return None


def pillow_formats(versions: Mapping[str, str | None] | None = None) -> list[str]:
    """The formats Pillow may try to open: :data:`PILLOW_FORMATS` less those refused by :data:`FIXES`.

    Opening a WebP already runs libwebp, so a refused format must not even be opened.
    TIFF stays: its header is parsed in Python, and libtiff is checked per file.
    """
    return [f for f in PILLOW_FORMATS if f == "TIFF" or refusal(f, versions) is None]


def pillow_libraries(img: Any) -> set[str]:
    """The libraries decoding an opened (not yet loaded) PIL image will run."""
    fmt = img.format
    libraries = {"pillow"}
    if fmt in ("PNG", "ICO"):
        libraries.add("zlib")
    elif fmt in ("JPEG", "MPO"):
        libraries |= {"libjpeg", "libjpeg-turbo"}
    elif fmt == "WEBP":
        libraries.add("libwebp")
    elif fmt == "TIFF":
        compression = img.info.get("compression", "raw")
        if compression != "raw":  # Pillow decodes uncompressed TIFF itself, anything else with libtiff
            libraries.add("libtiff")
            if "deflate" in compression:
                libraries.add("zlib")
            if "jpeg" in compression:
                libraries |= {"libjpeg", "libjpeg-turbo"}
    return libraries
