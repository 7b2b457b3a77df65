"""Hostile model files (issue 15, item 4): every generated case is a ModelLoadError whose reason names the problem.

Three kinds of file are attacked through every parser pyapp has for them:

- ``manifest.json`` through :meth:`pyapp.manifest.ModelManifest.from_json`;
- ``model.json`` (its ``weightsManifest``) through :func:`pyapp.model.fetch_variant` (what
  ``Model.load`` runs, here with a fake fetch that records every request and the byte cap it
  was given), :func:`pyapp.model.build_artifacts`, :func:`pyapp.saving.artifacts_from_files`
  and :func:`pyapp.quantize.read_model` (files on disk).

Cases are built from fixed tables plus a seeded generator (``random.Random(15)``), so the
set is the same on every run. Besides the error, the loaders must not ask for a byte more
than the weight specs declare, nor for a URL outside the model's directory.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import json
import random
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pyapp import quantize
from pyapp.errors import ModelLoadError
from pyapp.manifest import ModelManifest, Variant
from pyapp.model import build_artifacts
from pyapp.saving import artifacts_from_files

BASE = "models/demo/"
T = TypeVar("T")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def valid_manifest() -> dict[str, Any]:
    return {
        "name": "demo",
        "labels": ["a", "b"],
        "input": {"size": 4, "channels": 3},
        "preprocess": {"resize": "bilinear", "align_corners": True, "normalize": "unit"},
        "variants": [
            {
                "name": "float32",
                "format": "layers-model",
                "weights_dtype": "float32",
                "model": "model.json",
                "files": {"model.json": "0" * 64, "w.bin": "1" * 64},
            }
        ],
    }


def valid_model() -> dict[str, Any]:
    """A model.json whose one shard ``w.bin`` holds 2x3 float32 + 4 uint8-quantized floats = 28 bytes."""
    return {
        "format": "layers-model",
        "modelTopology": {"class_name": "Sequential", "config": {"layers": []}},
        "weightsManifest": [
            {
                "paths": ["w.bin"],
                "weights": [
                    {"name": "dense/kernel", "shape": [2, 3], "dtype": "float32"},
                    {
                        "name": "dense/bias",
                        "shape": [4],
                        "dtype": "float32",
                        "quantization": {"dtype": "uint8", "min": -1.0, "scale": 0.01},
                    },
                ],
            }
        ],
    }


VALID_SHARD = bytes(range(28))


@dataclass(frozen=True)
class Case:
    """One hostile input: ``category`` for the tally, ``expect`` a regex the error's reason must match."""

    category: str
    name: str
    expect: str
    manifest: Any = None  # a dict to dump, or raw text/bytes
    model: Any = None  # model.json: a dict to dump, or raw bytes
    shards: dict[str, bytes] | None = None  # shard files beside model.json (default: w.bin, valid)
    declared: int = 28  # the bytes model.json's weight specs declare, when they are valid


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


# ------------------------------------------------------------------------------------------ tables

#: Paths that must never be fetched or read: (path, what the reason must say).
HOSTILE_PATHS: list[tuple[str, str]] = [
    ("https://elsewhere/model.bin", "scheme|other origin"),
    ("http://127.0.0.1:9/w.bin", "scheme|other origin"),
    ("HTTPS://ELSEWHERE/w.bin", "scheme|other origin"),
    ("//elsewhere/w.bin", "other host|protocol-relative"),
    ("///elsewhere/w.bin", "other host|protocol-relative|absolute"),
    ("data:application/octet-stream;base64,AAAA", "scheme|other origin"),
    ("blob:https://elsewhere/0f1e2d3c", "scheme|other origin"),
    ("javascript:alert(1)", "scheme|other origin"),
    ("JavaScript:alert(1)", "scheme|other origin"),
    ("file:///etc/passwd", "scheme|other origin"),
    ("../w.bin", r"'\.\.'|leaves"),
    ("../../../../etc/passwd", r"'\.\.'|leaves"),
    ("a/../../w.bin", r"'\.\.'|leaves"),
    ("a/./w.bin", r"'\.'|leaves|segment"),
    ("%2e%2e/w.bin", "percent"),
    ("%2E%2E%2Fw.bin", "percent"),
    ("..%2fw.bin", "percent"),
    ("a%2f..%2f..%2fw.bin", "percent"),
    ("%252e%252e/w.bin", "percent"),
    ("..\\w.bin", "backslash"),
    ("a\\..\\..\\w.bin", "backslash"),
    ("/etc/passwd", "absolute"),
    ("/models/other/w.bin", "absolute"),
    ("C:/Windows/w.bin", "scheme|other origin|drive"),
    ("C:\\Windows\\w.bin", "scheme|other origin|drive|backslash"),
    ("a//w.bin", "empty segment"),
    ("", "empty"),
    ("w.bin?x=../../y", "query|character"),
    ("w.bin#../y", "fragment|character"),
    ("w\x00.bin", "control character|character"),
    ("w.bin\n", "control character|character"),
    (" w.bin", "character"),
    ("a" * 300 + ".bin", "long"),
]

