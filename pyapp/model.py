"""Loading a TF.js model once, checking it, warming it up, predicting from numpy.

Example (in the browser)::

    import numpy as np
    from pyapp.model import Model
    async with await Model.load("models/nsfw-mobilenet-v2/manifest.json") as model:
        probs = await model.predict(np.zeros((1, 224, 224, 3), np.float32))
    print(probs.shape, model.load_info.variant)      # (1, 5) uint8

Variants listed in the manifest are tried in order (e.g. uint8 -> float16 ->
float32): a variant that is missing, corrupt, fails its sha256, fails to
build or takes another input than the manifest says is skipped, and why is
logged and kept in ``Model.load_info.attempts``.

When the backend loses its device (a lost WebGL context), the next
:meth:`Model.predict` re-creates the backend, reloads the same variant and
runs the request again; ``Model.recoveries`` says when and why.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pyapp import runtime
from pyapp._js import JsException, JsProxy, error_message, js, tf, to_js
from pyapp.artifacts import ModelJson, join_shards
from pyapp.errors import (
    BackendLost,
    DisposedError,
    FetchError,
    InvalidInput,
    JSError,
    ModelIntegrityError,
    ModelLoadError,
    StateError,
)
from pyapp.lifecycle import Disposable
from pyapp.manifest import ModelManifest, Variant
from pyapp.memory import CleanupPolicy, MemoryGuard
from pyapp.modelcheck import MAX_MANIFEST_BYTES, MAX_MODEL_JSON_BYTES
from pyapp.notebook import fmt_bytes, table_html
from pyapp.progress import LoadProgress, ProgressCallback, Stage, emit
from pyapp.tensors import CPU_BACKENDS, refuse_in_tidy, tidy, to_numpy, to_numpy_sync, to_tensor

log = logging.getLogger("pyapp.model")


class ModelState(enum.Enum):
    """Lifecycle of a :class:`Model`."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    DISPOSED = "disposed"


@dataclass
class LoadInfo:
    """How loading went: the variant used, why others were skipped, timings in ms."""

    variant: str
    attempts: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    fetch_ms: float = 0.0
    build_ms: float = 0.0
    warmup_ms: float | None = None


async def fetch_bytes(
    url: str,
    progress: ProgressCallback | None = None,
    stage: Stage = "download",
    variant: str = "",
    max_bytes: int | None = None,
) -> bytes:
    """GET a model file (see :func:`pyapp.fetch.fetch_bytes`); :class:`ModelLoadError` when it cannot be fetched.

    With ``progress``, the body is read in chunks and each is reported as a :class:`LoadProgress`.
    With ``max_bytes``, a larger body is refused before (by its Content-Length) or while it is read.
    """
    from pyapp import fetch

    try:
        if progress is None and max_bytes is None:
            return await fetch.fetch_bytes(url)
        from pyapp.progress import fetch_with_progress

        async def report(loaded: int, total: int | None) -> None:
            await emit(progress, LoadProgress(stage, url, loaded, total, variant))

        return await fetch_with_progress(url, report, max_bytes=max_bytes)
    except FetchError as exc:
        raise ModelLoadError(str(exc)) from None


