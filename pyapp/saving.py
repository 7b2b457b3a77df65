"""Saving TF.js layers models from Python: to IndexedDB (offline, survives reloads) or as files.

Files are the standard TF.js pair, ``NAME.json`` + ``NAME.weights.bin`` (the
names TF.js's own downloads use), which ``tf.loadLayersModel`` (and :func:`pyapp.training.load`)
read back on any page or host.

Example (in the browser)::

    from pyapp import saving
    from pyapp.layers import Dense
    from pyapp.training import Sequential, load

    model = Sequential([Dense(2, input_shape=(3,))])
    await model.save("indexeddb://tiny")                 # survives a reload, works offline
    print(await saving.list_saved())                     # {...'indexeddb://tiny': {...}}
    files = await model.to_files("tiny")                 # {'tiny.json': b'...', 'tiny.weights.bin': b'...'}
    again = await load(files)
    await saving.remove_saved("indexeddb://tiny")
    model.dispose()
    again.dispose()
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pyapp._js import JsException, create_proxy, error_message, js, tf
from pyapp.artifacts import ModelJson, encode_model_json, join_shards
from pyapp.errors import InvalidInput, ModelLoadError, PyAppError
from pyapp.modelcheck import MAX_MODEL_JSON_BYTES, parse_json

#: Where :func:`save` can write from Python (``downloads://`` needs a page, not a worker: use files).
SCHEMES = ("indexeddb://", "localstorage://")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SaveError(PyAppError):
    """A model could not be saved (storage full, blocked, or a bad destination)."""


def check_destination(url: str) -> str:
    """``url`` if it names a store :func:`save` can write, else :class:`InvalidInput`.

    >>> check_destination("indexeddb://digits-cnn")
    'indexeddb://digits-cnn'
    >>> check_destination("downloads://x")
    Traceback (most recent call last):
    ...
    pyapp.errors.InvalidInput: save to one of ('indexeddb://', 'localstorage://') followed by a name; \
to download, use to_files() (got 'downloads://x')
    """
    scheme = next((s for s in SCHEMES if url.startswith(s)), None)
    if scheme is None or not _NAME.match(url[len(scheme) :]):  # not check_name: this error says more
        raise InvalidInput(f"save to one of {SCHEMES} followed by a name; to download, use to_files() (got {url!r})")
    return url


def check_name(name: str) -> str:
    """``name`` if it can name a saved model or its files (letters, digits, ``.``, ``_``, ``-``).

    >>> check_name("digits-cnn")
    'digits-cnn'
    >>> check_name("../x")
    Traceback (most recent call last):
    ...
    pyapp.errors.InvalidInput: a model name is letters, digits, '.', '_' and '-' (at most 128), got '../x'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"a model name is letters, digits, '.', '_' and '-' (at most 128), got {name!r}")
    return name


def model_json(artifacts: Mapping[str, Any], shard: str = "weights.bin") -> bytes:
    """The ``model.json`` of saved artifacts (pure; host-testable): topology + one weights shard.

    >>> spec = json.loads(model_json({"modelTopology": {"a": 1}, "weightSpecs": [], "format": "layers-model"}))
    >>> spec["weightsManifest"]
    [{'paths': ['weights.bin'], 'weights': []}]
    """
    fields: dict[str, Any] = {"modelTopology": artifacts["modelTopology"]}
    for key in ("format", "generatedBy", "convertedBy", "trainingConfig", "userDefinedMetadata"):
        if artifacts.get(key) is not None:
            fields[key] = artifacts[key]
    return encode_model_json(fields, [([shard], artifacts.get("weightSpecs", []))])


def artifacts_from_files(files: Mapping[str, bytes]) -> tuple[dict[str, Any], bytes]:
    """(artifacts without weight data, weight bytes) from a model's ``.json`` and its shards, checked (pure).

    >>> files = {"m.json": model_json({"modelTopology": {}, "weightSpecs": [
    ...     {"name": "w", "shape": [2], "dtype": "float32"}]}, "m.weights.bin"), "m.weights.bin": bytes(8)}
    >>> artifacts, weights = artifacts_from_files(files)
    >>> [s["name"] for s in artifacts["weightSpecs"]], len(weights)
    (['w'], 8)
    """
    mj, weights = read_files(files)
    return mj.artifacts(), weights


def read_files(files: Mapping[str, bytes]) -> tuple[ModelJson, bytes]:
    """A model's ``.json``, checked, and its weight bytes, from the files :func:`to_files` gives (pure).

    ``files`` maps file names (folders ignored) to bytes: exactly one ``.json`` file and
    the weight files it names. model.json is checked as :mod:`pyapp.artifacts` says (shard
    paths, shapes, dtypes, sizes) before its shards are looked at.

    >>> read_files({"m.json": b'{"modelTopology": {}}'})[0].weights.total
    0
    """
    files = {name.rsplit("/", 1)[-1]: data for name, data in files.items()}
    json_names = [n for n in files if n.endswith(".json")]
    if len(json_names) != 1:
        raise ModelLoadError(f"expected one .json model file among the files, got {sorted(files)}")
    try:
        spec = parse_json(files[json_names[0]], json_names[0], MAX_MODEL_JSON_BYTES)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{json_names[0]} is not JSON or too large ({exc})") from None
    try:
        mj = ModelJson.from_dict(spec, json_names[0])
    except ModelLoadError as exc:
        if "no modelTopology" in str(exc):
            raise ModelLoadError("model.json has no modelTopology (not a TF.js layers model)") from None
        raise
    shards: list[bytes] = []
    for path in mj.weights.paths:
        name = path.rsplit("/", 1)[-1]
        if name not in files:
            raise ModelLoadError(f"{json_names[0]} names weight file {path!r}, which was not given")
        shards.append(files[name])
    return mj, join_shards(mj.weights, shards, json_names[0])