#: Values of ``input.size`` that must be refused.
HOSTILE_SIZES: list[tuple[Any, str]] = [
    (10**6, "input.size.*at most"),
    (10**9, "input.size.*at most"),
    (2**63, "input.size.*at most"),
    (4097, "input.size.*at most"),
    (-1, "input.size"),
    (-224, "input.size"),
    (0, "input.size"),
    (224.0, "input.size"),
    (224.5, "input.size"),
    ("224", "input.size"),
    (True, "input.size"),
    (None, "input.size"),
    ([224], "input.size"),
    ("NaN", "NaN"),  # written as a bare NaN token, see below
    ("Infinity", "Infinity"),
    ("-Infinity", "Infinity"),
]

#: Hostile shapes of one weight: (shape, reason).
HOSTILE_SHAPES: list[tuple[Any, str]] = [
    ([-1], "negative"),
    ([2, -3], "negative"),
    ([-(2**31)], "negative"),
    ([2**31], "dimension.*at most|elements"),
    ([10**12], "dimension.*at most|elements"),
    ([1000, 1000, 1000], "elements"),
    ([31623, 31623], "elements"),
    ([2**20, 2**20, 2**20, 2**20], "elements"),
    ([1.5], "integer"),
    ([3.0], "integer"),
    (["3"], "integer"),
    ([True], "integer"),
    ([None], "integer"),
    ([[3]], "integer"),
    ("3", "shape.*list"),
    (3, "shape.*list"),
    ({"0": 3}, "shape.*list"),
    (None, "shape.*list"),
    ([1] * 40, "rank"),
]

#: Hostile dtypes: (spec changes, reason).
HOSTILE_DTYPES: list[tuple[dict[str, Any], str]] = [
    ({"dtype": "float64"}, "dtype"),
    ({"dtype": "string"}, "dtype"),
    ({"dtype": "complex64"}, "dtype"),
    ({"dtype": "int64"}, "dtype"),
    ({"dtype": None}, "dtype"),
    ({"dtype": 4}, "dtype"),
    ({"dtype": ["float32"]}, "dtype"),
    ({"quantization": {"dtype": "int4", "min": 0, "scale": 1}}, "dtype"),
    ({"quantization": {"dtype": "float64"}}, "dtype"),
    ({"quantization": "uint8"}, "quantization"),
    ({"quantization": {"dtype": "uint8", "min": 0}}, "scale"),
    ({"quantization": {"dtype": "uint8", "scale": 1}}, "min"),
    ({"quantization": {"dtype": "uint16", "min": 0, "scale": "1"}}, "scale"),
    ({"quantization": {"dtype": "uint8", "min": 0, "scale": None}}, "scale"),
    ({"quantization": {"dtype": "uint8", "min": float("nan"), "scale": 1}}, "NaN"),
    ({"dtype": "bool", "quantization": {"dtype": "uint8", "min": 0, "scale": 1}}, "quantiz"),
]


