"""pyapp in a real JupyterLite notebook, run cell by cell in headless Chromium.

The site is built from PyPI's ``jupyterlite-core`` and ``jupyterlite-pyodide-kernel``
(pyapp_build/lite.py) with the build's own Pyodide, and served at ``/lite/`` beside pyapp's
site. The notebook's cells are run with JupyterLab's own ``notebook:run-cell`` command, as a
user's Shift+Enter does, each bounded in time. Every request the browser context reports must
go to the test server (any other is aborted and listed), and the server's own log must show
Pyodide, the kernel's wheels, pyapp, TF.js and the model coming from it.

The site is served without the cross-origin isolation headers (COOP/COEP) the app's pages
get. Isolated, jupyterlite-pyodide-kernel 0.6.1 talks to its worker through coincident 1.2.3,
whose main-thread wait assumes ``Atomics.waitAsync`` always returns a promise; when the worker
answers first it returns ``{async: false, value: "not-equal"}``, and the page throws
``TypeError: L(...).value.then is not a function`` in ``executeRequest``: the cell's output is
shown, but its ``execute_reply`` never comes and the kernel stays busy. Measured here: 3 of 7
isolated runs hung that way (at their 1st, 2nd and 6th cell); none of 10 runs without isolation
(89 cells) did. Without isolation the kernel uses its comlink worker, as on hosts that send no such
headers (GitHub Pages). Every released jupyterlite-pyodide-kernel up to 0.8.5 bundles coincident
1.2.3; coincident 4.1.1 came with 0.9.0a1 (Pyodide 314), far from Pyodide 0.27.
"""

from __future__ import annotations

import ast
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import pyapp_build
import serve
from pyapp_build import lite

#: How long the app may take to show the notebook, and each cell to finish. The first cell also waits for
#: the kernel to start (Pyodide and the ~20 wheels the kernel installs): ~6 s alone on this 2-core machine.
OPEN_MS = 120_000
CELL_MS = {0: 240_000}
DEFAULT_CELL_MS = 120_000


@pytest.fixture(scope="module")
def lite_site(built: None) -> Path:
    return lite.build()


@contextmanager
def serving_with_lite(site: Path, requests: list[str]) -> Iterator[str]:
    """pyapp's site at ``/`` (every header) and the JupyterLite site at ``/lite/`` (no isolation headers, no CSP:
    JupyterLab's pages are not written for the app's policy); ``requests`` collects every path served."""
    mounts: Mapping[str, Path] = {**serve.default_mounts(), lite.MOUNT: site}
    server = serve.make_server("127.0.0.1", 0, mounts, quiet=True, csp_exempt=(lite.MOUNT,))
    base: Any = server.RequestHandlerClass

    class Handler(base):  # type: ignore[misc, valid-type]
        def _headers(self) -> Mapping[str, str]:
            requests.append(self.path)
            headers: Mapping[str, str] = super()._headers()
            if self.path.startswith(lite.MOUNT):
                # See the module's docstring: isolated, this kernel's worker bridge loses replies.
                return {k: v for k, v in headers.items() if not k.startswith("Cross-Origin-")}
            return headers

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()


#: Runs the active cell with JupyterLab's command, which settles once the kernel has replied; fails instead
#: of waiting for ever when it does not. Returns the cell's outputs as the notebook records them.
RUN_CELL = """async ([index, ms]) => {
    const panel = window.jupyterapp.shell.currentWidget;
    panel.content.activeCellIndex = index;
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(() => resolve('late'), ms); });
    const ran = await Promise.race([window.jupyterapp.commands.execute('notebook:run-cell'), late]);
    clearTimeout(timer);
    const kernel = panel.sessionContext.session?.kernel;
    return {
        ran: ran === 'late' ? 'late' : String(ran),
        kernel: kernel ? kernel.status : 'none',
        outputs: panel.content.model.cells.get(index).toJSON().outputs,
        dialogs: Array.from(document.querySelectorAll('.jp-Dialog'), (d) => d.innerText),
    };
}"""


