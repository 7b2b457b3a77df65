"""Model manifests: which files make up a model, their sha256, labels, input spec.

Pure Python; runs on the host and in the browser. A manifest lives next to
its model files and lists its variants in order of preference (smallest
first); :meth:`pyapp.model.Model.load` falls back along that list.

Example::

    >>> m = ModelManifest.from_dict({
    ...     "name": "demo", "labels": ["a", "b"],
    ...     "input": {"size": 4, "channels": 3},
    ...     "variants": [{"name": "float32", "model": "model.json",
    ...                   "files": {"model.json": "0" * 64}}]}, base_url="models/demo/")
    >>> m.variants[0].url("model.json")
    'models/demo/model.json'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyapp.artifacts import STORAGE_DTYPES
from pyapp.errors import ModelLoadError
from pyapp.modelcheck import (
    MAX_FILES,
    MAX_INPUT_SIZE,
    MAX_MANIFEST_BYTES,
    MAX_NAME_LENGTH,
    check_count,
    check_path,
    parse_json,
)
from pyapp.preprocessing import NORMALIZE_MODES, Preprocess

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FORMATS = ("layers-model", "graph-model")
MAX_VARIANTS = 32
MAX_LABELS = 100_000


def _fail(where: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"invalid model manifest: {where}: {what}")


def _join(base: str, rel: str) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*:", rel) or rel.startswith("/"):
        return rel
    return base + rel if base.endswith("/") or not base else base + "/" + rel


@dataclass(frozen=True)
class Variant:
    """One stored form of a model (e.g. uint8-quantized weights)."""

    name: str
    format: str
    model: str
    files: Mapping[str, str]
    base_url: str = ""
    weights_dtype: str = "float32"

    def url(self, file: str) -> str:
        """Absolute or page-relative URL of one of this variant's files."""
        return _join(self.base_url, file)


