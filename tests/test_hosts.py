"""pyapp in the hosts where Python runs in a browser, installed from its wheel as a user would.

Each test opens a fresh page of its own (tests/browser/hosts/): nothing of pyapp or TF.js is
on it until the test's Python installs the wheel with micropip and calls ``pyapp.init()``,
which loads TF.js itself: from the site's copy, a URL given by the caller, or the CDN with
Subresource Integrity (here the "CDN" is pointed at the test server, with the real hashes).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BrowserPythonError, serving

import pyapp_build

pytestmark = pytest.mark.browser

HOSTS = {
    "pyodide-page": "__tests__/hosts/pyodide.html",
    "pyodide-module-worker": "__tests__/hosts/pyodide.html?worker=module",
    "pyscript-page": "__tests__/hosts/pyscript.html?wheel={wheel}",
    "pyscript-worker": "__tests__/hosts/pyscript-worker.html?wheel={wheel}",
}


#: How long one step may take (Playwright's evaluate has no timeout of its own).
STEP_MS = 180_000


def _within(promise: str) -> str:
    """A JS function awaiting ``promise`` (an expression, ``arg`` in scope), or failing after STEP_MS."""
    timeout = f"new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in {STEP_MS} ms')), {STEP_MS}))"
    return f"arg => Promise.race([{promise}, {timeout}])"


@pytest.fixture
def fresh(browser: Any) -> Iterator[Any]:
    """A new browser context per page: an empty HTTP cache, as on a first visit."""
    contexts: list[Any] = []

    def open_page(url: str, ready: str = "hostReady") -> Any:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(STEP_MS)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.console = []
        page.on("console", lambda msg: page.console.append(f"{msg.type}: {msg.text}"))
        page.goto(url)
        if ready:
            page.evaluate(_within(ready))
        return page

    yield open_page
    for context in contexts:
        context.close()


def run(page: Any, code: str) -> tuple[Any, float]:
    """Run Python on a hosts/pyodide.html page (or its worker): its ``__result__`` (JSON) and the page's clock."""
    try:
        out = page.evaluate(_within("runPython(arg)"), textwrap.dedent(code))
    except Exception as exc:
        raise AssertionError(f"{exc}\nbrowser console:\n" + "\n".join(page.console[-30:])) from None
    if not out["ok"]:
        raise BrowserPythonError("Python in the browser raised:\n" + out["error"])
    result = out.get("result")
    return (json.loads(result) if result else None), float(out["page_ms"])


def _wheel_url(server_url: str) -> str:
    return f"{server_url}vendor/wheels/{pyapp_build.wheel_name()}"


def _classify_code(server_url: str) -> str:
    return f"""
    from pyodide.http import pyfetch
    source = await (await pyfetch("/__tests__/hosts/classify.py")).string()
    ns = {{}}
    exec(compile(source, "classify.py", "exec"), ns)
    __result__ = ns["as_json"](await ns["classify"]({_wheel_url(server_url)!r}, {server_url!r}))
    """


@pytest.mark.parametrize("host", list(HOSTS))
def test_wheel_installs_and_classifies_in_each_host(fresh: Any, server_url: str, host: str) -> None:
    """micropip.install(wheel URL), pyapp.init() (loading TF.js itself), a classification: in four hosts."""
    url = server_url + HOSTS[host].format(wheel=f"/vendor/wheels/{pyapp_build.wheel_name()}")
    if host.startswith("pyscript"):
        page = fresh(url, ready="")
        result = page.evaluate(_within("hostResult"))
        assert "error" not in result, result.get("error")
        ms = result["page_ms"]
    else:
        page = fresh(url)
        result, ms = run(page, _classify_code(server_url))
    print(f"\n[hosts] {host}: {ms:.0f} ms from page load to the first classification ({result['backend']})")
    assert result["top"][0][0] == "Neutral"
    assert 0.5 < result["top"][0][1] <= 1.0
    assert len(result["top"]) == 5
    assert result["tfjs_source"] == "site", "TF.js was not on the page: pyapp loaded the site's copy"
    assert result["tfjs_version"] == "4.22.0"
    assert result["backend"] == "wasm", "webgpu is missing and SwiftShader WebGL is passed over here"
    assert "site-packages/pyapp/" in result["pyapp_file"], "imported from the installed wheel"
    assert result["distribution"] == "0.1.0"
    worker = "worker" in host
    assert result["global_scope"] == ("DedicatedWorkerGlobalScope" if worker else "Window")
    assert page.errors == []


