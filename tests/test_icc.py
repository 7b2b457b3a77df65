"""pyapp.icc: embedded-profile -> sRGB conversion in numpy agrees with littlecms (host Pillow), ignores
hostile profiles with a logged reason, and runs in bounded memory."""

from __future__ import annotations

import io
import logging
import tracemalloc

import iccprofiles
import numpy as np
import pytest
from PIL import Image, ImageCms

import pyapp_build
from pyapp import icc
from pyapp.icc import to_srgb


def _littlecms(im: Image.Image) -> np.ndarray:
    src = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
    return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"))


def test_adobe_rgb_photo_matches_littlecms(built: None) -> None:
    """rocket.jpg carries Adobe RGB (1998): our conversion is within 1 code value of littlecms."""
    im = Image.open(pyapp_build.VENDOR / "samples" / "rocket.jpg")
    ours = to_srgb(np.asarray(im.convert("RGB")), im.info["icc_profile"])
    assert ours is not None
    diff = np.abs(ours.astype(int) - _littlecms(im).astype(int))
    assert diff.max() <= 1
    assert diff.mean() < 0.2
    assert np.abs(ours.astype(int) - np.asarray(im.convert("RGB")).astype(int)).mean() > 3, "it really converts"


def test_srgb_profile_is_a_no_op(built: None) -> None:
    im = Image.open(pyapp_build.VENDOR / "samples" / "hubble_deep_field.jpg")
    rgb = np.asarray(im.convert("RGB"))
    assert to_srgb(rgb, im.info["icc_profile"]) is rgb


@pytest.mark.parametrize("profile", ["LAB", "XYZ"])
def test_unsupported_profiles_are_left_alone(profile: str) -> None:
    """Non matrix/shaper RGB profiles: None (the caller keeps the decoded pixels)."""
    data = ImageCms.ImageCmsProfile(ImageCms.createProfile(profile)).tobytes()
    assert to_srgb(np.zeros((2, 2, 3), np.uint8), data) is None
    assert to_srgb(np.zeros((2, 2, 3), np.uint8), b"junk" * 40) is None


@pytest.mark.parametrize("name", sorted(iccprofiles.hostile()))
def test_hostile_profiles_are_ignored_with_a_logged_reason(name: str, caplog: pytest.LogCaptureFixture) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    with caplog.at_level(logging.INFO, logger="pyapp.icc"):
        out, note = icc.convert(rgb, iccprofiles.hostile()[name])
    assert out is rgb
    assert note is not None
    assert note.startswith("ICC profile ignored: ")
    assert note in caplog.text
    assert icc.to_srgb(rgb, iccprofiles.hostile()[name]) is None


def test_mutated_profiles_never_raise_anything_but_profile_error() -> None:
    """10,000 random byte edits of a real profile: each converts or is ignored with a reason."""
    rng = np.random.default_rng(4863)
    good = bytearray(iccprofiles.display_p3())
    rgb = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    outcomes = {"converted": 0, "ignored": 0}
    for _ in range(10_000):
        data = bytearray(good)
        for _ in range(rng.integers(1, 4)):
            at, n = int(rng.integers(0, len(data))), int(rng.integers(1, 5))
            data[at : at + n] = rng.bytes(n)[: len(data) - at]
        if rng.random() < 0.1:
            data = data[: int(rng.integers(0, len(data)))]
        out, note = icc.convert(rgb, bytes(data))
        assert out.shape == rgb.shape
        assert out.dtype == np.uint8
        outcomes["ignored" if note else "converted"] += 1
    assert min(outcomes.values()) > 1000, outcomes


def test_display_p3_matches_littlecms() -> None:
    from PIL import ImageCms

    p3 = iccprofiles.display_p3()
    rgb = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    source = ImageCms.ImageCmsProfile(io.BytesIO(p3))
    want = np.asarray(ImageCms.profileToProfile(Image.fromarray(rgb), source, ImageCms.createProfile("sRGB")))
    got = icc.to_srgb(rgb, p3)
    assert got is not None
    assert np.abs(got.astype(int) - want).max() <= 1
    assert np.abs(got.astype(int) - rgb).mean() > 5, "it really converts"


def test_colour_conversion_memory_is_bounded() -> None:
    """A 12 MP conversion allocates its 3-byte output and a fixed amount, not 99 bytes a pixel."""
    rgb = np.random.default_rng(3).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    transform = icc.parse(iccprofiles.display_p3())
    tracemalloc.start()
    try:
        out = icc.apply(rgb, transform)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == rgb.shape
    assert peak <= 3 * rgb.shape[0] * rgb.shape[1] + (4 << 20), peak / 12e6