def _manifest_cases() -> list[Case]:
    cases: list[Case] = []
    for value, expect in HOSTILE_SIZES:
        m = valid_manifest()
        if value in ("NaN", "Infinity", "-Infinity"):
            # json.dumps writes these bare tokens for floats; Python's json.loads accepts them.
            m["input"]["size"] = float(value.replace("Infinity", "inf"))
        else:
            m["input"]["size"] = value
        cases.append(Case("manifest: input.size", f"size={value!r:.20}", expect, manifest=m))
    for value in (True, 3.0, "3", 2, -3, 10**6, None):
        m = valid_manifest()
        m["input"]["channels"] = value
        cases.append(Case("manifest: input.channels", f"channels={value!r}", "input.channels", manifest=m))
    for path, expect in HOSTILE_PATHS:
        m = valid_manifest()
        m["variants"][0]["files"][path] = "2" * 64
        cases.append(Case("manifest: file path", f"files[{path!r:.40}]", expect, manifest=m))
    for path, expect in HOSTILE_PATHS[:12]:
        m = valid_manifest()
        m["variants"][0]["files"] = {path: "0" * 64}
        m["variants"][0]["model"] = path
        cases.append(Case("manifest: model path", f"model={path!r:.40}", expect, manifest=m))
    for field, value, expect in [
        ("model", ["model.json"], "model"),
        ("model", {"x": 1}, "model"),
        ("model", 5, "model"),
        ("weights_dtype", "int64", "weights_dtype"),
        ("weights_dtype", 5, "weights_dtype"),
        ("name", "x" * 1000, "name"),
        ("files", {"model.json": "0" * 64, **{f"s{i}.bin": "1" * 64 for i in range(2000)}}, "files"),
    ]:
        m = valid_manifest()
        m["variants"][0][field] = value
        cases.append(Case("manifest: variant field", f"variants[0].{field}={value!r:.20}", expect, manifest=m))
    for field, value, expect in [
        ("preprocess", {"align_corners": "yes"}, "align_corners"),
        ("labels", ["x"] * 200_000, "labels|too large"),
        ("labels", ["x" * 5000], "labels"),
        ("name", "n" * 5000, "name"),
        ("variants", [valid_manifest()["variants"][0] | {"name": f"v{i}"} for i in range(100)], "variants"),
    ]:
        m = valid_manifest()
        m[field] = value
        cases.append(Case("manifest: field", f"{field}={value!r:.20}", expect, manifest=m))
    for text in ([], "manifest", 1, None, True, 1.5):
        cases.append(Case("manifest: not an object", f"json={text!r}", "object", manifest=json.dumps(text)))
    for depth in (100, 10_000, 400_000):
        deep = "[" * depth + "]" * depth
        cases.append(Case("manifest: deep JSON", f"depth={depth}", "nest", manifest=f'{{"name": "demo", "x": {deep}}}'))
    # Text that makes a naive string-skipping scan quadratic, and a number Python refuses to parse.
    for name, text in [
        ("quote-backslash x 256k", '"\\' * (1 << 18)),
        ("backslash-quote x 256k", '\\"' * (1 << 18)),
        ("unterminated string + brackets", '{"name": "' + "[" * 500_000),
        ("5000-digit size", '{"name": "demo", "input": {"size": ' + "9" * 5000 + "}}"),
    ]:
        cases.append(Case("manifest: pathological JSON", name, "not JSON", manifest=text))
    cases.append(Case("manifest: huge JSON", "2 MiB", "too large", manifest=b'{"name": "' + b"x" * (2 << 20) + b'"}'))
    cases.append(Case("manifest: huge JSON", "8 MiB spaces", "too large", manifest=b" " * (8 << 20) + b"{}"))
    return cases