def _dirname(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/" if "/" in url else ""


def _check(variant: Variant, name: str, data: bytes) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != variant.files[name]:
        raise ModelIntegrityError(
            f"{variant.url(name)}: sha256 {digest[:16]}... does not match the manifest's {variant.files[name][:16]}..."
        )


def _model_dir(variant: Variant) -> str:
    """The folder of the variant's model.json, relative to the manifest: shard paths are relative to it."""
    return variant.model.rsplit("/", 1)[0] + "/" if "/" in variant.model else ""


def _plan(model_json: bytes, variant: Variant) -> ModelJson:
    """model.json decoded and checked, its weights planned, every shard listed in the manifest and
    every listed file used: nothing outside the plan is ever fetched."""
    where = variant.url(variant.model)
    mj = ModelJson.parse(model_json, where, f"{where}: malformed model.json")
    prefix = _model_dir(variant)
    needed = {variant.model} | {prefix + p for p in mj.weights.paths}
    for path in mj.weights.paths:
        if prefix + path not in variant.files:
            raise ModelLoadError(f"{where} names shard {path!r}, which the manifest does not list")
    for name in variant.files:
        if name not in needed:
            # Its size is declared nowhere, so it could not be fetched with a bound.
            raise ModelLoadError(f"{variant.name}: the manifest lists {name!r}, which model.json does not use")
    return mj


def _artifacts(mj: ModelJson, variant: Variant) -> dict[str, Any]:
    """What TF.js builds the model from: not a layers model's ``trainingConfig``, which would compile it."""
    spec = mj.spec
    artifacts = {
        "modelTopology": mj.topology,
        "weightSpecs": list(mj.weights.specs),
        "format": spec.get("format", variant.format),
        "generatedBy": spec.get("generatedBy"),
        "convertedBy": spec.get("convertedBy"),
    }
    if "signature" in spec:
        artifacts["signature"] = spec["signature"]
    if "userDefinedMetadata" in spec:
        artifacts["userDefinedMetadata"] = spec["userDefinedMetadata"]
    return artifacts


def build_artifacts(model_json: bytes, files: dict[str, bytes], variant: Variant) -> tuple[dict[str, Any], bytes]:
    """Pure part of loading: (artifacts without weightData, concatenated weight bytes).

    Validates model.json (see :mod:`pyapp.artifacts`) and that the shards hold exactly the
    bytes the weight specs need.
    """
    mj = _plan(model_json, variant)
    prefix = _model_dir(variant)
    for path in mj.weights.paths:
        if prefix + path not in files:
            raise ModelLoadError(f"{variant.url(variant.model)}: shard {path!r} was not fetched")
    shards = [files[prefix + path] for path in mj.weights.paths]
    return _artifacts(mj, variant), join_shards(mj.weights, shards, variant.name)


#: ``fetch(url, max_bytes)``: the body, or :class:`ModelLoadError` (never more than ``max_bytes`` read).
Fetcher = Callable[[str, int], Awaitable[bytes]]


async def fetch_variant(variant: Variant, fetch: Fetcher) -> tuple[dict[str, Any], bytes]:
    """Fetch and check one variant: (artifacts without weightData, weight bytes). Pure: ``fetch`` does the I/O.

    model.json comes first (at most :data:`~pyapp.modelcheck.MAX_MODEL_JSON_BYTES`); its
    weight specs are checked and totalled before any shard is requested, and each shard is
    fetched with a cap of the bytes its group still needs, so nothing larger than declared
    is read. Every URL is the manifest's directory plus a checked relative path.

    >>> import asyncio, json
    >>> mj = json.dumps({"modelTopology": {}, "weightsManifest": [{"paths": ["w.bin"],
    ...     "weights": [{"name": "b", "shape": [2], "dtype": "float32"}]}]}).encode()
    >>> body = {"m/model.json": mj, "m/w.bin": bytes(8)}
    >>> v = Variant("f32", "layers-model", "model.json",
    ...             {k[2:]: hashlib.sha256(b).hexdigest() for k, b in body.items()}, "m/")
    >>> asked = []
    >>> async def fetch(url, max_bytes):
    ...     asked.append((url, max_bytes))
    ...     return body[url]
    >>> asyncio.run(fetch_variant(v, fetch))[1] == bytes(8), asked
    (True, [('m/model.json', 33554432), ('m/w.bin', 8)])
    """
    model_json = await fetch(variant.url(variant.model), MAX_MODEL_JSON_BYTES)
    _check(variant, variant.model, model_json)
    mj = _plan(model_json, variant)
    prefix = _model_dir(variant)
    shards: list[bytes] = []
    for group in mj.weights.groups:
        left = group.nbytes
        for path in group.paths:
            data = await fetch(variant.url(prefix + path), left)
            _check(variant, prefix + path, data)
            left -= len(data)
            shards.append(data)
    return _artifacts(mj, variant), join_shards(mj.weights, shards, variant.name)


async def _load_variant(
    manifest: ModelManifest, variant: Variant, progress: ProgressCallback | None = None
) -> tuple[Any, LoadInfo]:
    """Fetch, check and build one variant: the TF.js model and how loading went."""

    started = time.perf_counter()
    size = 0

    async def fetch(url: str, max_bytes: int) -> bytes:
        nonlocal size
        data = await fetch_bytes(url, progress, "download", variant.name, max_bytes=max_bytes)
        size += len(data)
        return data

    artifacts, weights = await fetch_variant(variant, fetch)
    fetched = time.perf_counter()
    await emit(progress, LoadProgress("build", "", size, size, variant.name))
    tfm = tf()
    try:
        handler = memory_handler(artifacts, weights)
        if variant.format == "graph-model":
            js_model = await tfm.loadGraphModel(handler)
        else:
            js_model = await tfm.loadLayersModel(handler)
    except JsException as exc:
        raise ModelLoadError(f"{variant.name}: TF.js could not build the model: {error_message(exc)}") from None
    mismatch = _input_mismatch(_shape_of(js_model.inputs[0]), manifest)
    if mismatch:
        js_model.dispose()
        raise ModelLoadError(f"{variant.name}: {mismatch}")
    built = time.perf_counter()
    info = LoadInfo(
        variant=variant.name,
        bytes=size,
        fetch_ms=(fetched - started) * 1e3,
        build_ms=(built - fetched) * 1e3,
    )
    return js_model, info


def memory_handler(artifacts: dict[str, Any], weights: bytes) -> Any:
    """A TF.js IOHandler over model artifacts (JSON-able, without weight data) and their weight bytes.

    What ``tf.loadLayersModel`` / ``tf.loadGraphModel`` take to build a model from bytes already checked here.
    """

    js_artifacts = js.JSON.parse(json.dumps(artifacts))
    js_artifacts.weightData = to_js(memoryview(weights)).buffer
    return tf().io.fromMemory(js_artifacts)


def _input_mismatch(shape: tuple[int | None, ...], manifest: ModelManifest) -> str | None:
    """Why a model's declared input disagrees with its manifest's image input, or None.

    >>> from pyapp.manifest import InputSpec
    >>> m = ModelManifest("m", (), InputSpec(224), ())
    >>> _input_mismatch((None, 224, 224, 3), m) is None, _input_mismatch((None, 299, 299, 3), m)
    (True, 'the model takes input (N, 299, 299, 3) but the manifest says (N, 224, 224, 3)')
    """
    if not shape:
        return None  # the model does not declare its input
    want = (None, *manifest.input.shape)
    if len(shape) == len(want) and all(a is None or b is None or a == b for a, b in zip(shape, want, strict=True)):
        return None
    return f"the model takes input {format_shape(shape)} but the manifest says {format_shape(want)}"


class Model(Disposable):
    """A loaded TF.js model. Create with :meth:`Model.load`; dispose when done.

    Example (in the browser)::

        from pyapp.model import Model
        model = await Model.load("models/nsfw-mobilenet-v2/manifest.json")
        print(model.input_shape, model.load_info.variant, model.load_info.warmup_ms)
        model.dispose()
    """

    def __init__(self, manifest: ModelManifest, js_model: Any, load_info: LoadInfo) -> None:
        self.manifest = manifest
        self.load_info = load_info
        self._js_model: Any = js_model
        self.state = ModelState.READY
        #: Set by :meth:`load` (``cleanup=``); counts predictions and cleans up.
        self.memory: MemoryGuard | None = None
        self.input_shape: tuple[int | None, ...] = _shape_of(js_model.inputs[0])
        self.output_shape: tuple[int | None, ...] = _shape_of(js_model.outputs[0])
        #: Why the weights were reloaded after a lost backend, oldest first.
        self.recoveries: list[str] = []
        #: The manifest URL this model was loaded from (None when given a parsed manifest).
        self.source: str | None = None
        self._generation = runtime.generation()
        self._recovering = asyncio.Lock()

    # ------------------------------------------------------------------ loading

    @classmethod
    async def load(
        cls,
        source: str | ModelManifest,
        *,
        variants: Sequence[str] | None = None,
        warmup: bool = True,
        cleanup: CleanupPolicy | Literal[False] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Model:
        """Fetch, verify and build the first working variant of a model.

        ``source`` is a manifest URL or a parsed :class:`ModelManifest`;
        ``variants`` overrides the order to try; ``cleanup`` (default
        ``CleanupPolicy()``; pass ``False`` to turn off) sets the memory policy;
        ``progress`` is called with a :class:`~pyapp.progress.LoadProgress` at each step
        (manifest, each file's bytes, build, warm-up, ready), in order.
        Raises :class:`ModelLoadError` (with ``attempts``) when no variant loads.
        """
        refuse_in_tidy("Model.load")
        if isinstance(source, str):
            data = await fetch_bytes(source, progress, "manifest", max_bytes=MAX_MANIFEST_BYTES)
            manifest = ModelManifest.from_json(data, base_url=_dirname(source))
        elif isinstance(source, ModelManifest):
            manifest = source
        else:
            raise InvalidInput(f"source must be a manifest URL or ModelManifest, not {type(source).__name__}")
        attempts: dict[str, str] = {}
        only_integrity = True
        for variant in manifest.ordered(variants):
            try:
                js_model, info = await _load_variant(manifest, variant, progress)
            except ModelLoadError as exc:
                attempts[variant.name] = str(exc)
                only_integrity &= isinstance(exc, ModelIntegrityError)
                log.warning("model %s: variant %s skipped: %s", manifest.name, variant.name, exc)
                await emit(progress, LoadProgress("skipped", variant=variant.name, detail=str(exc)))
                continue
            info.attempts = dict(attempts)
            model = cls(manifest, js_model, info)
            model.source = source if isinstance(source, str) else None
            try:
                if warmup:
                    await emit(progress, LoadProgress("warmup", "", info.bytes, info.bytes, variant.name))
                    await model.warmup()
                if cleanup is not False:
                    model.memory = MemoryGuard(cleanup or CleanupPolicy())
                    model.memory.start()
                await emit(progress, LoadProgress("ready", "", info.bytes, info.bytes, variant.name))
            except BaseException:
                model.dispose()  # a callback (or the warm-up) failed: the weights are not the caller's yet
                raise
            return model
        error = ModelIntegrityError if only_integrity else ModelLoadError
        detail = "; ".join(f"{k}: {v}" for k, v in attempts.items())
        raise error(f"model {manifest.name!r}: no variant could be loaded ({detail})", attempts)

    # ------------------------------------------------------------------ lifecycle

    @property
    def js_model(self) -> Any:
        """The underlying ``tf.LayersModel`` / ``tf.GraphModel`` (replaced when the weights are reloaded)."""
        self._require_ready("js_model")
        return self._js_model

    def _require_ready(self, what: str) -> None:
        if self.state is ModelState.DISPOSED:
            raise DisposedError(f"{what}: model {self.manifest.name!r} was disposed")
        if self.state is not ModelState.READY:
            raise StateError(f"{what}: model {self.manifest.name!r} is {self.state.value}, not ready")

    _check_usable = _require_ready  # a model is usable when it is ready

    @property
    def disposed(self) -> bool:
        """Whether :meth:`dispose` has run."""
        return self.state is ModelState.DISPOSED

    def _dispose(self) -> None:
        self.state = ModelState.DISPOSED
        self._release_js()

    def _release_js(self) -> None:
        js_model, self._js_model = self._js_model, None
        if js_model is None:
            return
        try:
            js_model.dispose()
        except JsException as exc:  # weights on a lost backend: gone either way
            log.warning("model %s: disposing its weights failed: %s", self.manifest.name, error_message(exc))

    def _stale(self) -> str | None:
        """Why the weights cannot be used now (the backend was lost or re-created), or None."""
        lost = runtime.backend_lost()
        if lost is not None:
            return lost
        if self._generation != runtime.generation():
            return "the backend was re-created since this model was loaded"
        return None

    async def recover(self, reason: str | None = None) -> None:
        """Reload the same variant's weights after the backend was lost, re-creating the backend first.

        :meth:`predict` calls this by itself; calling it when nothing was lost does nothing.
        """
        if self.state is ModelState.DISPOSED:
            raise DisposedError(f"recover: model {self.manifest.name!r} was disposed")
        async with self._recovering:
            why = self._stale() if self.state is not ModelState.FAILED else "an earlier recovery failed"
            if why is None:
                return  # another caller recovered meanwhile
            why = reason or why
            self.state = ModelState.LOADING
            self._release_js()
            try:
                if runtime.backend_lost() is not None:
                    await runtime.recover(why)
                variant = self.manifest.variant(self.load_info.variant)
                js_model, _ = await _load_variant(self.manifest, variant)
            except Exception:
                if self.state is not ModelState.DISPOSED:
                    self.state = ModelState.FAILED
                raise
            if self.state is ModelState.DISPOSED:  # dispose() came while the weights were loading
                js_model.dispose()
                raise DisposedError(f"recover: model {self.manifest.name!r} was disposed while it reloaded")
            self._js_model = js_model
            self._generation = runtime.generation()
            self.state = ModelState.READY
            self.recoveries.append(why)
            log.warning("model %s: weights reloaded (%s) after: %s", self.manifest.name, variant.name, why)
            if self.load_info.warmup_ms is not None:
                await self._warm()
            if self.memory is not None:
                self.memory.start()  # a new backend: a new baseline

    def __repr__(self) -> str:
        return f"<Model {self.manifest.name!r} variant={self.load_info.variant!r} {self.state.value}>"

    def _repr_html_(self) -> str:
        """A summary table: variant, shapes, labels, bytes and load timings (Jupyter, the playground)."""
        return model_html(self)

    # ------------------------------------------------------------------ inference

    async def warmup(self) -> float:
        """Run one prediction on zeros (compiles WebGL shaders); returns and records its ms."""
        self._require_ready("warmup")
        return await self._warm()

    async def _warm(self) -> float:
        shape = tuple(1 if d is None else d for d in self.input_shape)
        started = time.perf_counter()
        await predict_js(self._js_model, np.zeros(shape, np.float32))
        self.load_info.warmup_ms = (time.perf_counter() - started) * 1e3
        return self.load_info.warmup_ms

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        want = self.input_shape
        if not want:
            return  # the model does not declare its input shape
        if len(shape) != len(want):
            raise InvalidInput(
                f"model {self.manifest.name!r} expects input of rank {len(want)} {format_shape(want)}, "
                f"got shape {shape}"
            )
        for axis, (got, exp) in enumerate(zip(shape, want, strict=True)):
            if exp is not None and got != exp:
                raise InvalidInput(
                    f"model {self.manifest.name!r} expects shape {format_shape(want)}, got {shape} (axis {axis})"
                )
        if shape[0] == 0:
            raise InvalidInput("empty batch")

    def check_input(self, x: Any) -> np.ndarray:
        """``x`` as a float32 array matching the model's input signature, or :class:`InvalidInput`."""
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiub":
            raise InvalidInput(f"model input must be numeric, got dtype {arr.dtype}")
        self._check_shape(arr.shape)
        return arr.astype(np.float32, copy=False)

    async def predict(self, x: Any) -> np.ndarray:
        """Run the model on a batch (numpy array or tf.Tensor); returns the output as numpy.

        A tensor passed in stays the caller's: it is not disposed.
        """
        refuse_in_tidy("Model.predict")
        if self._recovering.locked():
            async with self._recovering:  # another request is reloading the weights: wait for it
                pass
        self._require_ready("predict")
        tensor_in = isinstance(x, JsProxy)
        x = self._checked(x)
        stale = self._stale()
        if stale is not None:
            if tensor_in:
                raise BackendLost(f"{stale}; the input tensor was on the old backend: make it again")
            await self.recover()
            self._require_ready("predict")  # disposed while it recovered
        try:
            result = await predict_js(self._js_model, x)
        except BackendLost as exc:
            if tensor_in:
                raise
            # Lost mid-request: recover, then run this request again (nothing is dropped).
            await self.recover(str(exc))
            self._require_ready("predict")
            result = await predict_js(self._js_model, x)
        if self.state is ModelState.DISPOSED:
            # dispose() came while the result was read back: the output is freed already (to_numpy);
            # the caller learns the model is gone rather than getting a result from a disposed model.
            raise DisposedError(f"predict: model {self.manifest.name!r} was disposed while this prediction ran")
        if self.memory is not None:
            self.memory.after_predict()
        return result

    def _checked(self, x: Any) -> Any:
        """A tensor input checked (shape, dtype, not from a lost backend), or an array as float32 input."""
        if not isinstance(x, JsProxy):
            return self.check_input(x)
        self._check_shape(tuple(int(d) for d in x.shape))
        if str(x.dtype) != "float32":
            raise InvalidInput(f"model input tensor must be float32, got {x.dtype}")
        if runtime.tensor_lost(x):
            raise BackendLost("the input tensor was made on a backend that was lost since: make it again")
        return x

    def predict_now(self, x: Any) -> np.ndarray | None:
        """:meth:`predict` without awaiting, where nothing needs awaiting: the backend computes in this thread
        (wasm, cpu) and the weights need no reload. None otherwise: then ``await predict(x)``.

        For code that must not give up its turn (a video frame callback, which reads the frame shown).
        """
        refuse_in_tidy("Model.predict_now")
        self._require_ready("predict_now")
        if self._recovering.locked() or self._stale() is not None:
            return None
        if str(tf().getBackend()) not in CPU_BACKENDS:
            return None
        result = to_numpy_sync(forward(self._js_model, self._checked(x)), dispose=True)
        if self.memory is not None:
            self.memory.after_predict()
        return result

    async def predict_batched(self, x: Any, batch_size: int = 16) -> np.ndarray:
        """:meth:`predict` over a large array in chunks of ``batch_size``."""
        if batch_size < 1:
            raise InvalidInput("batch_size must be >= 1")
        arr = self.check_input(x)
        parts = [await self.predict(arr[i : i + batch_size]) for i in range(0, arr.shape[0], batch_size)]
        return np.concatenate(parts, axis=0)


async def predict_js(js_model: Any, x: Any) -> np.ndarray:
    """One forward pass of a TF.js model on a float32 array or tensor; the output is read back and disposed.

    A tensor input stays the caller's. Raises :class:`BackendLost` when the backend
    is lost during the call, :class:`JSError` for other TF.js errors.
    """

    return await to_numpy(forward(js_model, x), dispose=True)


def forward(js_model: Any, x: Any) -> Any:
    """One forward pass of a TF.js model on a float32 array or tensor: the output tensor, for the caller to read
    and dispose (intermediate tensors are freed). :class:`BackendLost` or :class:`JSError` on failure."""
    try:
        with tidy("pyapp.predict") as scope:
            output: Any = scope.keep(js_model.predict(x if not isinstance(x, np.ndarray) else to_tensor(x)))
            return output
    except JsException as exc:
        lost = runtime.backend_lost()
        if lost is not None:
            raise BackendLost(lost) from None
        raise JSError(f"predict: {error_message(exc)}") from None


def dims(shape: Any) -> tuple[int | None, ...]:
    """A TF.js shape as a tuple, None for a free dimension (layers models say null, graph models -1).

    >>> dims([None, 224, 224, 3]), dims([-1, 5])
    ((None, 224, 224, 3), (None, 5))
    """
    return tuple(None if d is None or int(d) < 0 else int(d) for d in shape)


def _shape_of(info: Any) -> tuple[int | None, ...]:
    """The shape of a model input/output, () when it declares none (some graph models)."""
    shape = getattr(info, "shape", None)
    return () if shape is None else dims(shape)


def format_shape(shape: tuple[int | None, ...]) -> str:
    """A shape as error messages show it, ``N`` for a free dimension.

    >>> format_shape((None, 224, 224, 3))
    '(N, 224, 224, 3)'
    """
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


# --------------------------------------------------------------------------- display


def model_rows(model: Model) -> list[tuple[str, Any]]:
    """(name, value) rows summarising a loaded :class:`~pyapp.model.Model`."""
    info = model.load_info
    manifest = model.manifest
    rows: list[tuple[str, Any]] = [
        ("model", manifest.name),
        ("state", model.state.value),
        ("variant", info.variant),
        ("input", format_shape(model.input_shape)),
        ("output", format_shape(model.output_shape)),
    ]
    if manifest.labels:
        shown = ", ".join(manifest.labels[:8]) + (", ..." if len(manifest.labels) > 8 else "")
        rows.append(("labels", f"{len(manifest.labels)}: {shown}"))
    rows += [
        ("weights fetched", fmt_bytes(info.bytes)),
        ("fetch", f"{info.fetch_ms:.0f} ms"),
        ("build", f"{info.build_ms:.0f} ms"),
        ("warm-up", None if info.warmup_ms is None else f"{info.warmup_ms:.0f} ms"),
    ]
    rows += [(f"skipped {name}", why) for name, why in info.attempts.items()]
    if model.recoveries:
        rows.append(("reloaded after", "; ".join(model.recoveries)))
    if model.source:
        rows.append(("source", model.source))
    return rows


def model_html(model: Model) -> str:
    return table_html(model_rows(model), f"Model {model.manifest.name}", "pyapp-model")
