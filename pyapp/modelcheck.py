"""Checks of untrusted model files, before anything is fetched or allocated for them.

Pure Python (no ``js``), shared by every parser of ``manifest.json`` (:mod:`pyapp.manifest`)
and of ``model.json`` and its weight manifest (:mod:`pyapp.artifacts`, which totals the bytes a
model's weights need *before* any shard is fetched, against the bounds here). A model's files
come from wherever its URL points, so they are treated as hostile: every path must stay inside
the model's directory, every size and count is bounded, and JSON is decoded with a bound on its
size and nesting.

Each failure is a :class:`~pyapp.errors.ModelLoadError` whose message names the field
and the problem.

Example::

    >>> check_path("group1-shard1of1.bin", "paths[0]")
    'group1-shard1of1.bin'
    >>> check_path("%2e%2e/w.bin", "paths[0]")
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: paths[0]: '%2e%2e/w.bin': percent-encoding is not allowed (it can hide '../' or '/')
    >>> check_count([1, 2, 3], "weights", 2)
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: weights: 3 entries, at most 2 allowed
"""

from __future__ import annotations

import json
import re
from typing import Any

from pyapp.errors import ModelLoadError

#: Largest ``manifest.json`` read (real ones are about 2 kB).
MAX_MANIFEST_BYTES = 1 << 20
#: Largest ``model.json`` read (MobileNetV2's is 135 kB; big Keras topologies a few MB).
MAX_MODEL_JSON_BYTES = 32 << 20
#: Deepest JSON nesting accepted (real model.json files nest about 11 deep). Checked before
#: parsing: Python's json recurses, and in Pyodide a deep enough recursion can exhaust the
#: WebAssembly stack rather than raise RecursionError.
MAX_JSON_DEPTH = 64
#: Largest image side ``input.size`` may ask for (each image is size**2 * channels floats).
MAX_INPUT_SIZE = 4096
#: Most weight bytes one model may declare: what a browser tab can hold twice (bytes + tensors).
MAX_WEIGHT_BYTES = 1 << 30
#: Most elements in one weight tensor (TF.js indexes with int32; 2**28 float32 is 1 GiB).
MAX_TENSOR_ELEMENTS = 1 << 28
#: Highest rank of a weight (conv3d kernels are rank 5).
MAX_RANK = 8
MAX_PATH_LENGTH = 255
MAX_FILES = 1000
MAX_WEIGHTS = 100_000
MAX_NAME_LENGTH = 256

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
#: A JSON string (its closing quote optional, and possessive: an unterminated string is consumed once,
#: so the scan stays linear on hostile text such as '"\\"\\"\\...') or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]')


def _fail(where: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"{where}: {what}")


def check_path(path: Any, where: str) -> str:
    """``path`` if it is a plain relative file path inside the model's directory, else why not.

    Allowed: segments of letters, digits, ``.``, ``_`` and ``-`` joined by ``/``, none of
    them ``.`` or ``..``. Refused with the reason: URLs with a scheme (another origin,
    ``data:``, ``blob:``, ``javascript:``), ``//host`` and absolute paths,
    percent-encoding (``%2e%2e%2f`` is ``../`` to a server), backslashes, queries,
    fragments, control characters and anything else.

    >>> check_path("float16/group1-shard1of2.bin", "files")
    'float16/group1-shard1of2.bin'
    >>> check_path("//elsewhere/w.bin", "files")
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: files: '//elsewhere/w.bin': a protocol-relative URL (another host) is not allowed
    """
    if not isinstance(path, str):
        raise _fail(where, f"expected a file path (a string), got {type(path).__name__}")
    shown = f"{path!r:.80}"
    why = _path_problem(path)
    if why:
        raise _fail(where, f"{shown}: {why}")
    return path


def _path_problem(path: str) -> str | None:
    if not path:
        return "an empty path"
    if len(path) > MAX_PATH_LENGTH:
        return f"a path longer than {MAX_PATH_LENGTH} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "a control character is not allowed"
    if _SCHEME.match(path):
        return "a URL with a scheme (another origin, a drive, data:, blob:, javascript:) is not allowed"
    if path.startswith("//"):
        return "a protocol-relative URL (another host) is not allowed"
    if path.startswith("/"):
        return "an absolute path is not allowed (paths are relative to the model's directory)"
    if "\\" in path:
        return "a backslash is not allowed (browsers read it as '/')"
    if "%" in path:
        return "percent-encoding is not allowed (it can hide '../' or '/')"
    if "?" in path:
        return "a query ('?') is not allowed"
    if "#" in path:
        return "a fragment ('#') is not allowed"
    for segment in path.split("/"):
        if not segment:
            return "an empty segment ('//') is not allowed"
        if segment in (".", ".."):
            return f"a {segment!r} segment leaves or hides the model's directory"
        if not _SEGMENT.match(segment):
            bad = next(c for c in segment if not _SEGMENT.match(c))
            return f"the character {bad!r} is not allowed (letters, digits, '.', '_', '-' and '/')"
    return None


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def parse_json(data: bytes | str, what: str, max_bytes: int) -> Any:
    """Decode untrusted JSON: at most ``max_bytes``, nested at most :data:`MAX_JSON_DEPTH` deep,
    no ``NaN``/``Infinity`` (not JSON, though Python's parser takes them).

    >>> parse_json(b'{"a": [1, 2]}', "model.json", 100)
    {'a': [1, 2]}
    >>> parse_json(b"[" * 100 + b"]" * 100, "model.json", 1000)
    Traceback (most recent call last):
    ...
    pyapp.errors.ModelLoadError: model.json: JSON nested deeper than 64 levels
    """
    if len(data) > max_bytes:
        raise _fail(what, f"too large: {len(data):,} bytes, at most {max_bytes:,} allowed")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise _fail(what, f"not JSON (not UTF-8: {exc})") from None
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _fail(what, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif token in "]}":
            depth -= 1
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _fail(what, f"not JSON ({exc})") from None


def check_count(value: Any, where: str, limit: int) -> None:
    """``value`` is a list or dict of at most ``limit`` entries."""
    if len(value) > limit:
        raise _fail(where, f"{len(value):,} entries, at most {limit:,} allowed")