def _model_cases() -> list[Case]:
    cases: list[Case] = []
    for shape, expect in HOSTILE_SHAPES:
        mj = valid_model()
        mj["weightsManifest"][0]["weights"][0]["shape"] = shape
        cases.append(Case("model.json: shape", f"shape={shape!r:.30}", expect, model=mj))
    for change, expect in HOSTILE_DTYPES:
        mj = valid_model()
        mj["weightsManifest"][0]["weights"][1].update(change)
        cases.append(Case("model.json: dtype", f"{change!r:.50}", expect, model=mj))
    for path, expect in HOSTILE_PATHS:
        mj = valid_model()
        mj["weightsManifest"][0]["paths"] = [path]
        cases.append(Case("model.json: shard path", f"paths=[{path!r:.40}]", expect, model=mj))
    # Byte counts: the specs say 28 bytes; the shard holds something else.
    for size in (0, 1, 27, 29, 56, 4 << 20):
        cases.append(Case("bytes: spec vs shard", f"shard {size} B", "bytes", shards={"w.bin": b"\1" * size}))
    mj = valid_model()
    del mj["weightsManifest"][0]["weights"][1]["quantization"]  # now 24 + 16 = 40 bytes
    cases.append(Case("bytes: spec vs shard", "quantization dropped", "bytes", model=mj, declared=40))
    mj = valid_model()
    mj["weightsManifest"][0]["weights"][0]["shape"] = [2, 3, 10**4]  # 240,000 bytes declared, 28 held
    cases.append(Case("bytes: spec vs shard", "declared 240 kB", "bytes", model=mj, declared=240_016))
    # A billion-element tensor, alone and spread over weights (each small, the total huge).
    for name, weights in [
        ("1e9 float32", [{"name": "big", "shape": [10**9], "dtype": "float32"}]),
        ("1e9 uint8", [{"name": "big", "shape": [10**9], "dtype": "float32", "quantization": _u8()}]),
        ("1e9 bool", [{"name": "big", "shape": [10**5, 10**4], "dtype": "bool"}]),
        ("2000 x 2**20", [{"name": f"w{i}", "shape": [2**20], "dtype": "float32"} for i in range(2000)]),
    ]:
        mj = valid_model()
        mj["weightsManifest"][0]["weights"] = weights
        cases.append(Case("model.json: billion elements", name, "elements|too large|at most", model=mj))
    for name, change, expect in [
        ("duplicate weight", lambda w: w.append(dict(w[0])), "duplicate weight"),
        ("duplicate, other group", None, "duplicate weight"),
        ("unnamed weight", lambda w: w[0].pop("name"), "name"),
        ("name not a string", lambda w: w[0].update(name=7), "name"),
        ("spec not an object", lambda w: w.append("dense/kernel"), "weight spec"),
    ]:
        mj = valid_model()
        if change is None:
            mj["weightsManifest"].append(
                {"paths": [], "weights": [{"name": "dense/kernel", "shape": [], "dtype": "float32"}]}
            )
        else:
            change(mj["weightsManifest"][0]["weights"])
        cases.append(Case("model.json: weight names", name, expect, model=mj))
    for name, value, expect in [
        ("weightsManifest object", {"paths": ["w.bin"]}, "weightsManifest"),
        ("weightsManifest string", "w.bin", "weightsManifest"),
        ("group not object", ["w.bin"], r"weightsManifest\[0\]"),
        ("paths not list", [{"paths": "w.bin", "weights": []}], "paths"),
        ("path not string", [{"paths": [7], "weights": []}], "path"),
        ("weights not list", [{"paths": ["w.bin"], "weights": {}}], "weights"),
        (
            "shard twice",
            [{"paths": ["w.bin", "w.bin"], "weights": valid_model()["weightsManifest"][0]["weights"]}],
            "twice",
        ),
    ]:
        mj = valid_model()
        mj["weightsManifest"] = value
        cases.append(Case("model.json: structure", name, expect, model=mj))
    for name, text in [("list", b"[]"), ("string", b'"model"'), ("number", b"1"), ("null", b"null")]:
        cases.append(Case("model.json: not an object", name, "object|modelTopology", model=text))
    mj = valid_model()
    mj["modelTopology"] = "Sequential"
    cases.append(Case("model.json: structure", "topology not object", "modelTopology", model=mj))
    for depth in (200, 100_000):
        mj = valid_model()
        text = json.dumps(mj).replace('"config": {', '"config": {"deep": ' + "[" * depth + "]" * depth + ", ", 1)
        cases.append(Case("model.json: deep JSON", f"depth={depth}", "nest", model=text.encode()))
    big = json.dumps(valid_model() | {"userDefinedMetadata": {"pad": "x" * (40 << 20)}}).encode()
    cases.append(Case("model.json: huge JSON", "40 MiB", "too large|larger than", model=big))
    return cases


def _u8() -> dict[str, Any]:
    return {"dtype": "uint8", "min": 0.0, "scale": 1.0}