def test_classic_worker_loads_tfjs_with_import_scripts_from_the_callers_url(fresh: Any, server_url: str) -> None:
    """In a classic worker TF.js comes in through importScripts; ``tfjs_url=`` wins over the site's copy,
    and a URL that does not answer is a BackendUnavailable naming it and the HTTP status."""
    page = fresh(server_url + "__tests__/hosts/pyodide.html?worker=classic")
    result, _ = run(
        page,
        f"""
        import json, js, micropip
        from pyodide.ffi import to_js
        await micropip.install({_wheel_url(server_url)!r})
        import pyapp
        from pyapp.errors import BackendUnavailable
        try:
            await pyapp.init(backends=("wasm",), tfjs_url="/nowhere/tfjs/")
        except BackendUnavailable as exc:
            error = str(exc)
        else:
            raise AssertionError("loaded TF.js from a folder that does not exist")
        assert getattr(js, "tf", None) is None
        rt = await pyapp.init(backends=("wasm", "cpu"), tfjs_url="/vendor/tfjs")
        y = js.tf.tensor(to_js([1.0, 2.0, 3.0])).square().sum()
        total = float((await y.data())[0])
        y.dispose()
        wasm = [str(e.name) for e in js.performance.getEntriesByType("resource") if "tfjs-backend" in str(e.name)]
        __result__ = json.dumps({{"error": error, "backend": rt.backend, "source": rt.tfjs_source, "total": total,
                                 "scope": str(js.globalThis.constructor.name), "wasm": wasm,
                                 "module": hasattr(js, "document")}})
        """,
    )
    assert result["scope"] == "DedicatedWorkerGlobalScope"
    assert result["error"].startswith(f"cannot load TensorFlow.js from {server_url}nowhere/tfjs/tf.min.js: HTTP 404")
    assert result["source"] == "caller"
    assert result["backend"] == "wasm"
    assert result["total"] == 14.0
    assert result["wasm"], "the wasm binary was fetched"
    assert all(u.startswith(f"{server_url}vendor/tfjs/") for u in result["wasm"]), result["wasm"]


def _cdn_patch(server_url: str, tamper: str = "") -> str:
    """Python that points the pinned "CDN" URLs at the test server, keeping the real SRI (or spoiling one)."""
    return f"""
    import pyapp._tfjs_files as files
    pinned = dict(files.FILES)
    files.FILES = {{name: ({server_url!r} + "vendor/tfjs/" + name, sri) for name, (url, sri) in pinned.items()}}
    if {tamper!r}:
        files.FILES[{tamper!r}] = (files.FILES[{tamper!r}][0], "sha384-" + "A" * 64)
    """


