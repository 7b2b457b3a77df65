"""Embedded ICC colour profiles -> sRGB, in numpy (Pyodide's Pillow has no littlecms).

Browsers convert images with an embedded profile (Adobe RGB or Display P3 photos,
say) to sRGB before showing or classifying them; images decoded by Pillow get the
same conversion here. Matrix/shaper RGB profiles (ICC v2 and v4: ``rXYZ``/``gXYZ``/
``bXYZ`` + ``rTRC``/``gTRC``/``bTRC``) are converted; any other profile is ignored,
with the reason, as browsers ignore profiles they cannot use:

- unsupported kinds (LUT-based, CMYK, grey, Lab): :func:`parse` raises
  :class:`ProfileError` with ``unsupported=True``;
- hostile or broken profiles (a negative or NaN gamma, truncated tags, absurd tag
  counts or offsets, a degenerate matrix): :class:`ProfileError`, never another error.

Conversion runs over tiles of :data:`TILE_PIXELS` pixels, so its memory is the
output array plus a fixed amount, whatever the image size.

Example::

    >>> import numpy as np
    >>> to_srgb(np.zeros((1, 1, 3), np.uint8), b"not a profile") is None
    True
    >>> pixels, note = convert(np.zeros((1, 1, 3), np.uint8), b"not a profile")
    >>> note
    'ICC profile ignored: not an ICC profile (13 bytes, no acsp signature)'
"""

from __future__ import annotations

import functools
import logging
import struct
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("pyapp.icc")

#: sRGB primaries adapted to the ICC D50 white (Bradford), as in the sRGB ICC profile.
_SRGB_TO_XYZ_D50 = np.array(
    [
        [0.4360747, 0.3850649, 0.1430804],
        [0.2225045, 0.7168786, 0.0606169],
        [0.0139322, 0.0971045, 0.7141733],
    ]
)
_LINEAR_STEPS = 4096
#: Pixels converted at a time: the float32 temporaries stay near 1 MB whatever the image size.
TILE_PIXELS = 1 << 16
_MATRIX_TAGS = (b"rXYZ", b"gXYZ", b"bXYZ")
_CURVE_TAGS = (b"rTRC", b"gTRC", b"bTRC")