def _seeded_cases(n: int = 40) -> list[Case]:
    """Random mixes of the tables above, one hostile value per file (seeded: the same every run)."""
    rng = random.Random(15)
    cases: list[Case] = []
    for i in range(n):
        kind = rng.choice(["size", "manifest path", "shape", "dtype", "shard path"])
        if kind == "size":
            value = rng.choice([10**k for k in range(5, 19)] + [-(10**k) for k in range(0, 19)])
            m = valid_manifest()
            m["input"]["size"] = value
            cases.append(Case("seeded", f"{i}: size={value}", "input.size", manifest=m))
        elif kind == "manifest path":
            path, expect = rng.choice(HOSTILE_PATHS)
            m = valid_manifest()
            prefix = rng.choice(["", "float32/", "a/b/"])
            m["variants"][0]["files"][prefix + path] = "3" * 64
            # Behind a folder, "https://x" is a path with a ':' in it: refused for that character.
            expect = expect if not prefix else r"not allowed|leaves|longer"
            cases.append(Case("seeded", f"{i}: files[{prefix + path!r:.40}]", expect, manifest=m))
        elif kind == "shape":
            rank = rng.randint(1, 4)
            shape = [rng.randint(1, 8) for _ in range(rank)]
            shape[rng.randrange(rank)] = rng.choice([-rng.randint(1, 10**6), 10**9 + rng.randint(0, 10**6)])
            mj = valid_model()
            mj["weightsManifest"][0]["weights"][0]["shape"] = shape
            cases.append(Case("seeded", f"{i}: shape={shape}", "negative|elements|at most", model=mj))
        elif kind == "dtype":
            change, expect = rng.choice(HOSTILE_DTYPES)
            mj = valid_model()
            mj["weightsManifest"][0]["weights"][rng.randrange(2)].update(change)
            cases.append(Case("seeded", f"{i}: {change!r:.40}", expect, model=mj))
        else:
            path, expect = rng.choice(HOSTILE_PATHS)
            mj = valid_model()
            mj["weightsManifest"][0]["paths"] = ["w.bin", path][:: rng.choice([1, -1])]
            cases.append(Case("seeded", f"{i}: paths=[..{path!r:.40}]", expect, model=mj))
    return cases


CASES = _manifest_cases() + _model_cases() + _seeded_cases()


def test_at_least_100_cases_in_every_category() -> None:
    tally = collections.Counter(c.category for c in CASES)
    print("\n".join(f"{n:4}  {cat}" for cat, n in sorted(tally.items())))
    assert len(CASES) >= 100, tally
    assert len({(c.category, c.name) for c in CASES}) == len(CASES), "case names are unique"


# ------------------------------------------------------------------------------------------ runners


