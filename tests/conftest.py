"""Fixtures: a test server over the real built site, one Chromium, one booted page.

The page is booted once per session (Pyodide, numpy, Pillow, TF.js, pyapp);
tests run Python inside it through :mod:`harness`. Browser tests are marked
``browser``; ``-m "not browser"`` runs the host tests alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The apps' own pure modules (web/ui.py, web/session.py), as their workers import them: by file name.
sys.path.append(str(ROOT / "web"))

from harness import CHROMIUM_FLAGS, Pyodide, chromium_path, serving  # noqa: E402

import serve  # noqa: E402

BACKENDS = ("wasm", "webgl", "cpu")
#: For tests that run the whole model many times: the plain-JS cpu backend takes ~1.4 s a MobileNetV2
#: prediction here, and is TF.js's reference kernels; its agreement with wasm and webgl is tested on its own
#: (test_model.py::test_results_agree_across_backends), and so are tensors, memory and errors on it.
MODEL_BACKENDS = ("wasm", "webgl")
#: WebGPU, first in the app's default chain, has a real adapter here only in a Chromium started with
#: --enable-unsafe-webgpu (SwiftShader's Vulkan; ~2-4 s a MobileNetV2 prediction). It runs in a browser and
#: page of its own (``pyodide_webgpu``), so that the shared page goes on testing the chain where WebGPU is
#: missing. A test takes part by naming it among its backends: the core, model, parity and leak tests do.
WEBGPU = "webgpu"
WEBGPU_FLAGS = [*CHROMIUM_FLAGS, "--enable-unsafe-webgpu"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: runs in headless Chromium")
    config.addinivalue_line("markers", "leaks_allowed(reason): the test may leave tensors or proxies in the page")
    config.addinivalue_line(
        "markers", "serial: measures timing, so runs alone after the parallel run (tools/test.sh), never beside a test"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "pyodide" in names or "browser" in names:
            item.add_marker(pytest.mark.browser)
        # Under pytest-xdist (tools/test.sh runs two workers) tests go to whichever worker is free, and each
        # worker has its own Chromium, server and shared Pyodide page (a 38 s boot, paid twice). Measured:
        # 2,369 s of tests in 1,210 s on two workers, 98% of a perfect split. No test relies on another's
        # having run in the same process (the cross-engine comparison measures Chromium itself if need be).


@pytest.fixture(scope="session")
def built() -> None:
    """web/vendor and models/ are up to date (the real asset build)."""
    import pyapp_build

    pyapp_build.build()


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory the test server serves at /__scratch__/ (for broken models, test files)."""
    return tmp_path_factory.mktemp("scratch")


@pytest.fixture(scope="session")
def server_url(built: None, scratch: Path) -> Iterator[str]:
    mounts = {
        **serve.default_mounts(),
        "/__tests__/": ROOT / "tests" / "browser",
        "/__scratch__/": scratch,
        # Served like the app (with its CSP): pages that check what the policy allows.
        "/__probe__/": ROOT / "tests" / "browser" / "probe",
    }
    # The app's pages get every security header (its CSP included); the test pages use inline scripts.
    with serving(mounts, csp_exempt=("/__tests__/",)) as url:
        yield url


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    """One headless Chromium for the session (tests needing other flags launch their own)."""
    instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def pyodide_session(browser: Any, server_url: str) -> Iterator[Pyodide]:
    context = browser.new_context()
    handle = Pyodide.boot(context.new_page(), server_url)
    # Load the shared classifiers and run each once: what that caches for the page's life (JS
    # objects that enter Pyodide's reference table on first use, compiled kernels) is then in place
    # before the first test, and the leak check after each test sees only what the test left.
    handle.run(
        """
import testutil
photo = await testutil.fetch("/vendor/samples/coffee.png")
for backend in ("webgl", "cpu", "wasm"):
    await (await testutil.classifier(backend)).classify(photo)
""",
        timeout=600,
    )
    yield handle
    context.close()


