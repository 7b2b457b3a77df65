"""pyapp's build, on the host only: it makes the site (``web/vendor/``, ``models/``) from the package
registries, and pyapp's wheel. Nothing here runs in the browser or ships in the wheel.

One module per concept, importing only downward::

    site        the driver: steps in order, build.json, the static export    (build, status, export_static)
     ├─ wheel   pyapp's wheel and sdist; the site's pyodide-lock.json
     ├─ model   NSFWJS as standard TF.js models, quantized (pyapp.quantize)
     ├─ samples photos, datasets and pure-Python wheels, pinned
     ├─ jslibs  TF.js (+ its CDN copies' SRI), PyScript, NSFWJS code, brotli decoder
     ├─ pyodide Pyodide's core and wheels, checked against the official lock
     ├─ npm     node_modules from package-lock.json
     ├─ steps   a step's fingerprint and stamp
     └─ pins    versions, files, sha256 and paths
    compress, pycompile, classic, headers: the tools the steps use (brotli/gzip siblings, bytecode,
    classic scripts, the site's headers)
    chromium: a real browser for the tests and benchmarks; lite: a JupyterLite site with pyapp, for its test

The names most callers need are here (``pyapp_build.build()``, ``pyapp_build.VENDOR``)::

    >>> import pyapp_build
    >>> pyapp_build.VENDOR.relative_to(pyapp_build.ROOT).as_posix()
    'web/vendor'
"""

from pyapp_build.pins import (
    BROTLI_MODULE,
    MODEL_NAME,
    MODEL_SOURCE,
    MODELS,
    NODE_MODULES,
    PYPI_WHEELS,
    ROOT,
    SAMPLES,
    SITE_PACKAGES,
    STDLIB_PREFIX,
    TFJS_FILES,
    TFJS_SRI_MODULE,
    VENDOR,
    WEB,
)
from pyapp_build.site import build, export_static, status
from pyapp_build.steps import BuildError, BuildReport
from pyapp_build.wheel import build_dist, build_wheel, wheel_name

__all__ = [
    "BROTLI_MODULE",
    "MODELS",
    "MODEL_NAME",
    "MODEL_SOURCE",
    "NODE_MODULES",
    "PYPI_WHEELS",
    "ROOT",
    "SAMPLES",
    "SITE_PACKAGES",
    "STDLIB_PREFIX",
    "TFJS_FILES",
    "TFJS_SRI_MODULE",
    "VENDOR",
    "WEB",
    "BuildError",
    "BuildReport",
    "build",
    "build_dist",
    "build_wheel",
    "export_static",
    "status",
    "wheel_name",
]