class FakeServer:
    """Serves a model directory to :func:`pyapp.model.fetch_variant`, recording every request.

    Like the browser's fetch with a cap: a body larger than ``max_bytes`` is refused after
    at most ``max_bytes`` of it were read, so nothing past the cap is ever held.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, int]] = []

    async def fetch(self, url: str, max_bytes: int) -> bytes:
        self.requests.append((url, max_bytes))
        rel = url[len(BASE) :] if url.startswith(BASE) else None
        if rel is None or rel not in self.files:
            raise ModelLoadError(f"cannot fetch {url}: HTTP 404")
        data = self.files[rel]
        if len(data) > max_bytes:
            raise ModelLoadError(f"cannot fetch {url}: larger than the {max_bytes} bytes allowed")
        return data


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own: Playwright's sync API, once a test of the session used it,
    keeps an event loop running on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _model_files(case: Case) -> dict[str, bytes]:
    files = {"model.json": _text(case.model if case.model is not None else valid_model())}
    files.update(case.shards if case.shards is not None else {"w.bin": VALID_SHARD})
    return files


def _variant_for(files: dict[str, bytes], model_json: Any) -> Variant:
    """A variant listing ``files`` with their true sha256, plus every shard model.json names (so that
    only the model.json checks, not the manifest's list, can refuse them)."""
    listed = dict(files)
    try:
        for group in json.loads(model_json)["weightsManifest"]:
            for path in group["paths"]:
                listed.setdefault(str(path), b"")
    except Exception:
        pass
    return Variant(
        name="float32",
        format="layers-model",
        model="model.json",
        files={k: _sha(v) for k, v in listed.items()},
        base_url=BASE,
    )


def _check_reason(exc: BaseException, case: Case) -> None:
    assert isinstance(exc, ModelLoadError), f"{type(exc).__name__}: {exc}"
    assert re.search(case.expect, str(exc), re.IGNORECASE), f"reason {str(exc)!r} does not match {case.expect!r}"


MANIFEST_CASES = [c for c in CASES if c.manifest is not None]
MODEL_CASES = [c for c in CASES if c.manifest is None]


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=lambda c: f"{c.category}|{c.name}")
def test_hostile_manifest(case: Case) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 (the type is checked below, with the reason)
        ModelManifest.from_json(_text(case.manifest), base_url=BASE)
    _check_reason(info.value, case)


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda c: f"{c.category}|{c.name}")
def test_hostile_model_json_when_loading(case: Case) -> None:
    """Model.load's path: refused, no request outside the model directory, none capped above what is declared."""
    from pyapp.model import fetch_variant

    files = _model_files(case)
    server = FakeServer(files)
    variant = _variant_for(files, files["model.json"])
    with pytest.raises(Exception) as info:  # noqa: PT011
        _run(fetch_variant(variant, server.fetch))
    _check_reason(info.value, case)
    assert server.requests, "model.json is fetched first"
    assert server.requests[0][0] == BASE + "model.json"
    for url, cap in server.requests:
        rel = url[len(BASE) :]
        assert url.startswith(BASE), url
        assert re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", rel), url
        assert ".." not in rel.split("/")
        assert cap <= 32 << 20, f"{url}: fetched with a cap of {cap} bytes"
    shard_caps = sum(cap for url, cap in server.requests[1:])
    assert shard_caps <= case.declared, f"shards fetched with caps of {shard_caps} bytes; {case.declared} declared"


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda c: f"{c.category}|{c.name}")
def test_hostile_model_json_in_memory(case: Case) -> None:
    """build_artifacts (the bytes in hand) and saving.artifacts_from_files (files given to training.load)."""
    files = _model_files(case)
    variant = _variant_for(files, files["model.json"])
    for parse in (
        lambda: build_artifacts(files["model.json"], files, variant),
        lambda: artifacts_from_files(files),
    ):
        with pytest.raises(Exception) as info:  # noqa: PT011
            parse()
        _check_reason(info.value, case)


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda c: f"{c.category}|{c.name}")
def test_hostile_model_json_on_disk(case: Case, tmp_path: Path) -> None:
    """quantize.read_model reads nothing outside the model's directory, and no file larger than declared."""
    model_dir = tmp_path / "model"
    (model_dir / "a").mkdir(parents=True)
    for name, data in _model_files(case).items():
        (model_dir / name).write_bytes(data)
    # What a traversal would reach: a file of exactly the declared size beside the model directory.
    (tmp_path / "w.bin").write_bytes(VALID_SHARD)
    with pytest.raises(Exception) as info:  # noqa: PT011
        quantize.read_model(model_dir)
    _check_reason(info.value, case)


def test_json_scan_is_linear() -> None:
    """The nesting scan that runs before json.loads takes time linear in the text, even on text built to
    make a string-skipping regex backtrack (the first, quadratic, scan took 7 s on 32 KiB of '"\\', 30 s
    on 64 KiB). Measured in CPU time, which a busy machine does not inflate, against a bound far from
    both sides: each case here takes at most 1.4 s of CPU (the '"a' one), a quadratic scan 30 s on the
    first, small, case, which comes first so that such a scan fails here rather than hangs."""
    import time

    from pyapp.modelcheck import MAX_MODEL_JSON_BYTES, parse_json

    for text in ('"\\' * (32 << 10), '"\\' * (4 << 20), '\\"' * (4 << 20), '"' + "a" * (8 << 20), '"a' * (4 << 20)):
        started = time.process_time()
        with pytest.raises(ModelLoadError, match="not JSON"):
            parse_json(text, "model.json", MAX_MODEL_JSON_BYTES)
        assert time.process_time() - started < 10.0, text[:8]