def _own_browser_page(playwright: Any, server_url: str, flags: list[str], backends: str) -> Iterator[Pyodide]:
    """The harness page in a Chromium of its own (``flags``), with the shared classifiers of ``backends`` (a
    tuple's source) loaded and run once, as the session page's are."""
    instance = playwright.chromium.launch(executable_path=chromium_path(), args=flags)
    handle = Pyodide.boot(instance.new_context().new_page(), server_url)
    handle.run(
        f"""
import testutil
photo = await testutil.fetch("/vendor/samples/coffee.png")
for backend in {backends}:
    await (await testutil.classifier(backend)).classify(photo)
""",
        timeout=600,
    )
    yield handle
    instance.close()


@pytest.fixture(scope="session")
def pyodide_webgpu(playwright: Any, server_url: str) -> Iterator[Pyodide]:
    """The harness page in a Chromium with WebGPU, its shared webgpu classifier loaded and run once."""
    yield from _own_browser_page(playwright, server_url, WEBGPU_FLAGS, '("webgpu", "wasm")')


@pytest.fixture(scope="session")
def camera_flags(built: None, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Chromium's flags for a camera that shows real images, a second each, at 60 fps, looping
    (pyapp_build/camera.py: a cat, then a rocket; 640x480)."""
    from pyapp_build.camera import scene_images, write_scenes

    video = write_scenes(tmp_path_factory.mktemp("camera") / "scenes.y4m", scene_images(), fps=60)
    return [*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={video}"]


@pytest.fixture(scope="session")
def camera_page(playwright: Any, server_url: str, camera_flags: list[str]) -> Iterator[Pyodide]:
    """The harness page in a Chromium whose camera shows :func:`camera_flags`' scenes, with the shared wasm
    and webgl classifiers loaded."""
    yield from _own_browser_page(playwright, server_url, camera_flags, '("webgl", "wasm")')


@pytest.fixture
def pyodide(request: pytest.FixtureRequest) -> Pyodide:
    """The booted page; every test gets the same Python interpreter (the WebGPU page's, on webgpu)."""
    callspec = getattr(request.node, "callspec", None)
    on_webgpu = callspec is not None and callspec.params.get("backend") == WEBGPU
    handle: Pyodide = request.getfixturevalue("pyodide_webgpu" if on_webgpu else "pyodide_session")
    return handle


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, pyodide: Pyodide) -> str:
    """Each browser test that asks for it runs once per backend, that backend active."""
    name: str = request.param
    got = pyodide.run(f"import pyapp\nrt = await pyapp.init(backends=({name!r},))\n__value__ = rt.backend")
    assert got == name
    return name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """After every test that ran Python in the shared page: no tensor, PyProxy or JS reference left behind.

    As Pyodide's own test suite does after each browser test. What the shared classifiers and
    backends hold is counted apart (tests/browser/testutil.py). A test that must leave something
    says so with ``@pytest.mark.leaks_allowed("why")``.
    """
    handle = getattr(item, "funcargs", {}).get("pyodide")
    if not isinstance(handle, Pyodide) or item.get_closest_marker("leaks_allowed"):
        return (yield)
    before = handle.run("import testutil\n__value__ = await testutil.leaks()")
    result = yield
    after = handle.run("import testutil\n__value__ = await testutil.leaks()")
    grown = {k: after[k] - before[k] for k in after if after[k] > before[k]}
    if grown:
        raise AssertionError(f"left behind in the page: {grown} (before {before}, after {after})")
    return result


@pytest.fixture(scope="module")
def playground(browser: Any, server_url: str) -> Any:
    """The playground page, started (Python, TF.js and the teach panel ready); one per test module (a
    boot is ~10 s here): each test starts from the namespace state it needs (``#reset``), as a
    developer's session would go on."""
    from harness import open_page

    context, page = open_page(
        browser,
        server_url + "playground.html",
        "#playground[data-ready='true']",
        viewport={"width": 1280, "height": 1000},
        timeout_ms=300_000,
    )
    yield page
    context.close()