@dataclass(frozen=True)
class InputSpec:
    """What the model expects: a square NHWC float32 image batch."""

    size: int
    channels: int = 3
    layout: str = "NHWC"
    dtype: str = "float32"

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one image."""
        return (self.size, self.size, self.channels)


@dataclass(frozen=True)
class ModelManifest:
    """A parsed, validated ``manifest.json``."""

    name: str
    labels: tuple[str, ...]
    input: InputSpec
    variants: tuple[Variant, ...]
    preprocess: Preprocess = field(default_factory=Preprocess)
    base_url: str = ""

    @classmethod
    def from_json(cls, text: str | bytes, base_url: str = "") -> ModelManifest:
        """Parse manifest JSON text (at most :data:`~pyapp.modelcheck.MAX_MANIFEST_BYTES`, nested
        at most 64 deep); ``base_url`` is the manifest's directory URL."""
        try:
            data = parse_json(text, "manifest.json", MAX_MANIFEST_BYTES)
        except ModelLoadError as exc:
            raise ModelLoadError(f"invalid model manifest: {exc}") from None
        return cls.from_dict(data, base_url)

    @classmethod
    def from_dict(cls, data: Any, base_url: str = "") -> ModelManifest:
        """Validate a decoded manifest; every problem names its field."""
        if not isinstance(data, dict):
            raise _fail("top level", "expected an object")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise _fail("name", "missing or not a string")
        if len(name) > MAX_NAME_LENGTH:
            raise _fail("name", f"longer than {MAX_NAME_LENGTH} characters")
        labels = data.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise _fail("labels", "expected a list of strings")
        if len(labels) > MAX_LABELS or any(len(x) > 1000 for x in labels):
            raise _fail("labels", f"at most {MAX_LABELS:,} labels of at most 1,000 characters each")
        inp = data.get("input")
        if not isinstance(inp, dict):
            raise _fail("input", "missing or not an object")
        size, channels = inp.get("size"), inp.get("channels", 3)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise _fail("input.size", f"expected a positive integer, got {size!r:.40}")
        if size > MAX_INPUT_SIZE:
            raise _fail("input.size", f"{size} is too large: at most {MAX_INPUT_SIZE} pixels a side")
        if not isinstance(channels, int) or isinstance(channels, bool) or channels not in (1, 3, 4):
            raise _fail("input.channels", f"expected 1, 3 or 4, got {channels!r:.40}")
        pre = data.get("preprocess", {})
        if not isinstance(pre, dict):
            raise _fail("preprocess", "expected an object")
        resize = pre.get("resize", "bilinear")
        if resize not in ("bilinear", "nearest"):
            raise _fail("preprocess.resize", f"expected 'bilinear' or 'nearest', got {resize!r}")
        normalize = pre.get("normalize", "unit")
        if normalize not in NORMALIZE_MODES:
            raise _fail("preprocess.normalize", f"expected one of {NORMALIZE_MODES}, got {normalize!r}")
        align_corners = pre.get("align_corners", True)
        if not isinstance(align_corners, bool):
            raise _fail("preprocess.align_corners", f"expected true or false, got {align_corners!r:.40}")
        variants_raw = data.get("variants")
        if not isinstance(variants_raw, list) or not variants_raw:
            raise _fail("variants", "expected a non-empty list")
        if len(variants_raw) > MAX_VARIANTS:
            raise _fail("variants", f"{len(variants_raw)} variants, at most {MAX_VARIANTS} allowed")
        variants = tuple(_variant(i, v, base_url) for i, v in enumerate(variants_raw))
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise _fail("variants", f"duplicate variant names {names}")
        return cls(
            name=name,
            labels=tuple(labels),
            input=InputSpec(size=size, channels=channels),
            variants=variants,
            preprocess=Preprocess(resize=resize, align_corners=align_corners, normalize=normalize),
            base_url=base_url,
        )

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; :class:`ModelLoadError` lists the known ones."""
        for v in self.variants:
            if v.name == name:
                return v
        raise ModelLoadError(f"model {self.name!r} has no variant {name!r}; it has {[v.name for v in self.variants]}")

    def ordered(self, prefer: Sequence[str] | None = None) -> list[Variant]:
        """Variants in the order to try: ``prefer`` (names) first, else manifest order."""
        if not prefer:
            return list(self.variants)
        return [self.variant(n) for n in prefer]


def _variant(index: int, raw: Any, base_url: str) -> Variant:
    where = f"variants[{index}]"
    if not isinstance(raw, dict):
        raise _fail(where, "expected an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise _fail(f"{where}.name", f"missing, not a string or longer than {MAX_NAME_LENGTH} characters")
    fmt = raw.get("format", "layers-model")
    if fmt not in _FORMATS:
        raise _fail(f"{where}.format", f"expected one of {_FORMATS}, got {fmt!r}")
    files = raw.get("files")
    if not isinstance(files, dict) or not files:
        raise _fail(f"{where}.files", "expected a non-empty object of file -> sha256")
    check_count(files, f"invalid model manifest: {where}.files", MAX_FILES)
    for file, digest in files.items():
        # Every URL the loader requests is base_url + one of these names: checked here, they
        # cannot point outside the model's directory.
        check_path(file, f"invalid model manifest: {where}.files")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise _fail(f"{where}.files[{file!r:.80}]", "expected a lowercase hex sha256")
    model = raw.get("model", "model.json")
    if not isinstance(model, str) or model not in files:
        raise _fail(f"{where}.model", f"{model!r:.80} is not a file listed in files")
    weights_dtype = raw.get("weights_dtype", "float32")
    if weights_dtype not in STORAGE_DTYPES:
        raise _fail(f"{where}.weights_dtype", f"expected one of {STORAGE_DTYPES}, got {weights_dtype!r:.40}")
    return Variant(
        name=name,
        format=fmt,
        model=model,
        files=dict(files),
        base_url=base_url,
        weights_dtype=weights_dtype,
    )