def test_valid_files_still_load() -> None:
    """The baseline every case is a mutation of is accepted by every parser."""
    m = ModelManifest.from_json(json.dumps(valid_manifest()), base_url=BASE)
    assert m.input.size == 4
    files = {"model.json": _text(valid_model()), "w.bin": VALID_SHARD}
    variant = _variant_for(files, files["model.json"])
    from pyapp.model import fetch_variant

    server = FakeServer(files)
    artifacts, weights = _run(fetch_variant(variant, server.fetch))
    assert weights == VALID_SHARD
    assert [w["name"] for w in artifacts["weightSpecs"]] == ["dense/kernel", "dense/bias"]
    assert server.requests == [(BASE + "model.json", 32 << 20), (BASE + "w.bin", 28)]
    assert build_artifacts(files["model.json"], files, variant)[1] == VALID_SHARD
    assert artifacts_from_files(files)[1] == VALID_SHARD


def test_listed_file_unused_by_model_json_is_not_fetched() -> None:
    """A manifest may not list files model.json does not name: their size is declared nowhere."""
    from pyapp.model import fetch_variant

    files = {"model.json": _text(valid_model()), "w.bin": VALID_SHARD, "extra.bin": b"\0" * 100}
    server = FakeServer(files)
    with pytest.raises(ModelLoadError, match=r"extra\.bin.*model\.json does not"):
        _run(fetch_variant(_variant_for(files, files["model.json"]), server.fetch))
    assert [url for url, _ in server.requests] == [BASE + "model.json"]


def test_a_shard_split_over_files_is_capped_by_what_remains(tmp_path: Path) -> None:
    """Two shards of one group: the second is fetched with a cap of what the first left."""
    from pyapp.model import fetch_variant

    mj = valid_model()
    mj["weightsManifest"][0]["paths"] = ["s1.bin", "s2.bin"]
    files = {"model.json": _text(mj), "s1.bin": VALID_SHARD[:20], "s2.bin": VALID_SHARD[20:]}
    server = FakeServer(files)
    _, weights = _run(fetch_variant(_variant_for(files, files["model.json"]), server.fetch))
    assert weights == VALID_SHARD
    assert server.requests[1:] == [(BASE + "s1.bin", 28), (BASE + "s2.bin", 8)]


# ------------------------------------------------------------------------------------------ in the browser


