"""Memory: what TF.js and Pyodide hold, leak assertions, and a cleanup policy.

Example (in the browser)::

    import pyapp
    from pyapp import memory
    memory.track_proxies()                    # count live PyProxies from now on
    print(memory.snapshot())                  # MemorySnapshot(backend=..., tensors=..., ...)
    classifier = await pyapp.ImageClassifier.load("models/nsfw-mobilenet-v2/manifest.json")
    photo = await pyapp.fetch.fetch_bytes("vendor/samples/coffee.png")
    with memory.assert_no_leaks():
        await classifier.classify(photo)      # LeakError if anything is left behind
    classifier.dispose()
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from pyapp._js import pyodide_js, tf
from pyapp.errors import InvalidInput, LeakError, StateError
from pyapp.notebook import fmt_bytes, table_html

log = logging.getLogger("pyapp.memory")


@dataclass(frozen=True)
class MemorySnapshot:
    """One reading of ``tf.memory()`` plus the WASM heaps and the live proxy count.

    ``gpu_bytes`` is set on webgl/webgpu; ``tf_wasm_heap_bytes`` on the wasm
    backend; ``live_proxies`` only after :func:`track_proxies`.
    """

    backend: str
    num_tensors: int
    num_bytes: int
    num_data_buffers: int
    gpu_bytes: int | None = None
    gpu_bytes_free: int | None = None
    tf_wasm_heap_bytes: int | None = None
    python_heap_bytes: int | None = None
    live_proxies: int | None = None
    unreliable: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON, charts)."""
        return asdict(self)

    def __repr__(self) -> str:
        return snapshot_text(self)

    def _repr_html_(self) -> str:
        """A table of the readings, bytes for people (Jupyter, the playground)."""
        return snapshot_html(self)


def from_tf_memory(info: dict[str, Any], backend: str, **extra: Any) -> MemorySnapshot:
    """Build a snapshot from ``tf.memory()`` converted to a dict (pure; host-testable).

    >>> from_tf_memory({"numTensors": 2, "numBytes": 8, "numDataBuffers": 2}, "cpu").num_bytes
    8
    """
    gpu = info.get("numBytesInGPUAllocated", info.get("numBytesInGPU"))
    return MemorySnapshot(
        backend=backend,
        num_tensors=int(info["numTensors"]),
        num_bytes=int(info["numBytes"]),
        num_data_buffers=int(info.get("numDataBuffers", 0)),
        gpu_bytes=None if gpu is None else int(gpu),
        gpu_bytes_free=None if info.get("numBytesInGPUFree") is None else int(info["numBytesInGPUFree"]),
        unreliable=bool(info.get("unreliable", False)),
        **extra,
    )


def _pyodide_module() -> Any:
    return pyodide_js._module


def track_proxies(enable: bool = True) -> None:
    """Start (or stop) counting live PyProxies (Pyodide's allocation tracing; small overhead)."""
    module = _pyodide_module()
    if enable:
        module.enable_pyproxy_allocation_tracing()
    else:
        module.disable_pyproxy_allocation_tracing()
        module.pyproxy_alloc_map.clear()


def live_proxies() -> int | None:
    """PyProxies alive now, or None when tracking is off and none were recorded."""
    size = int(_pyodide_module().pyproxy_alloc_map.size)
    return size


def snapshot() -> MemorySnapshot:
    """Read TF.js's and Pyodide's memory now; :class:`~pyapp.errors.StateError` before a backend is ready."""

    tfm = tf()
    engine = tfm.engine()
    # (Pyodide reads an undefined JS property as a missing attribute.)
    if getattr(engine, "backendInstance", None) is None or getattr(engine, "pendingBackendInit", None) is not None:
        # Else TF.js would start its highest-priority backend here, and fail for an async one (webgpu).
        raise StateError("no TF.js backend is ready yet: `await pyapp.init()` before reading memory")
    info = tfm.memory().to_py()
    backend = str(tfm.getBackend())
    wasm_heap = None
    if backend == "wasm":
        wasm_heap = int(tfm.backend().wasm.HEAPU8.length)
    return from_tf_memory(
        dict(info),
        backend,
        tf_wasm_heap_bytes=wasm_heap,
        python_heap_bytes=int(_pyodide_module().HEAPU8.length),
        live_proxies=live_proxies(),
    )


def leak_report(before: MemorySnapshot, after: MemorySnapshot) -> list[str]:
    """What grew between two snapshots (tensors, bytes, proxies); empty when nothing did.

    >>> a = from_tf_memory({"numTensors": 1, "numBytes": 4}, "cpu", live_proxies=3)
    >>> b = from_tf_memory({"numTensors": 3, "numBytes": 12}, "cpu", live_proxies=3)
    >>> leak_report(a, b)
    ['2 tensors (8 bytes) left']
    """
    problems = []
    tensors = after.num_tensors - before.num_tensors
    nbytes = after.num_bytes - before.num_bytes
    if tensors > 0 or nbytes > 0:
        problems.append(f"{tensors} tensors ({nbytes} bytes) left")
    if before.live_proxies is not None and after.live_proxies is not None:
        proxies = after.live_proxies - before.live_proxies
        if proxies > 0:
            problems.append(f"{proxies} PyProxies left alive")
    return problems