async def fetch_files(url: str) -> dict[str, bytes]:
    """A model.json at ``url`` and the shards it names, fetched from its folder only, each with a cap
    of the bytes its weight specs declare (checked before any shard is requested)."""
    from pyapp.model import fetch_bytes

    folder = url.rsplit("/", 1)[0] + "/" if "/" in url else ""
    name = url.rsplit("/", 1)[-1].split("?", 1)[0] or "model.json"
    if not name.endswith(".json"):
        name += ".json"
    model_json = await fetch_bytes(url, max_bytes=MAX_MODEL_JSON_BYTES)
    files = {name: model_json}
    for group in ModelJson.parse(model_json, url).weights.groups:
        left = group.nbytes
        for path in group.paths:
            if path.rsplit("/", 1)[-1] in files:
                raise ModelLoadError(f"{url}: two shards are named {path.rsplit('/', 1)[-1]!r}")
            data = await fetch_bytes(folder + path, max_bytes=left)
            left -= len(data)
            files[path.rsplit("/", 1)[-1]] = data
    return files


# --------------------------------------------------------------------------- browser side


async def save(js_model: Any, destination: str) -> dict[str, Any]:
    """Save a TF.js layers model to ``indexeddb://NAME`` or ``localstorage://NAME``; returns TF.js's info.

    Weights and topology only: the optimizer's state is not saved (TF.js leaks a tensor
    when it saves it). :class:`~pyapp.training.TrainableModel` keeps its compile settings
    in the model's metadata, so a reloaded model is compiled again with them.
    """

    check_destination(destination)
    try:
        result = await js_model.save(destination)
    except JsException as exc:
        raise SaveError(f"could not save to {destination}: {error_message(exc)}") from None
    info: dict[str, Any] = result.modelArtifactsInfo.to_py()
    return info


async def to_files(js_model: Any, name: str = "model") -> dict[str, bytes]:
    """The model as ``{"NAME.json": ..., "NAME.weights.bin": ...}``, the files ``tf.loadLayersModel`` reads.

    What is kept is as for :func:`save`.
    """

    tfm = tf()
    captured: dict[str, Any] = {}

    def handler(artifacts: Any) -> Any:
        captured["json"] = json.loads(str(js.JSON.stringify(artifacts)))
        data = tfm.io.CompositeArrayBuffer.join(artifacts.weightData)
        captured["weights"] = bytes(js.Uint8Array.new(data).to_bytes())
        return js.Promise.resolve(js.Object.fromEntries([["modelArtifactsInfo", js.Object.new()]]))

    check_name(name)
    proxy = create_proxy(handler)
    try:
        await js_model.save(tfm.io.withSaveHandler(proxy))
    except JsException as exc:
        raise SaveError(f"could not serialise the model: {error_message(exc)}") from None
    finally:
        proxy.destroy()
    shard = f"{name}.weights.bin"
    return {f"{name}.json": model_json(captured["json"], shard), shard: captured["weights"]}


async def load_layers(source: str | Mapping[str, bytes]) -> tuple[Any, str]:
    """A TF.js layers model and a name for it, from ``indexeddb://NAME``, a URL of a ``model.json``, or files from
    :func:`to_files`: what :func:`pyapp.training.load` wraps. Raises :class:`ModelLoadError` saying why not.
    """
    from pyapp.model import memory_handler

    tfm = tf()
    try:
        if isinstance(source, str):
            if source.startswith(SCHEMES):
                check_destination(source)
                url = source
                js_model = await tfm.loadLayersModel(url)
            else:
                # Fetched here, not by TF.js: so that model.json is checked before any shard is
                # requested, and no shard path can point outside the model's folder.
                artifacts, weights = artifacts_from_files(await fetch_files(source))
                js_model = await tfm.loadLayersModel(memory_handler(artifacts, weights))
            name = source
        elif isinstance(source, Mapping):
            artifacts, weights = artifacts_from_files(source)
            js_model = await tfm.loadLayersModel(memory_handler(artifacts, weights))
            name = "files"
        else:
            raise InvalidInput(f"load takes a URL or a dict of files, not {type(source).__name__}")
    except JsException as exc:
        raise ModelLoadError(
            f"could not load {source if isinstance(source, str) else 'the files'}: {error_message(exc)}"
        ) from None
    return js_model, name


def __getattr__(name: str) -> Any:
    """``pyapp.saving.load``, deprecated: :func:`pyapp.training.load` (the model it returns is training's, so
    loading lives there and this module, below training, imports nothing of it)."""
    if name == "load":
        import importlib
        import warnings

        warnings.warn(
            "pyapp.saving.load is deprecated; use pyapp.training.load (the same arguments and result)",
            DeprecationWarning,
            stacklevel=2,
        )
        load: Any = importlib.import_module("pyapp.training").load
        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def list_saved() -> dict[str, dict[str, Any]]:
    """Models saved in this browser: URL -> TF.js's info (sizes, date)."""

    listed: dict[str, dict[str, Any]] = (await tf().io.listModels()).to_py()
    return {url: dict(info) for url, info in listed.items()}


async def remove_saved(url: str) -> None:
    """Delete a saved model; :class:`ModelLoadError` if there is none by that name."""

    check_destination(url)
    try:
        await tf().io.removeModel(url)
    except JsException as exc:
        raise ModelLoadError(f"could not remove {url}: {error_message(exc)}") from None