def test_cdn_fallback_pins_every_file_with_subresource_integrity(fresh: Any, server_url: str) -> None:
    """No tf and no vendor/tfjs/ at the site root: TF.js comes from the pinned CDN URLs, each <script>
    carrying its SRI, which the browser enforces; a file that does not match is refused by name.
    Also: ``pyodide.loadPackage("pyapp-tfjs")`` finds pyapp by name in the site's pyodide-lock.json."""
    page = fresh(server_url + "__tests__/hosts/pyodide.html")
    code = (
        """
    import json, js, pyodide_js
    from pyodide.ffi import to_js
    await pyodide_js.loadPackage("pyapp-tfjs")
    import pyapp
    from pyapp.errors import BackendUnavailable
    js.globalThis.PYAPP_ROOT = js.location.origin + "/__scratch__/no-site-copy/"
    """
        + _cdn_patch(server_url, tamper="tf.min.js")
        + """
    try:
        await pyapp.init(backends=("wasm",))
    except BackendUnavailable as exc:
        error = str(exc)
    else:
        raise AssertionError("a file that fails its SRI was run")
    files.FILES = {name: (url, pinned[name][1]) for name, (url, _) in files.FILES.items()}
    rt = await pyapp.init(backends=("wasm",))
    scripts = [[str(s.src), str(s.integrity), str(s.crossOrigin)] for s in js.document.querySelectorAll("script[src]")]
    y = js.tf.tensor(to_js([1.0, 2.0])).add(1).sum()
    total = float((await y.data())[0])
    y.dispose()
    __result__ = json.dumps({"error": error, "source": rt.tfjs_source, "backend": rt.backend, "scripts": scripts,
                             "total": total, "pinned": {k: v[1] for k, v in pinned.items()},
                             "file": pyapp.__file__})
    """
    )
    result, _ = run(page, code)
    assert "site-packages/pyapp/" in result["file"]
    url = f"{server_url}vendor/tfjs/tf.min.js"
    assert result["error"].startswith(f"cannot load TensorFlow.js from {url}: Subresource Integrity mismatch")
    assert result["source"] == "cdn"
    assert result["backend"] == "wasm"
    assert result["total"] == 5.0
    pinned = result["pinned"]
    scripts = {src.rsplit("/", 1)[1]: (integrity, cors) for src, integrity, cors in result["scripts"]}
    assert scripts["tf.min.js"] == (pinned["tf.min.js"], "anonymous")
    assert scripts["tf-backend-wasm.min.js"] == (pinned["tf-backend-wasm.min.js"], "anonymous")
    assert "tf-backend-webgpu.min.js" not in scripts, "only the bundles of the backends asked for"
    # The pins are the hashes of the files the site serves (the build computed them from the same bytes).
    for name, integrity in pinned.items():
        assert integrity == pyapp_build.jslibs.sri((pyapp_build.VENDOR / "tfjs" / name).read_bytes()), name


def test_module_worker_imports_tfjs_and_checks_its_integrity(fresh: Any, server_url: str) -> None:
    """A module worker has no importScripts: TF.js comes in through import(); pinned files are fetched with
    their SRI (a spoiled pin is refused by name) and run from the checked bytes."""
    page = fresh(server_url + "__tests__/hosts/pyodide.html?worker=module")
    code = (
        f"""
    import json, js, micropip
    from pyodide.ffi import to_js
    await micropip.install({_wheel_url(server_url)!r})
    import pyapp
    from pyapp.errors import BackendUnavailable
    js.globalThis.PYAPP_ROOT = {server_url!r} + "__scratch__/no-site-copy/"
    """
        + _cdn_patch(server_url, tamper="tf.min.js")
        + """
    try:
        await pyapp.init(backends=("wasm",))
    except BackendUnavailable as exc:
        error = str(exc)
    else:
        raise AssertionError("a file that fails its SRI was run")
    files.FILES = {name: (url, pinned[name][1]) for name, (url, _) in files.FILES.items()}
    rt = await pyapp.init(backends=("wasm",))
    y = js.tf.tensor(to_js([2.0, 3.0])).mul(2).sum()
    total = float((await y.data())[0])
    y.dispose()
    __result__ = json.dumps({"error": error, "source": rt.tfjs_source, "backend": rt.backend, "total": total,
                             "threads": rt.wasm_threads, "importScripts": hasattr(js, "importScripts")})
    """
    )
    result, _ = run(page, code)
    url = f"{server_url}vendor/tfjs/tf.min.js"
    assert result["error"].startswith(f"cannot load TensorFlow.js from {url}: Subresource Integrity mismatch")
    assert result["source"] == "cdn"
    assert result["backend"] == "wasm"
    assert result["total"] == 10.0


