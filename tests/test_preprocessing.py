"""pyapp.preprocessing: one options value for both preprocessing paths; the keywords they took before still work,
with a DeprecationWarning, and mean what they meant."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pyapp import browser
from pyapp.images import preprocess
from pyapp.manifest import ModelManifest
from pyapp.preprocessing import Preprocess, center_square, resolve

IMAGE = np.random.default_rng(16).integers(0, 256, (9, 14, 3), dtype=np.uint8)


def test_options_and_old_keywords_give_the_same_pixels() -> None:
    """Each old keyword sets the field of the same meaning: the arrays are identical, and the old form warns."""
    for options, old in [
        (Preprocess(), {}),
        (Preprocess(resize="nearest", align_corners=False), {"resize": "nearest", "align_corners": False}),
        (Preprocess(normalize="imagenet", crop=True), {"normalize_mode": "imagenet", "crop": True}),
        (Preprocess(normalize="symmetric"), {"normalize_mode": "symmetric"}),
    ]:
        new = preprocess(IMAGE, 5, options=options)
        if old:
            with pytest.warns(DeprecationWarning, match=r"pyapp\.images\.preprocess\(.*options=pyapp\.preprocessing"):
                got = preprocess(IMAGE, 5, **old)
        else:
            got = preprocess(IMAGE, 5)
        np.testing.assert_array_equal(got, new)


def test_the_new_form_does_not_warn() -> None:
    """options= (or nothing) is silent: the repository's own calls never trip the deprecation."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess(IMAGE, 4, options=Preprocess(crop=True))
        preprocess(IMAGE, 4)


def test_both_forms_at_once_or_an_unknown_keyword_is_a_type_error() -> None:
    """Mixing options= with the old keywords is ambiguous, and a keyword the function never took is a typo."""
    with pytest.raises(TypeError, match="not both"):
        preprocess(IMAGE, 4, options=Preprocess(), crop=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'normalise'"):
        preprocess(IMAGE, 4, normalise="unit")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        resolve(None, {"size": 3}, "f")


def test_the_backend_path_takes_the_same_options() -> None:
    """preprocess_on_backend resolves its options as preprocess does, before it needs a browser."""
    with pytest.warns(DeprecationWarning, match=r"preprocess_on_backend\(crop=\.\.\.\)"), pytest.raises(Exception):  # noqa: B017, PT011
        browser.preprocess_on_backend(IMAGE, 4, crop=True)
    with pytest.raises(TypeError, match="not both"):
        browser.preprocess_on_backend(IMAGE, 4, options=Preprocess(), crop=True)


def test_a_manifest_gives_the_options_value() -> None:
    """A model's manifest.json "preprocess" section is read into the same Preprocess the paths take."""
    manifest = ModelManifest.from_dict(
        {
            "name": "m",
            "labels": ["a"],
            "input": {"size": 4, "channels": 3},
            "preprocess": {"resize": "nearest", "align_corners": False, "normalize": "none"},
            "variants": [{"name": "f", "model": "model.json", "files": {"model.json": "0" * 64}}],
        }
    )
    assert manifest.preprocess == Preprocess(resize="nearest", align_corners=False, normalize="none")


def test_center_square_is_what_crop_keeps() -> None:
    """The crop box both paths cut: the largest centred square."""
    assert center_square(10, 6) == (2, 0, 6)
    assert center_square(6, 11) == (0, 2, 6)
    top, left, side = center_square(*IMAGE.shape[:2])
    np.testing.assert_array_equal(
        preprocess(IMAGE, side, options=Preprocess(crop=True, normalize="none"))[0],
        IMAGE[top : top + side, left : left + side].astype(np.float32),
    )
