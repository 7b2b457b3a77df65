"""pyapp.memory in Chromium: snapshots, leak assertions that really catch leaks, cleanup policy, 1,000 runs flat."""

from __future__ import annotations

from typing import Any

from harness import run_in_pyodide

from pyapp.memory import from_tf_memory, leak_report


def test_leak_report_names_what_grew() -> None:
    a = from_tf_memory({"numTensors": 10, "numBytes": 400}, "webgl", live_proxies=5)
    b = from_tf_memory({"numTensors": 10, "numBytes": 400, "numBytesInGPU": 9}, "webgl", live_proxies=7)
    assert leak_report(a, b) == ["2 PyProxies left alive"]
    assert leak_report(a, a) == []
    assert b.gpu_bytes == 9


@run_in_pyodide
async def test_snapshot_fields_per_backend(pyodide: Any, backend: str) -> None:
    import numpy as np

    from pyapp import memory
    from pyapp.tensors import to_tensor

    before = memory.snapshot()
    t = to_tensor(np.zeros((10, 10), np.float32))
    t.dataSync()  # materialise on the GPU backends
    after = memory.snapshot()
    t.dispose()
    assert after.backend == backend
    assert after.num_tensors == before.num_tensors + 1
    assert after.num_bytes == before.num_bytes + 400
    assert after.python_heap_bytes > 0
    assert after.live_proxies is not None
    assert (after.gpu_bytes is not None) == (backend == "webgl")
    assert (after.tf_wasm_heap_bytes is not None) == (backend == "wasm")


@run_in_pyodide
def test_assert_no_leaks_catches_tensors_and_proxies(pyodide: Any, backend: str) -> None:
    """The guard itself must fail when something is left: a tensor, then a PyProxy."""
    import numpy as np
    from pyodide.ffi import create_proxy

    from pyapp.errors import LeakError
    from pyapp.memory import assert_no_leaks
    from pyapp.tensors import to_tensor

    leaked = None
    try:
        with assert_no_leaks():
            leaked = to_tensor(np.zeros((2, 3), np.float32))
    except LeakError as exc:
        assert "1 tensors (24 bytes) left" in str(exc)
    else:
        raise AssertionError("leaked tensor not reported")
    leaked.dispose()
    proxy = None
    try:
        with assert_no_leaks():
            proxy = create_proxy({"held": "by JS"})
    except LeakError as exc:
        assert "1 PyProxies left alive" in str(exc)
    else:
        raise AssertionError("leaked proxy not reported")
    proxy.destroy()
    with assert_no_leaks():
        to_tensor(np.zeros(1, np.float32)).dispose()


@run_in_pyodide
async def test_cleanup_policy_every_n_and_gpu_threshold(pyodide: Any, backend: str) -> None:
    import js
    import numpy as np
    import testutil

    from pyapp.memory import CleanupPolicy, MemoryGuard

    clf = await testutil.classifier(backend)
    saved = clf.model.memory
    clf.model.memory = MemoryGuard(CleanupPolicy(every=4, gpu_bytes=64 * 1024 * 1024))
    clf.model.memory.start()
    try:
        x = np.zeros((1, 224, 224, 3), np.float32)
        for _ in range(9):
            await clf.model.predict(x)
        guard = clf.model.memory
        assert guard.predictions == 9
        assert guard.cleanups == 2
        assert len(guard.samples) == 2
        assert guard.samples[-1].num_tensors == guard.baseline.num_tensors
        if backend == "webgl":
            assert js.tf.env().getNumber("WEBGL_DELETE_TEXTURE_THRESHOLD") == 64 * 1024 * 1024
    finally:
        clf.model.memory = saved


@run_in_pyodide(timeout=900)
async def test_thousand_classifications_leave_memory_unchanged(pyodide: Any) -> None:
    """1,000 classify() calls on wasm: tf.memory() tensors/bytes and the proxy count end where they began."""
    import gc

    import numpy as np
    import testutil

    from pyapp import memory
    from pyapp.images import decode

    clf = await testutil.classifier("wasm")
    photo = decode(await testutil.fetch("/vendor/samples/chelsea.png"))[:224, :224]
    await clf.classify(photo)
    gc.collect()
    before = memory.snapshot()
    for _ in range(1000):
        top = await clf.classify(photo)
    gc.collect()
    after = memory.snapshot()
    assert top[0][0] == "Neutral"
    assert (after.num_tensors, after.num_bytes) == (before.num_tensors, before.num_bytes)
    assert after.live_proxies == before.live_proxies
    assert np.isfinite(after.python_heap_bytes)


@run_in_pyodide(timeout=900)
async def test_repeated_classifications_flat_on_gpu_and_cpu(pyodide: Any) -> None:
    """The same check, shorter, where one prediction is slow (SwiftShader WebGL, plain-JS cpu)."""
    import gc

    import testutil

    from pyapp import memory

    for backend in ("webgl", "cpu"):
        clf = await testutil.classifier(backend)
        photo = await testutil.fetch("/vendor/samples/chelsea.png")
        await clf.classify(photo)
        gc.collect()
        before = memory.snapshot()
        for _ in range(30):
            await clf.classify(photo)
        gc.collect()
        after = memory.snapshot()
        assert (after.num_tensors, after.num_bytes, after.live_proxies) == (
            before.num_tensors,
            before.num_bytes,
            before.live_proxies,
        ), (backend, before, after)
