"""Embedded ICC colour profiles -> sRGB, in numpy (Pyodide's Pillow has no littlecms).

Browsers convert images with an embedded profile (Adobe RGB photos, say) to
sRGB before showing or classifying them; without this, such photos look and
classify differently in Python than in the browser. Matrix/shaper RGB
profiles (ICC v2 and v4: ``rXYZ``/``gXYZ``/``bXYZ`` + ``rTRC``/``gTRC``/``bTRC``)
are converted exactly; other kinds (LUT-based, CMYK, grey) are left alone, as
the caller is told by :func:`to_srgb` returning None.

Example::

    >>> import numpy as np
    >>> to_srgb(np.zeros((1, 1, 3), np.uint8), b"not a profile") is None
    True
"""

from __future__ import annotations

import struct

import numpy as np

#: sRGB primaries adapted to the ICC D50 white (Bradford), as in the sRGB ICC profile.
_SRGB_TO_XYZ_D50 = np.array(
    [
        [0.4360747, 0.3850649, 0.1430804],
        [0.2225045, 0.7168786, 0.0606169],
        [0.0139322, 0.0971045, 0.7141733],
    ]
)
_XYZ_D50_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ_D50)
_LINEAR_STEPS = 4096


def _s15(data: bytes, offset: int) -> float:
    return float(struct.unpack_from(">i", data, offset)[0]) / 65536.0


class _Profile:
    def __init__(self, data: bytes) -> None:
        if len(data) < 132 or data[36:40] != b"acsp":
            raise ValueError("not an ICC profile")
        self.data = data
        self.colour_space = data[16:20]
        self.pcs = data[20:24]
        count = struct.unpack_from(">I", data, 128)[0]
        self.tags: dict[bytes, tuple[int, int]] = {}
        for i in range(count):
            sig, off, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
            if off + size > len(data):
                raise ValueError("tag outside the profile")
            self.tags[sig] = (off, size)

    def xyz(self, sig: bytes) -> np.ndarray:
        off, _ = self.tags[sig]
        if self.data[off : off + 4] != b"XYZ ":
            raise ValueError("bad XYZ tag")
        return np.array([_s15(self.data, off + 8 + 4 * i) for i in range(3)])

    def curve(self, sig: bytes) -> np.ndarray:
        """The tone curve sampled at the 256 8-bit code values (0..1 in, linear 0..1 out)."""
        off, _ = self.tags[sig]
        kind = self.data[off : off + 4]
        x = np.arange(256, dtype=np.float64) / 255.0
        if kind == b"curv":
            n = struct.unpack_from(">I", self.data, off + 8)[0]
            if n == 0:
                return x
            if n == 1:
                gamma = struct.unpack_from(">H", self.data, off + 12)[0] / 256.0
                curve: np.ndarray = np.power(x, gamma)
                return curve
            table = np.frombuffer(self.data, dtype=">u2", count=n, offset=off + 12).astype(np.float64) / 65535.0
            sampled: np.ndarray = np.interp(x * (n - 1), np.arange(n), table)
            return sampled
        if kind == b"para":
            fn = struct.unpack_from(">H", self.data, off + 8)[0]
            nparams = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(fn)
            if nparams is None:
                raise ValueError(f"unknown parametric curve {fn}")
            p = [_s15(self.data, off + 12 + 4 * i) for i in range(nparams)]
            g, a, b, c, d, e, f = (p + [0.0] * 7)[:7]
            if fn == 0:
                return np.power(x, g)
            if fn == 1:
                return np.where(x >= -b / a, np.power(np.clip(a * x + b, 0, None), g), 0.0)
            if fn == 2:
                return np.where(x >= -b / a, np.power(np.clip(a * x + b, 0, None), g) + c, c)
            if fn == 3:
                return np.where(x >= d, np.power(np.clip(a * x + b, 0, None), g), c * x)
            return np.where(x >= d, np.power(np.clip(a * x + b, 0, None), g) + e, c * x + f)
        raise ValueError(f"unsupported curve type {kind!r}")


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def _srgb_decode(code: np.ndarray) -> np.ndarray:
    return np.where(code <= 0.04045, code / 12.92, np.power((code + 0.055) / 1.055, 2.4))


def to_srgb(rgb: np.ndarray, icc: bytes) -> np.ndarray | None:
    """Convert 8-bit RGB pixels in ``icc``'s colour space to sRGB.

    Returns None when the profile is not a matrix/shaper RGB profile (nothing
    converted), and the input itself when the profile is sRGB already.
    """
    try:
        profile = _Profile(icc)
        if profile.colour_space != b"RGB " or profile.pcs != b"XYZ ":
            return None
        matrix = np.stack([profile.xyz(b"rXYZ"), profile.xyz(b"gXYZ"), profile.xyz(b"bXYZ")], axis=1)
        curves = [profile.curve(sig) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    except (ValueError, KeyError, struct.error):
        return None
    to_srgb_linear = _XYZ_D50_TO_SRGB @ matrix
    codes = np.arange(256) / 255.0
    srgb_linear = _srgb_decode(codes)
    if np.allclose(to_srgb_linear, np.eye(3), atol=2e-3) and all(np.abs(c - srgb_linear).max() < 2e-3 for c in curves):
        return rgb  # sRGB already: nothing to do
    lut = np.stack(curves, axis=1).astype(np.float32)  # (256, 3) code -> linear
    linear = lut[rgb, np.arange(3)]  # (H, W, 3)
    converted = linear @ to_srgb_linear.T.astype(np.float32)
    # Encode through a table over linear values: one lookup instead of a pow per pixel.
    steps = _srgb_encode(np.linspace(0.0, 1.0, _LINEAR_STEPS)) * 255.0
    index = np.clip(np.rint(converted * (_LINEAR_STEPS - 1)), 0, _LINEAR_STEPS - 1).astype(np.intp)
    out: np.ndarray = np.rint(steps[index]).astype(np.uint8)
    return out
