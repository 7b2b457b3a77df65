"""pyapp_build.classic: brotli-dec-wasm's ES module, made a classic script, decodes the build's brotli copies
in a script context (as the service worker's importScripts() runs it); shapes it does not know are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import pyapp_build
from pyapp_build import classic

#: Runs the classic script as a script (no module syntax allowed), then decodes argv[3] in 7,919-byte
#: chunks with 64 KB of output per call, the way web/sw.js feeds it a network stream.
_DECODE = r"""
const fs = require("fs"), vm = require("vm");
const [script, wasm, br] = process.argv.slice(1);
const self = { location: { href: "https://example.test/sw.js" } };
vm.runInNewContext(fs.readFileSync(script, "utf8"), { self, WebAssembly, TextDecoder, TextEncoder,
  FinalizationRegistry, console, Symbol, Error, Object, DataView, Uint8Array });
const lib = self.brotliDecWasm;
lib.initSync({ module: new WebAssembly.Module(fs.readFileSync(wasm)) });
const input = fs.readFileSync(br), stream = new lib.DecompressStream(), out = [];
const { NeedsMoreOutput, ResultSuccess } = lib.BrotliStreamResultCode;
let done = false;
for (let at = 0; at < input.length && !done; at += 7919) {
  let chunk = input.subarray(at, at + 7919);
  for (;;) {
    const r = stream.decompress(chunk, 65536);
    out.push(Buffer.from(r.buf));
    if (r.code === ResultSuccess) { done = true; break; }
    if (r.code !== NeedsMoreOutput) break;
    chunk = chunk.subarray(r.input_offset);
  }
}
process.stdout.write(JSON.stringify({ done, exports: Object.keys(lib).sort() }));
fs.writeFileSync(br + ".out", Buffer.concat(out));
"""


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed")
    return path


def test_the_built_decoder_decodes_a_brotli_copy_in_a_script_context(built: None, node: str, tmp_path: Path) -> None:
    """The vendored script and binary (what the service worker loads) restore python_stdlib.zip exactly."""
    original = pyapp_build.VENDOR / "pyodide" / "python_stdlib.zip"
    copy = tmp_path / "stdlib.br"
    shutil.copyfile(original.with_name(original.name + ".br"), copy)
    script = pyapp_build.VENDOR / "brotli" / "brotli-dec.js"
    wasm = pyapp_build.VENDOR / "brotli" / "brotli_dec_wasm_bg.wasm"
    proc = subprocess.run([node, "-e", _DECODE, str(script), str(wasm), str(copy)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["done"] is True
    assert {"DecompressStream", "BrotliStreamResultCode", "initSync"} <= set(report["exports"])
    assert (tmp_path / "stdlib.br.out").read_bytes() == original.read_bytes()


def test_the_build_output_is_the_npm_module_converted(built: None) -> None:
    """What the build wrote is exactly classic_script() of the pinned module: nothing hand-edited."""
    module = (pyapp_build.NODE_MODULES / pyapp_build.BROTLI_MODULE).read_text(encoding="utf-8")
    built_script = (pyapp_build.VENDOR / "brotli" / "brotli-dec.js").read_text(encoding="utf-8")
    assert built_script == classic.classic_script(module, "brotliDecWasm")
    assert "export" not in built_script.replace("exports", "")
    assert "import.meta" not in built_script


@pytest.mark.parametrize(
    ("module", "why"),
    [
        ('import x from "./x.js";export{x as y};', "imports another module"),
        ('export * from "./x.js";', "imports another module"),
        ("const m=import('./x.js');export{m};", "imports another module"),
        ("export default function(){}", "an export this converter does not handle"),
        ("const a=1;", "exports nothing"),
        ("const q=import.meta.resolve('x');export{q};", "import.meta is used for more than its URL"),
    ],
)
def test_shapes_it_does_not_know_are_refused(module: str, why: str) -> None:
    """Rather than guess, a refusal: the build then stops and names the module."""
    with pytest.raises(classic.NotConvertible, match=why):
        classic.classic_script(module, "lib")
