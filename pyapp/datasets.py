"""Small real datasets for training from Python, shipped with the site.

Both come from registry packages, unchanged (``python serve.py build`` fetches
and checks them; see :mod:`pyapp_build.samples`):

- :func:`digits`: scikit-learn's 1,797 handwritten digits, 8x8 grey, 10 classes
  (from scikit-learn's Pyodide wheel).
- :func:`faces`: 200 grey 25x25 photos from scikit-image's LFW subset: 100 faces
  (label 1) and 100 non-faces cut from other photos (label 0).

The parsers are pure (host-testable); the loaders fetch from the site.

Example (in the browser)::

    from pyapp import datasets
    x, y = await datasets.digits()
    print(x.shape, x.dtype, y[:10])          # (1797, 8, 8, 1) float32 [0 1 2 3 4 5 6 7 8 9]
    faces, is_face = await datasets.faces()
    print(faces.shape, is_face.sum())        # (200, 25, 25, 3) 100
"""

from __future__ import annotations

import gzip
import io

import numpy as np

from pyapp.errors import InvalidInput

DIGITS_URL = "vendor/data/digits.csv.gz"
FACES_URL = "vendor/data/lfw_subset.npy"


def parse_digits(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``digits.csv.gz``: images (N, 8, 8, 1) float32 in 0..1, labels (N,) int32."""
    try:
        table = np.loadtxt(io.BytesIO(gzip.decompress(data)), delimiter=",", dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"not scikit-learn's digits.csv.gz: {exc}") from None
    if table.ndim != 2 or table.shape[1] != 65:
        raise InvalidInput(f"digits table must have 65 columns (64 pixels + label), got shape {table.shape}")
    pixels = table[:, :64] / np.float32(16.0)  # the pixels count 0..16 dark cells
    return pixels.reshape(-1, 8, 8, 1), table[:, 64].astype(np.int32)


def parse_faces(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's ``lfw_subset.npy``: RGB uint8 images (200, 25, 25, 3), labels 1 = face, 0 = not."""
    try:
        grey = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"not scikit-image's lfw_subset.npy: {exc}") from None
    if grey.shape != (200, 25, 25):
        raise InvalidInput(f"lfw_subset must hold 200 25x25 images, got {grey.shape}")
    images = np.repeat(np.rint(grey * 255.0).astype(np.uint8)[..., None], 3, axis=3)
    labels = np.array([1] * 100 + [0] * 100, np.int32)  # scikit-image's order: faces first
    return images, labels


async def digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits dataset from the site (see :func:`parse_digits`)."""
    from pyapp.fetch import fetch_bytes

    return parse_digits(await fetch_bytes(DIGITS_URL))


async def faces() -> tuple[np.ndarray, np.ndarray]:
    """The LFW faces / non-faces subset from the site (see :func:`parse_faces`)."""
    from pyapp.fetch import fetch_bytes

    return parse_faces(await fetch_bytes(FACES_URL))