class ProfileError(ValueError):
    """A profile that is not converted; ``unsupported`` is True for valid kinds we do not convert."""

    def __init__(self, reason: str, unsupported: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsupported = unsupported


@dataclass(frozen=True)
class Transform:
    """A parsed matrix/shaper profile: per-channel tone curves and the matrix to linear sRGB."""

    curves: np.ndarray  # (256, 3) float32: 8-bit code -> linear 0..1, per channel
    matrix: np.ndarray  # (3, 3) float32: linear profile RGB -> linear sRGB
    is_srgb: bool


def _s15(data: bytes, offset: int) -> float:
    return float(struct.unpack_from(">i", data, offset)[0]) / 65536.0


class _Profile:
    def __init__(self, data: bytes) -> None:
        if len(data) < 132 or data[36:40] != b"acsp":
            raise ProfileError(f"not an ICC profile ({len(data)} bytes, no acsp signature)")
        self.data = data
        self.colour_space = data[16:20]
        self.pcs = data[20:24]
        count = struct.unpack_from(">I", data, 128)[0]
        if 132 + 12 * count > len(data):
            raise ProfileError(f"tag table of {count} tags runs past the {len(data)}-byte profile")
        self.tags: dict[bytes, tuple[int, int]] = {}
        for i in range(count):
            sig, off, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
            if sig not in _MATRIX_TAGS + _CURVE_TAGS:
                continue  # never read
            if off < 128 or off + size > len(data):
                raise ProfileError(f"tag {sig.decode('latin-1')} at {off} (+{size}) lies outside the profile")
            if size < 12:
                raise ProfileError(f"tag {sig.decode('latin-1')} is truncated ({size} bytes)")
            self.tags[sig] = (off, size)

    def _tag(self, sig: bytes) -> tuple[int, int]:
        if sig not in self.tags:
            raise ProfileError(f"no {sig.decode('latin-1')} tag: not a matrix/shaper profile", unsupported=True)
        return self.tags[sig]

    def xyz(self, sig: bytes) -> np.ndarray:
        off, size = self._tag(sig)
        if self.data[off : off + 4] != b"XYZ " or size < 20:
            raise ProfileError(f"tag {sig.decode('latin-1')} is not a 20-byte XYZ tag")
        return np.array([_s15(self.data, off + 8 + 4 * i) for i in range(3)])

    def curve(self, sig: bytes) -> np.ndarray:
        """The tone curve sampled at the 256 8-bit code values (0..1 in, linear 0..1 out)."""
        off, size = self._tag(sig)
        name = sig.decode("latin-1")
        kind = self.data[off : off + 4]
        x = np.arange(256, dtype=np.float64) / 255.0
        if kind == b"curv":
            n = struct.unpack_from(">I", self.data, off + 8)[0]
            if 12 + 2 * n > size:
                raise ProfileError(f"tone curve {name} claims {n} entries but holds {max(0, size - 12) // 2}")
            if n == 0:
                return x
            if n == 1:
                gamma = struct.unpack_from(">H", self.data, off + 12)[0] / 256.0
                if gamma <= 0:
                    raise ProfileError(f"tone curve {name} has gamma {gamma}")
                return _checked(np.power(x, gamma), name)
            table = np.frombuffer(self.data, dtype=">u2", count=n, offset=off + 12).astype(np.float64) / 65535.0
            return _checked(np.interp(x * (n - 1), np.arange(n), table), name)
        if kind == b"para":
            fn = struct.unpack_from(">H", self.data, off + 8)[0]
            nparams = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(fn)
            if nparams is None:
                raise ProfileError(f"tone curve {name} is parametric function {fn}, which ICC does not define")
            if 12 + 4 * nparams > size:
                raise ProfileError(f"tone curve {name} is truncated ({size} bytes for {nparams} parameters)")
            p = [_s15(self.data, off + 12 + 4 * i) for i in range(nparams)]
            g, a, b, c, d, e, f = (p + [0.0] * 7)[:7]
            if not g > 0:
                raise ProfileError(f"tone curve {name} has gamma {g}")
            if fn >= 1 and a == 0:
                raise ProfileError(f"tone curve {name} has a zero slope (a = 0): its threshold -b/a is NaN")
            with np.errstate(all="ignore"):
                base = np.power(np.clip(a * x + b, 0, None), g)
                if fn == 0:
                    curve = np.power(x, g)
                elif fn == 1:
                    curve = np.where(x >= -b / a, base, 0.0)
                elif fn == 2:
                    curve = np.where(x >= -b / a, base + c, c)
                elif fn == 3:
                    curve = np.where(x >= d, base, c * x)
                else:
                    curve = np.where(x >= d, base + e, c * x + f)
            return _checked(curve, name)
        raise ProfileError(f"tone curve {name} has type {kind!r}, which is not converted", unsupported=True)


def _checked(curve: np.ndarray, name: str) -> np.ndarray:
    # Finite values only: a NaN or infinity would become an arbitrary table index later.
    if not np.isfinite(curve).all():
        raise ProfileError(f"tone curve {name} is not finite (a negative or NaN gamma?)")
    out: np.ndarray = np.clip(curve, 0.0, 1.0)
    return out


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def _srgb_decode(code: np.ndarray) -> np.ndarray:
    return np.where(code <= 0.04045, code / 12.92, np.power((code + 0.055) / 1.055, 2.4))


# The two tables are made on first use, not at import: pyapp is imported on every page's boot, and most images
# carry no profile (making them at import cost ~30 ms of the app's first result, in Pyodide).
@functools.cache
def _xyz_d50_to_srgb() -> np.ndarray:
    return np.linalg.inv(_SRGB_TO_XYZ_D50)


@functools.cache
def _encode_table() -> np.ndarray:
    """Linear 0..1 in _LINEAR_STEPS steps -> sRGB 8-bit code: one lookup per value instead of a pow."""
    return np.rint(_srgb_encode(np.linspace(0.0, 1.0, _LINEAR_STEPS)) * 255.0).astype(np.uint8)


def parse(icc: bytes) -> Transform:
    """The conversion an ICC profile describes, or :class:`ProfileError` saying why there is none.

    >>> parse(b"junk" * 40)
    Traceback (most recent call last):
    ...
    pyapp.icc.ProfileError: not an ICC profile (160 bytes, no acsp signature)
    """
    try:
        profile = _Profile(bytes(icc))
        if profile.colour_space != b"RGB " or profile.pcs != b"XYZ ":
            space = profile.colour_space.decode("latin-1").strip()
            pcs = profile.pcs.decode("latin-1").strip()
            raise ProfileError(f"a {space} profile with a {pcs} connection space is not converted", unsupported=True)
        matrix = np.stack([profile.xyz(sig) for sig in _MATRIX_TAGS], axis=1)
        curves = np.stack([profile.curve(sig) for sig in _CURVE_TAGS], axis=1)
    except ProfileError:
        raise
    except (ValueError, KeyError, IndexError, struct.error, OverflowError) as exc:
        raise ProfileError(f"malformed profile: {exc}") from None
    if not (np.isfinite(matrix).all() and abs(np.linalg.det(matrix)) > 1e-6):
        raise ProfileError("its colour matrix is degenerate (primaries in a line, or all zero)")
    to_srgb_linear = _xyz_d50_to_srgb() @ matrix
    srgb = np.allclose(to_srgb_linear, np.eye(3), atol=2e-3) and bool(
        np.abs(curves - _srgb_decode(np.arange(256) / 255.0)[:, None]).max() < 2e-3
    )
    return Transform(curves.astype(np.float32), to_srgb_linear.astype(np.float32), srgb)


def apply(rgb: np.ndarray, transform: Transform) -> np.ndarray:
    """8-bit RGB (H, W, 3) in the profile's space -> a new sRGB uint8 array, a tile at a time.

    Peak memory: the output (3 bytes a pixel) plus about 40 bytes for each of
    :data:`TILE_PIXELS` pixels, whatever the image size.
    """
    height, width = rgb.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, TILE_PIXELS // max(1, width))
    channel = np.arange(3)
    matrix_t = transform.matrix.T
    for top in range(0, height, rows):
        tile = rgb[top : top + rows].reshape(-1, 3)
        linear = transform.curves[tile, channel]  # (n, 3) float32
        converted = linear @ matrix_t
        np.multiply(converted, _LINEAR_STEPS - 1, out=converted)
        np.rint(converted, out=converted)
        np.clip(converted, 0, _LINEAR_STEPS - 1, out=converted)
        out[top : top + rows] = _encode_table()[converted.astype(np.int32)].reshape(-1, width, 3)
    return out


def convert(rgb: np.ndarray, icc: bytes) -> tuple[np.ndarray, str | None]:
    """``rgb`` converted to sRGB from ``icc``'s space, and a note when the profile was ignored.

    The note is logged too. The input itself comes back when the profile is sRGB or ignored.
    """
    try:
        transform = parse(icc)
    except ProfileError as exc:
        note = f"ICC profile ignored: {exc.reason}"
        if exc.unsupported:
            log.info("%s", note)
        else:
            log.warning("%s", note)
        return rgb, note
    if transform.is_srgb:
        return rgb, None
    return apply(rgb, transform), None


def to_srgb(rgb: np.ndarray, icc: bytes) -> np.ndarray | None:
    """Convert 8-bit RGB pixels in ``icc``'s colour space to sRGB.

    Returns None when the profile is not converted (see :func:`convert` for why), and
    the input itself when the profile is sRGB already.
    """
    out, note = convert(rgb, icc)
    return None if note else out
