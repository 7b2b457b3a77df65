"""pyapp.icc: embedded-profile -> sRGB conversion in numpy agrees with littlecms (host Pillow)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from pyapp import assets
from pyapp.icc import to_srgb


def _littlecms(im: Image.Image) -> np.ndarray:
    src = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
    return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"))


def test_adobe_rgb_photo_matches_littlecms(built: None) -> None:
    """rocket.jpg carries Adobe RGB (1998): our conversion is within 1 code value of littlecms."""
    im = Image.open(assets.VENDOR / "samples" / "rocket.jpg")
    ours = to_srgb(np.asarray(im.convert("RGB")), im.info["icc_profile"])
    assert ours is not None
    diff = np.abs(ours.astype(int) - _littlecms(im).astype(int))
    assert diff.max() <= 1
    assert diff.mean() < 0.2
    assert np.abs(ours.astype(int) - np.asarray(im.convert("RGB")).astype(int)).mean() > 3, "it really converts"


def test_srgb_profile_is_a_no_op(built: None) -> None:
    im = Image.open(assets.VENDOR / "samples" / "hubble_deep_field.jpg")
    rgb = np.asarray(im.convert("RGB"))
    assert to_srgb(rgb, im.info["icc_profile"]) is rgb


@pytest.mark.parametrize("profile", ["LAB", "XYZ"])
def test_unsupported_profiles_are_left_alone(profile: str) -> None:
    """Non matrix/shaper RGB profiles: None (the caller keeps the decoded pixels)."""
    data = ImageCms.ImageCmsProfile(ImageCms.createProfile(profile)).tobytes()
    assert to_srgb(np.zeros((2, 2, 3), np.uint8), data) is None
    assert to_srgb(np.zeros((2, 2, 3), np.uint8), b"junk" * 40) is None
