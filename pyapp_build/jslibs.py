"""The browser's JavaScript libraries from npm: TF.js and its backends (and their public CDN copies with
Subresource Integrity, for pages that do not vendor them), PyScript, NSFWJS's code, a brotli decoder."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

from pyapp_build import classic, pins
from pyapp_build.npm import node_module
from pyapp_build.pins import BROTLI_MODULE, BROTLI_WASM, NSFWJS_FILES, TFJS_CDN, TFJS_FILES
from pyapp_build.steps import BuildError, log, write_atomic


def build_tfjs(out: Path) -> None:
    for src, dest in TFJS_FILES.items():
        shutil.copyfile(node_module(src), out / dest)
    write_tfjs_sri()  # the CDN fallback's SRI, of these same files


def build_pyscript(out: Path) -> None:
    # The whole dist (its chunks import each other by relative name), minus source maps.
    dist = node_module("@pyscript/core/dist")
    for path in sorted(dist.iterdir()):
        if path.suffix in (".js", ".css") and path.is_file():
            shutil.copyfile(path, out / path.name)


def build_nsfwjs(out: Path) -> None:
    for src, dest in NSFWJS_FILES.items():
        shutil.copyfile(node_module(src), out / dest)


def build_brotli(out: Path) -> None:
    module = node_module(BROTLI_MODULE).read_text(encoding="utf-8")
    try:
        script = classic.classic_script(module, "brotliDecWasm")
    except classic.NotConvertible as exc:
        raise BuildError(f"{BROTLI_MODULE}: {exc}; update pyapp_build/classic.py for this version") from None
    (out / "brotli-dec.js").write_text(script, encoding="utf-8")
    shutil.copyfile(node_module(BROTLI_WASM), out / "brotli_dec_wasm_bg.wasm")


def sri(data: bytes) -> str:
    """A Subresource Integrity value (sha384, base64) of ``data``.

    >>> sri(b"alert('Hello, world.');")
    'sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO'
    """
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def tfjs_files() -> dict[str, tuple[str, str]]:
    """Each vendored TF.js file (name in vendor/tfjs/) -> (its jsDelivr npm URL, its SRI), from node_modules."""
    files: dict[str, tuple[str, str]] = {}
    for src, dest in TFJS_FILES.items():
        scope, package, rest = src.split("/", 2)
        version = json.loads(node_module(f"{scope}/{package}/package.json").read_text())["version"]
        url = f"{TFJS_CDN}{scope}/{package}@{version}/{rest}"
        files[dest] = (url, sri(node_module(src).read_bytes()))
    return files


def tfjs_sri_source() -> str:
    """The text of :data:`pins.TFJS_SRI_MODULE` for the TF.js in node_modules."""
    version = json.loads(node_module("@tensorflow/tfjs/package.json").read_text())["version"]
    lines = [
        '"""TF.js files on the public CDN, with Subresource Integrity: written by pyapp_build/jslibs.py, do not edit.',
        "",
        "The same bytes as the copy the asset build vendors into web/vendor/tfjs/ (tests/test_build.py checks it).",
        '"""',
        "",
        f'TFJS_VERSION = "{version}"',
        "#: File name (as in vendor/tfjs/) -> (jsDelivr npm URL, SRI).",
        "FILES: dict[str, tuple[str, str]] = {",
    ]
    for name, (url, integrity) in tfjs_files().items():
        lines += [f'    "{name}": (', f'        "{url}",', f'        "{integrity}",', "    ),"]
    return "\n".join([*lines, "}", ""])


def write_tfjs_sri() -> bool:
    """Bring :data:`pins.TFJS_SRI_MODULE` in line with node_modules; True when it changed."""
    text = tfjs_sri_source()
    if pins.TFJS_SRI_MODULE.is_file() and pins.TFJS_SRI_MODULE.read_text() == text:
        return False
    log(f"writing {pins.TFJS_SRI_MODULE.relative_to(pins.ROOT)} (TF.js CDN URLs and SRI)")
    write_atomic(pins.TFJS_SRI_MODULE, text.encode())
    return True