def _result(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    (result,) = [o for o in outputs if o["output_type"] == "execute_result"]
    data: dict[str, Any] = result["data"]
    return data


def test_notebook_installs_pyapp_and_classifies_a_photo(browser: Any, lite_site: Path) -> None:
    served: list[str] = []
    seen: list[str] = []
    elsewhere: list[str] = []
    with serving_with_lite(lite_site, served) as url:
        context = browser.new_context()
        try:

            def route(r: Any) -> None:
                if r.request.url.startswith(url):
                    r.continue_()
                else:
                    elsewhere.append(r.request.url)
                    r.abort()

            # Requests that would leave the test server fail (and are listed) instead of reaching the internet.
            context.route("**/*", route)
            context.on("request", lambda req: seen.append(req.url))
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(f"{exc}\n{getattr(exc, 'stack', '')}"))
            page.set_default_timeout(OPEN_MS)
            started = time.monotonic()
            page.goto(f"{url}{lite.MOUNT.strip('/')}/lab/index.html?path={lite.NOTEBOOK}")
            page.wait_for_function(
                "(path) => { const p = window.jupyterapp?.shell.currentWidget;"
                " return p?.context?.path === path && p.context.isReady; }",
                arg=lite.NOTEBOOK,
            )
            # Run a cell before the session has its kernel and JupyterLab asks which kernel to use, in a dialog.
            page.wait_for_function(
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.name === 'python'"
            )
            assert page.evaluate("() => crossOriginIsolated") is False
            sources = page.evaluate(
                "() => Array.from(jupyterapp.shell.currentWidget.content.model.cells, (c) => c.sharedModel.source)"
            )
            code = [i for i, source in enumerate(sources) if source in lite.CELLS]
            assert [sources[i] for i in code] == list(lite.CELLS), sources

            replies = []
            for n, index in enumerate(code):
                ms = CELL_MS.get(n, DEFAULT_CELL_MS)
                reply = page.evaluate(RUN_CELL, [index, ms])
                replies.append(reply)
                if reply["ran"] != "true":
                    state = f"did not finish within {ms // 1000} s" if reply["ran"] == "late" else "failed"
                    pytest.fail(
                        f"cell {n + 1} {state} (kernel {reply['kernel']}):\n{sources[index]}\n"
                        f"outputs: {reply['outputs']}\ndialogs: {reply['dialogs']}\npage errors: {errors}"
                    )
            took = (time.monotonic() - started) * 1e3
            print(f"\n[hosts] JupyterLite: {took:.0f} ms from page load to the first classification (3 cells)")
        finally:
            context.close()

    install, init, classify = (r["outputs"] for r in replies)
    # %pip install prints nothing when it works; pyapp's own version came from the site's index.
    assert install == [], install
    backend, source = ast.literal_eval(_result(init)["text/plain"])
    assert backend in ("webgpu", "webgl", "wasm", "cpu"), backend
    assert source == "caller", source  # TF.js from the tfjs_url the cell gave: pyapp's site, not jsDelivr
    data = _result(classify)
    predictions = ast.literal_eval(data["text/plain"])
    label, probability = predictions[0]
    assert label == "Neutral", predictions
    assert probability == pytest.approx(0.93, abs=0.005), predictions
    assert data["text/html"].startswith('<table class="pyapp-predictions">'), data["text/html"][:80]
    assert errors == [], errors

    assert elsewhere == [], f"requests that left the test server: {elsewhere}"
    assert [u for u in seen if not u.startswith((url, "blob:", "data:"))] == []
    lite_root = lite.MOUNT
    # What came from where: Pyodide from the site's copy of the build's, pyapp from piplite's index, TF.js
    # and the model from pyapp's site.
    for path in (
        f"{lite_root}static/pyodide/pyodide.asm.wasm",
        f"{lite_root}static/pyodide/pyodide-lock.json",
        f"{lite_root}static/pyodide/ipython-8.23.0-py3-none-any.whl",
        f"{lite_root}pypi/comm-0.2.2-py3-none-any.whl",
        "/vendor/tfjs/tf.min.js",
        "/models/nsfw-mobilenet-v2/manifest.json",
    ):
        assert any(p.split("?")[0] == path for p in served), f"{path} was not requested: {sorted(set(served))}"
    assert any(p.startswith(f"{lite_root}pypi/pyapp_tfjs-") for p in served), sorted(set(served))


def test_the_readme_shows_the_notebooks_cells() -> None:
    """README.md's JupyterLite paragraph prints the notebook's code cells, in order, exactly as the test runs them."""
    text = (pyapp_build.ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**JupyterLite.**") :]
    section = section[: section.index("\n## ")]
    blocks = [m.group(1) for m in re.finditer(r"```ipython\n(.*?)\n```", section, re.S)]
    assert blocks == list(lite.CELLS)
