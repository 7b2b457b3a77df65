"""Preprocessing options: how an image becomes a model's input (resize, corner alignment, normalisation, crop).

One frozen value, :class:`Preprocess`, read from a model's manifest (:mod:`pyapp.manifest`) and
taken by both preprocessing paths, numpy's (:func:`pyapp.images.preprocess`) and the backend's
(:func:`pyapp.browser.preprocess_on_backend`), so that the two are always asked the same thing.
Pure Python; it sits below both images and models.

Example::

    >>> options = Preprocess(normalize="symmetric", crop=True)
    >>> options.resize, options.align_corners, options.normalize, options.crop
    ('bilinear', True, 'symmetric', True)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Resize = Literal["bilinear", "nearest"]
Normalize = Literal["unit", "symmetric", "none", "imagenet"]
#: The normalisations :class:`Preprocess` knows: 0..1, -1..1, ImageNet's mean/std, raw 0..255.
NORMALIZE_MODES: tuple[str, ...] = ("unit", "symmetric", "none", "imagenet")
#: ImageNet's per-channel mean and standard deviation (of 0..1 RGB values), for ``normalize="imagenet"``.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How images are turned into the model's input: resized (``bilinear`` or ``nearest``, with or without
    ``align_corners``), normalised, and first centre-cropped to a square if ``crop``.

    >>> Preprocess()
    Preprocess(resize='bilinear', align_corners=True, normalize='unit', crop=False)
    """

    resize: Resize = "bilinear"
    align_corners: bool = True
    normalize: Normalize = "unit"
    crop: bool = False


def center_square(height: int, width: int) -> tuple[int, int, int]:
    """The largest centred square of a ``height`` x ``width`` image, as (top, left, side): what ``crop`` keeps.

    >>> center_square(10, 6)
    (2, 0, 6)
    """
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


#: The keywords preprocess() took before :class:`Preprocess`, and the field each one sets.
_OLD_KEYWORDS = {"resize": "resize", "align_corners": "align_corners", "normalize_mode": "normalize", "crop": "crop"}


def resolve(options: Preprocess | None, old: Mapping[str, Any], caller: str) -> Preprocess:
    """The options a preprocessing function was given: ``options``, or (deprecated, with a warning) the
    keywords it took before; :class:`TypeError` for both at once or a keyword it never took.

    >>> resolve(None, {}, "f")
    Preprocess(resize='bilinear', align_corners=True, normalize='unit', crop=False)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     resolve(None, {"normalize_mode": "none"}, "f").normalize
    'none'
    """
    if not old:
        return options if options is not None else Preprocess()
    unknown = sorted(set(old) - set(_OLD_KEYWORDS))
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    if options is not None:
        raise TypeError(f"{caller}() takes options= or the old keywords {sorted(old)}, not both")
    warnings.warn(
        f"{caller}({', '.join(f'{k}=...' for k in old)}) is deprecated; "
        f"pass options=pyapp.preprocessing.Preprocess({', '.join(f'{_OLD_KEYWORDS[k]}=...' for k in old)})",
        DeprecationWarning,
        stacklevel=3,
    )
    return Preprocess(**{_OLD_KEYWORDS[k]: v for k, v in old.items()})