def test_the_pages_own_tf_and_wasm_paths_are_respected(fresh: Any, server_url: str, scratch: Path) -> None:
    """A page that loaded TF.js and set its WASM paths itself keeps both: pyapp neither loads another
    TF.js nor points the binaries elsewhere."""
    elsewhere = scratch / "wasm-of-the-host"
    elsewhere.mkdir(exist_ok=True)
    for name in ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"):
        shutil.copyfile(pyapp_build.VENDOR / "tfjs" / name, elsewhere / name)
    page = fresh(server_url + "__tests__/hosts/pyodide.html?preload=tfjs&wasm=/__scratch__/wasm-of-the-host/")
    result, _ = run(
        page,
        f"""
        import json, js, micropip
        from pyodide.ffi import to_js
        await micropip.install({_wheel_url(server_url)!r})
        import pyapp
        before = js.tf
        rt = await pyapp.init(backends=("wasm",))
        wasm = [str(e.name) for e in js.performance.getEntriesByType("resource") if "tfjs-backend" in str(e.name)]
        scripts = [str(s.src) for s in js.document.querySelectorAll("script[src]")]
        __result__ = json.dumps({{"source": rt.tfjs_source, "backend": rt.backend, "wasm": wasm, "scripts": scripts,
                                 "same_tf": js.tf == before}})
        """,
    )
    assert result["source"] == "page"
    assert result["same_tf"] is True
    assert result["backend"] == "wasm"
    assert result["wasm"], "the wasm backend fetched its binary"
    assert all("/__scratch__/wasm-of-the-host/" in u for u in result["wasm"]), result["wasm"]
    assert sorted(s.rsplit("/", 1)[1] for s in result["scripts"]) == ["tf-backend-wasm.min.js", "tf.min.js"]


# --------------------------------------------------------------------------- the README's own pages

#: README.md, "Use pyapp in your own page or notebook": each file follows a ``<!-- example file: NAME -->`` line.
_EXAMPLE = re.compile(r"^<!-- example file: (\S+) -->\n```\w*\n(.*?)^```$", re.S | re.M)


def readme_examples() -> dict[str, str]:
    """The example files of the README, by name, exactly as printed there."""
    text = (pyapp_build.ROOT / "README.md").read_text(encoding="utf-8")
    return {name: body for name, body in _EXAMPLE.findall(text)}


README_PAGES = sorted(name for name in readme_examples() if name.endswith(".html"))


def test_the_readme_shows_four_hosts_with_this_builds_wheel() -> None:
    """The pages cover the four hosts, and name the wheel the build makes (a version bump updates them)."""
    examples = readme_examples()
    assert README_PAGES == ["pyodide-page.html", "pyodide-worker.html", "pyscript-page.html", "pyscript-worker.html"]
    assert "classify-worker.js" in examples
    for name, body in examples.items():
        if "pyscript" in name or name.endswith(".js"):
            assert f"vendor/wheels/{pyapp_build.wheel_name()}" in body, name


@pytest.fixture(scope="module")
def readme_site(built: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``serve.py build --out`` with the README's files added beside index.html, served with the site's headers
    (the README's pages run inline scripts: they go without its Content-Security-Policy, as a user's page does)."""
    import serve

    site = tmp_path_factory.mktemp("readme") / "site"
    assert serve.main(["build", "--out", str(site)]) == 0
    examples = readme_examples()
    for name, body in examples.items():
        (site / name).write_text(body, encoding="utf-8")
    with serving(serve.default_mounts(site), csp_exempt=tuple(f"/{n}" for n in examples)) as url:
        yield url


@pytest.mark.parametrize("name", README_PAGES)
def test_readme_page_classifies_as_written(fresh: Any, readme_site: str, name: str) -> None:
    """Each README page, unchanged, installs pyapp, loads TF.js through it and shows the photo's top class."""
    page = fresh(readme_site + name, ready="")
    deadline = time.monotonic() + STEP_MS / 1000
    # The examples show no errors of their own: a Python or JS error (PyScript logs its tracebacks to the
    # console) fails the test at once, with its text, instead of after the wait.
    while page.inner_text("#result") == "classifying…":
        failed = page.errors + [m for m in page.console if m.startswith("error:")]
        assert not failed, "\n".join(failed)
        assert time.monotonic() < deadline, f"no result in {STEP_MS} ms: " + "\n".join(page.console[-20:])
        page.wait_for_timeout(200)
    assert page.inner_text("#result") == "Neutral 0.93", page.console[-20:]
    assert page.errors == []
