"""pyapp.datasets on the host: the shipped digits and LFW files parse into what training expects."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

import pyapp_build
from pyapp.datasets import parse_digits, parse_faces
from pyapp.errors import InvalidInput

DATA = pyapp_build.VENDOR / "data"


def test_digits_are_scikit_learns_1797_images(built: None) -> None:
    x, y = parse_digits((DATA / "digits.csv.gz").read_bytes())
    assert x.shape == (1797, 8, 8, 1)
    assert x.dtype == np.float32
    assert (x.min(), x.max()) == (0.0, 1.0)
    assert y.dtype == np.int32
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert y[:10].tolist() == list(range(10))


def test_faces_are_100_faces_then_100_non_faces(built: None) -> None:
    images, labels = parse_faces((DATA / "lfw_subset.npy").read_bytes())
    assert images.shape == (200, 25, 25, 3)
    assert images.dtype == np.uint8
    assert (images[..., 0] == images[..., 2]).all(), "grey photos, three equal channels"
    assert labels.tolist() == [1] * 100 + [0] * 100
    assert images.std() > 30, "real photos, not blank"


def test_other_bytes_are_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match=re.escape("not scikit-learn's digits.csv.gz")):
        parse_digits(b"not gzip")
    with pytest.raises(InvalidInput, match="65 columns"):
        parse_digits(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(InvalidInput, match=re.escape("not scikit-image's lfw_subset.npy")):
        parse_faces(b"\x93NUMPY garbage")