def _write_model(folder: Path, model: dict[str, Any], shard: bytes, listed: dict[str, bytes] | None = None) -> None:
    """A model folder: manifest.json (true sha256s of ``listed``, default model.json and w.bin), model.json, w.bin."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"model.json": json.dumps(model).encode(), "w.bin": shard}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = valid_manifest()
    manifest["variants"][0]["files"] = {k: _sha(v) for k, v in (listed or files).items()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_hostile_models_in_chromium_request_nothing_outside_their_folder(
    pyodide: Any, scratch: Path, server_url: str
) -> None:
    """The real Model.load and training.load in Chromium, every request recorded (page.on("request")):
    each hostile model is refused with its reason, and no request leaves the model's own folder."""
    root = scratch / "hostile"
    root.mkdir(parents=True, exist_ok=True)
    (root / "outside.bin").write_bytes(VALID_SHARD)  # what a traversal from a model's folder would reach
    huge = valid_manifest() | {"input": {"size": 10**6, "channels": 3}}
    (root / "size").mkdir(parents=True, exist_ok=True)
    (root / "size" / "manifest.json").write_text(json.dumps(huge))
    # Two variants, each with a hostile file listed first (a loader fetching in the manifest's order
    # would ask for it before anything else could fail): another origin, and an encoded '../'.
    _write_model(root / "origin", valid_model(), VALID_SHARD)
    elsewhere = json.loads((root / "origin" / "manifest.json").read_text())
    sound = elsewhere["variants"][0]
    elsewhere["variants"] = [
        sound | {"name": "a", "files": {"https://elsewhere.invalid/w.bin": _sha(VALID_SHARD), **sound["files"]}},
        sound | {"name": "b", "files": {"%2e%2e/outside.bin": _sha(VALID_SHARD), **sound["files"]}},
    ]
    (root / "origin" / "manifest.json").write_text(json.dumps(elsewhere))
    billion = valid_model()
    billion["weightsManifest"][0]["weights"][0]["shape"] = [1000, 1000, 1000]
    _write_model(root / "billion", billion, VALID_SHARD)
    traversal = valid_model()
    traversal["weightsManifest"][0]["paths"] = ["%2e%2e/outside.bin"]
    _write_model(root / "traversal", traversal, VALID_SHARD)
    _write_model(root / "oversized", valid_model(), b"\0" * (4 << 20))  # 4 MiB where 28 bytes are declared
    # 1 MiB of zeros: serve.py gzips it, so there is no Content-Length to refuse it by; it is cut off as it streams.
    _write_model(root / "oversized-gzip", valid_model(), b"\0" * (1 << 20))
    other = valid_model()
    other["weightsManifest"][0]["paths"] = ["../outside.bin"]
    _write_model(root / "saving", other, VALID_SHARD)

    requests: list[str] = []
    responses: list[tuple[str, str | None]] = []
    record = lambda request: requests.append(request.url)  # noqa: E731
    encoding = lambda response: responses.append((response.url, response.headers.get("content-encoding")))  # noqa: E731
    pyodide.page.on("request", record)
    pyodide.page.on("response", encoding)
    try:
        got = pyodide.run("""
            from pyapp import training
            from pyapp.errors import ModelLoadError
            from pyapp.model import Model
            out = {}
            for case in ("size", "origin", "billion", "traversal", "oversized", "oversized-gzip"):
                try:
                    await Model.load(f"/__scratch__/hostile/{case}/manifest.json")
                    out[case] = "loaded"
                except ModelLoadError as exc:
                    out[case] = str(exc)
            try:
                await training.load("/__scratch__/hostile/saving/model.json")
                out["saving"] = "loaded"
            except ModelLoadError as exc:
                out["saving"] = str(exc)
            # A sound model through the same path (saving.load_layers fetches model.json and shards itself).
            good = await training.load("/models/nsfw-mobilenet-v2/float32/model.json")
            out["good"] = good.js_model.inputs[0].shape.to_py()
            good.dispose()
            __value__ = out
        """)
    finally:
        pyodide.page.remove_listener("request", record)
        pyodide.page.remove_listener("response", encoding)
    base = server_url + "__scratch__/hostile/"
    good = server_url + "models/nsfw-mobilenet-v2/float32/"
    # First what matters most: no request left its model's folder.
    folders = (*(f"{base}{case}/" for case in got if case != "good"), good)
    outside = [url for url in requests if not url.startswith(folders)]
    assert outside == [], f"requests outside the models' folders: {outside}"
    assert "input.size: 1000000 is too large" in got["size"]
    assert "a URL with a scheme" in got["origin"]
    assert "elements a tensor may have" in got["billion"]
    assert "percent-encoding is not allowed" in got["traversal"]
    assert "larger than the 28 bytes allowed" in got["oversized"]
    assert "larger than the 28 bytes allowed" in got["oversized-gzip"]
    gzipped = [r for r in responses if r[0].endswith("oversized-gzip/w.bin")]
    assert gzipped == [(base + "oversized-gzip/w.bin", "gzip")], "the shard was sent compressed, without a length"
    assert "a '..' segment leaves" in got["saving"]
    assert got["good"] == [None, 224, 224, 3]
    assert sorted({u for u in requests if u.startswith(good)}) == [
        good + name for name in ("group1-shard1of3.bin", "group1-shard2of3.bin", "group1-shard3of3.bin", "model.json")
    ]
    requests = [u for u in requests if not u.startswith(good)]
    asked = sorted({url[len(base) :] for url in requests})
    assert asked == [
        "billion/manifest.json",
        "billion/model.json",
        "origin/manifest.json",
        "oversized-gzip/manifest.json",
        "oversized-gzip/model.json",
        "oversized-gzip/w.bin",
        "oversized/manifest.json",
        "oversized/model.json",
        "oversized/w.bin",
        "saving/model.json",
        "size/manifest.json",
        "traversal/manifest.json",
        "traversal/model.json",
    ], requests