class assert_no_leaks:  # noqa: N801 - reads as a statement: ``with assert_no_leaks():``
    """Raise :class:`LeakError` if the block leaves tensors, tensor bytes or proxies behind.

    Example (in the browser)::

        import numpy as np
        from pyapp.memory import assert_no_leaks
        from pyapp.model import Model
        model = await Model.load("models/nsfw-mobilenet-v2/manifest.json")
        with assert_no_leaks():
            y = await model.predict(np.zeros((1, 224, 224, 3), np.float32))
        model.dispose()
    """

    def __init__(self) -> None:
        self.before: MemorySnapshot | None = None
        self.after: MemorySnapshot | None = None

    def __enter__(self) -> assert_no_leaks:
        gc.collect()
        self.before = snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        gc.collect()
        self.after = snapshot()
        assert self.before is not None
        problems = leak_report(self.before, self.after)
        if problems and exc[0] is None:
            raise LeakError("leak: " + "; ".join(problems) + f" (before {self.before}, after {self.after})")


@dataclass
class CleanupPolicy:
    """When :class:`MemoryGuard` cleans up: every ``every`` predictions, and whenever the
    GPU holds more than ``gpu_bytes`` (webgl keeps freed textures pooled; above this
    threshold they are deleted instead)."""

    every: int = 100
    gpu_bytes: int | None = 256 * 1024 * 1024
    history: int = 120

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InvalidInput("CleanupPolicy.every must be >= 1")
        if self.gpu_bytes is not None and self.gpu_bytes < 0:
            raise InvalidInput("CleanupPolicy.gpu_bytes must be >= 0 or None")


@dataclass
class MemoryGuard:
    """Counts predictions and cleans up by :class:`CleanupPolicy`; keeps recent snapshots.

    The production lesson behind it: long sessions leak through stray tensors
    and pooled GPU textures. The guard records a baseline once the model is
    ready and warns when tensors grow past it.
    """

    policy: CleanupPolicy = field(default_factory=CleanupPolicy)
    predictions: int = 0
    cleanups: int = 0
    baseline: MemorySnapshot | None = None
    samples: deque[MemorySnapshot] = field(default_factory=deque)

    def start(self) -> None:
        """Record the baseline (call when the model is loaded and warm)."""
        self.baseline = snapshot()
        self._apply_gpu_threshold()

    def _apply_gpu_threshold(self) -> None:
        tfm = tf()
        if self.policy.gpu_bytes is not None and str(tfm.getBackend()) == "webgl":
            tfm.env().set("WEBGL_DELETE_TEXTURE_THRESHOLD", self.policy.gpu_bytes)

    def after_predict(self) -> bool:
        """Count one prediction; clean up when the policy says so. True if it did."""
        self.predictions += 1
        due = self.predictions % self.policy.every == 0
        if not due and self.policy.gpu_bytes is not None:
            gpu = getattr(tf().memory(), "numBytesInGPU", None)
            due = gpu is not None and int(gpu) > self.policy.gpu_bytes
        if due:
            self.cleanup()
        return due

    def cleanup(self) -> MemorySnapshot:
        """Collect Python garbage (dropping JS references), enforce the GPU threshold, sample."""
        gc.collect()
        self._apply_gpu_threshold()
        now = snapshot()
        self.cleanups += 1
        self.samples.append(now)
        while len(self.samples) > self.policy.history:
            self.samples.popleft()
        if self.baseline is not None and now.num_tensors > self.baseline.num_tensors:
            log.warning(
                "%d tensors more than at start (%d bytes): something outside pyapp is not disposing its tensors",
                now.num_tensors - self.baseline.num_tensors,
                now.num_bytes - self.baseline.num_bytes,
            )
        return now


# --------------------------------------------------------------------------- display


def snapshot_rows(snap: MemorySnapshot) -> list[tuple[str, Any]]:
    """(name, value) rows of a memory snapshot, bytes for people, unset readings left out."""
    rows: list[tuple[str, Any]] = [
        ("backend", snap.backend),
        ("tensors", snap.num_tensors),
        ("tensor bytes", fmt_bytes(snap.num_bytes)),
        ("data buffers", snap.num_data_buffers),
    ]
    optional = {
        "GPU bytes": fmt_bytes(snap.gpu_bytes) if snap.gpu_bytes is not None else None,
        "GPU bytes free": fmt_bytes(snap.gpu_bytes_free) if snap.gpu_bytes_free is not None else None,
        "TF.js WASM heap": fmt_bytes(snap.tf_wasm_heap_bytes) if snap.tf_wasm_heap_bytes is not None else None,
        "Python heap": fmt_bytes(snap.python_heap_bytes) if snap.python_heap_bytes is not None else None,
        "live PyProxies": snap.live_proxies,
    }
    rows += [(k, v) for k, v in optional.items() if v is not None]
    if snap.unreliable:
        rows.append(("note", "TF.js says these numbers are unreliable (some data is not on the backend)"))
    return rows


def snapshot_text(snap: MemorySnapshot) -> str:
    """One line.

    >>> from pyapp.memory import from_tf_memory
    >>> snapshot_text(from_tf_memory({"numTensors": 3, "numBytes": 4096}, "wasm", live_proxies=2))
    'MemorySnapshot(backend=wasm, tensors=3, tensor bytes=4.0 KiB, data buffers=0, live PyProxies=2)'
    """
    return "MemorySnapshot(" + ", ".join(f"{k}={v}" for k, v in snapshot_rows(snap) if k != "note") + ")"


def snapshot_html(snap: MemorySnapshot) -> str:
    return table_html(snapshot_rows(snap), "Memory snapshot", "pyapp-memory")
