"""ICC profiles built from code: Display P3 (as phones embed it) and hostile variants of it.

``display_p3()`` is an ICC v4 matrix/shaper profile: the P3 primaries and D65 white,
Bradford-adapted to D50, with the sRGB tone curve, as Apple's "Display P3" profile
describes. ``hostile()`` gives broken copies of it, each named for what is wrong.
"""

from __future__ import annotations

import struct

import numpy as np

_D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
#: The sRGB curve as an ICC parametric function 3: g, a, b, c, d.
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: np.ndarray) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _para(fn: int, params: tuple[float, ...]) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", fn, 0) + b"".join(_s15(p) for p in params)


def _mluc(text: str) -> bytes:
    encoded = text.encode("utf-16-be")
    return b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(encoded), 28) + encoded


def _primaries_to_xyz_d50(primaries: list[tuple[float, float]], white: tuple[float, float]) -> np.ndarray:
    """RGB -> XYZ (D50) for chromaticities and a white point, adapted with Bradford as ICC asks."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    scale = np.linalg.solve(xyz, w)
    to_xyz = xyz * scale
    cone_src, cone_dst = _BRADFORD @ w, _BRADFORD @ _D50
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(cone_dst / cone_src) @ _BRADFORD
    out: np.ndarray = adapt @ to_xyz
    return out


DISPLAY_P3_TO_XYZ_D50 = _primaries_to_xyz_d50([(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)], (0.3127, 0.3290))


def build(tags: list[tuple[bytes, bytes]], *, count: int | None = None) -> bytes:
    """An ICC v4 display profile (RGB, XYZ connection space) from (signature, data) tags.

    Tags with the same data share it, as real profiles share one TRC; ``count`` overrides
    the tag count written in the header (to build absurd ones).
    """
    table_end = 128 + 4 + 12 * len(tags)
    blobs: dict[bytes, int] = {}
    body = b""
    entries = []
    for sig, data in tags:
        if data not in blobs:
            blobs[data] = table_end + len(body)
            body += data + b"\0" * (-len(data) % 4)
        entries.append(struct.pack(">4sII", sig, blobs[data], len(data)))
    size = table_end + len(body)
    header = (
        struct.pack(">I4sI4s4s4s", size, b"none", 0x04300000, b"mntr", b"RGB ", b"XYZ ")
        + b"\0" * 12  # date
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + b"".join(_s15(v) for v in _D50)
        + b"\0" * 4  # creator
        + b"\0" * 44  # profile id, reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags) if count is None else count) + b"".join(entries) + body


def matrix_shaper(matrix: np.ndarray, curve: bytes, description: str) -> bytes:
    """A matrix/shaper profile: ``matrix`` (RGB -> XYZ D50) columns as colorants, one curve for R, G and B."""
    return build(
        [
            (b"desc", _mluc(description)),
            (b"cprt", _mluc("No copyright, use freely")),
            (b"wtpt", _xyz(_D50)),
            (b"rXYZ", _xyz(matrix[:, 0])),
            (b"gXYZ", _xyz(matrix[:, 1])),
            (b"bXYZ", _xyz(matrix[:, 2])),
            (b"rTRC", curve),
            (b"gTRC", curve),
            (b"bTRC", curve),
        ]
    )


def display_p3() -> bytes:
    """Display P3: P3 primaries, D65 white, the sRGB tone curve."""
    return matrix_shaper(DISPLAY_P3_TO_XYZ_D50, _para(3, SRGB_CURVE), "Display P3 (pyapp tests)")


def hostile() -> dict[str, bytes]:
    """Broken Display P3 profiles, by what is wrong with them."""
    p3 = DISPLAY_P3_TO_XYZ_D50
    good = display_p3()
    count_at = 128
    (count,) = struct.unpack_from(">I", good, count_at)
    r_xyz = 132 + 12 * 3  # rXYZ's entry in the tag table: signature, offset, size
    out = {
        "negative-gamma": matrix_shaper(p3, _para(0, (-2.2,)), "negative gamma"),
        # a = 0: the curve's threshold -b/a is NaN (0/0), its gamma undefined.
        "nan-gamma": matrix_shaper(p3, _para(1, (2.2, 0.0, 0.0)), "NaN threshold"),
        "zero-gamma": matrix_shaper(p3, b"curv\0\0\0\0" + struct.pack(">IH", 1, 0) + b"\0\0", "gamma 0"),
        # A curv tag that claims 65535 entries and holds 2.
        "truncated-curve": matrix_shaper(p3, b"curv\0\0\0\0" + struct.pack(">IHH", 65535, 0, 65535), "short curve"),
        # An XYZ tag cut to its type signature.
        "truncated-xyz": build(
            [(b"rXYZ", b"XYZ \0\0\0\0"), (b"gXYZ", _xyz(p3[:, 1])), (b"bXYZ", _xyz(p3[:, 2]))]
            + [(sig, _para(3, SRGB_CURVE)) for sig in (b"rTRC", b"gTRC", b"bTRC")]
        ),
        "absurd-tag-count": good[:count_at] + struct.pack(">I", 0xFFFFFFFF) + good[count_at + 4 :],
        # rXYZ's offset points 4 GB past the profile.
        "absurd-tag-offset": good[: r_xyz + 4] + struct.pack(">I", 0xFFFFFFF0) + good[r_xyz + 8 :],
        "absurd-tag-size": good[: r_xyz + 8] + struct.pack(">I", 0x7FFFFFFF) + good[r_xyz + 12 :],
        "truncated-profile": good[: r_xyz - 12 * 3 + 12 * count // 2],
        "degenerate-matrix": matrix_shaper(np.zeros((3, 3)), _para(3, SRGB_CURVE), "all-zero colorants"),
    }
    return out
