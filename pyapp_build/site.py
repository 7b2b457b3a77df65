"""The build's driver and the site it makes: the steps in order (:func:`build`, :func:`status`), the
compressed siblings, ``web/vendor/build.json`` (files, boot groups, offline set) and a static export.

Steps, each with its own stamp so a re-run does only what is stale::

    pyodide    Pyodide core files from the ``pyodide`` npm package (pyapp_build.pyodide)
    wheels     numpy, Pillow, micropip, packaging wheels built for Pyodide,
               sha256-checked against the official pyodide-lock.json
    tfjs       TF.js bundles and the three backend-wasm binaries (pyapp_build.jslibs)
    pyscript   PyScript (@pyscript/core) runtime files
    nsfwjs     NSFWJS's ES module code (the reference classifier)
    brotli     a brotli decoder (brotli-dec-wasm) for the service worker, which fetches the
               build's .br copies from a host that compresses nothing (no browser decodes
               brotli streams for scripts: DecompressionStream knows gzip and deflate only)
    model      NSFWJS MobileNetV2 as a standard TF.js layers model + manifest (pyapp_build.model)
    samples    real photos from scikit-image's wheel (tests, demo; pyapp_build.samples)
    data       small real datasets for training from Python: scikit-learn's
               8x8 digits (from its Pyodide wheel, checked against the official
               lock) and scikit-image's LFW subset (100 faces, 100 non-faces)
    pypi       pure-Python wheels from PyPI that the page loads only when needed
               (pyfive, to read a dropped Keras file), pinned by file name and sha256
    pyapp      this package's wheel and sdist (PEP 517 build, hatchling) into
               dist/, and the wheel into web/vendor/wheels/ (pyapp_build.wheel)
    lock       pyodide-lock.json (pyodide-lock): the vendored packages, pyapp and the pypi wheels
    compress   .br and .gz siblings of the outputs above (pyapp_build.compress), which
               serve.py sends to browsers that accept them

Each step's fingerprint holds its own inputs only: the code of its module, the pins it reads, and the
files it reads (``npm ci``'s lock for what comes from npm).

Example::

    >>> from pyapp_build import site
    >>> report = site.build()            # doctest: +SKIP
    >>> report.rebuilt                   # doctest: +SKIP
    []
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pyapp import artifacts, quantize
from pyapp._version import __version__
from pyapp_build import classic, compress, jslibs, model, pins, pycompile, pyodide, samples, wheel
from pyapp_build.compress import sha256_file
from pyapp_build.headers import SERVICE_WORKER_HEADERS
from pyapp_build.npm import ensure_node_modules, lock_bytes
from pyapp_build.pins import MODEL_NAME, PYODIDE_CORE, PYODIDE_PACKAGES, PYODIDE_VERSION
from pyapp_build.pyodide import lock_entries
from pyapp_build.steps import BuildError, BuildReport, Step, fingerprint, log, write_atomic
from pyapp_build.wheel import wheel_name


def _compressed_base() -> Path:
    """The folder holding both web/vendor/ and models/: the compress step's outputs are relative to it."""
    return Path(os.path.commonpath([pins.VENDOR, pins.MODELS]))


@dataclass
class _SiblingStep(Step):
    """The compress step: its outputs lie next to other steps' outputs, its stamp in web/vendor/.

    It is stale also when a sibling is older than its original (serve.py would ignore it).
    """

    @property
    def stamp_path(self) -> Path:
        return pins.VENDOR / f".stamp-{self.name}.json"

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
    return fingerprint("compress", Path(compress.__file__).read_bytes(), *parts)


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
    log(
        f"compress: {len(jobs)} files compressed ({original:,} -> {br:,} bytes with brotli), {reused} up to date,"
        f" {counts.cache_hits} siblings from the cache"
    )


def _code(*modules: ModuleType) -> list[bytes]:
    """The source of ``modules``: the code whose change changes a step's output."""
    return [Path(str(m.__file__)).read_bytes() for m in modules]


def _pinned(*values: object) -> list[str]:
    return [repr(v) for v in values]


def steps() -> list[Step]:
    """The build steps, in order; each fingerprints its own inputs only (its code, its pins, its sources)."""

    def inputs(
        tag: str, code: tuple[ModuleType, ...], pinned: tuple[object, ...], npm: bool = True
    ) -> Callable[[], str]:
        """``npm``: it copies from node_modules, so ``npm ci``'s lock is an input."""
        return lambda: fingerprint(tag, *([lock_bytes()] if npm else []), *_code(*code), *_pinned(*pinned))

    compiled = (pycompile.RUNNER.read_bytes(),)  # the Node script that compiles with Pyodide's own interpreter
    return [
        Step(
            "pyodide",
            pins.VENDOR / "pyodide",
            inputs(
                "pyodide", (pyodide, pycompile), (PYODIDE_VERSION, pins.PYODIDE_CORE, pins.STDLIB_PREFIX, *compiled)
            ),
            pyodide.build_core,
        ),
        Step(
            "wheels",
            pins.VENDOR / "pyodide",
            inputs(
                "wheels",
                (pyodide, pycompile),
                (PYODIDE_VERSION, PYODIDE_PACKAGES, pins.WHEEL_MIRROR, pins.SITE_PACKAGES, *compiled),
            ),
            pyodide.build_wheels,
        ),
        Step("tfjs", pins.VENDOR / "tfjs", inputs("tfjs", (jslibs,), (pins.TFJS_FILES,)), jslibs.build_tfjs),
        Step("pyscript", pins.VENDOR / "pyscript", inputs("pyscript", (jslibs,), ()), jslibs.build_pyscript),
        Step("nsfwjs", pins.VENDOR / "nsfwjs", inputs("nsfwjs", (jslibs,), (pins.NSFWJS_FILES,)), jslibs.build_nsfwjs),
        Step(
            "brotli",
            pins.VENDOR / "brotli",
            inputs("brotli", (jslibs, classic), (pins.BROTLI_MODULE, pins.BROTLI_WASM)),
            jslibs.build_brotli,
        ),
        # The variants are pyapp.quantize's output, their files pyapp.artifacts': a change there is a new model.
        Step(
            "model",
            pins.MODELS,
            inputs(
                "model",
                (model, quantize, artifacts),
                (MODEL_NAME, pins.MODEL_SOURCE, pins.GRAPH_MODEL_NAME, pins.GRAPH_MODEL_SOURCE, pins.MODEL_LABELS),
            ),
            model.build_model,
        ),
        Step(
            "samples",
            pins.VENDOR / "samples",
            inputs("samples", (samples,), (pins.SAMPLES_WHEEL, pins.SAMPLES), npm=False),
            samples.build_samples,
        ),
        # The scikit-learn wheel comes by the official lock, from node_modules.
        Step(
            "data",
            pins.VENDOR / "data",
            inputs("data", (samples,), (pins.DATA_FILES, pins.SAMPLES_WHEEL)),
            samples.build_data,
        ),
        Step(
            "pypi",
            pins.VENDOR / "wheels",
            inputs("pypi", (samples,), (pins.PYPI_WHEELS,), npm=False),
            samples.build_pypi,
        ),
        Step("pyapp", pins.VENDOR / "wheels", wheel.pyapp_inputs, wheel.build_pyapp),
        Step("lock", pins.VENDOR / "pyodide", wheel.lock_inputs, wheel.build_lock),
        # Last: encodings of the outputs above (not files of the build; build.json leaves them out).
        _SiblingStep("compress", _compressed_base(), _compress_inputs, _build_compress),
    ]


def _needs_npm(step: Step) -> bool:
    return step.name in ("pyodide", "wheels", "tfjs", "pyscript", "nsfwjs", "brotli", "model", "data", "lock")


def build(only: Iterable[str] | None = None, force: bool = False) -> BuildReport:
    """Bring ``web/vendor/`` and ``models/`` up to date; return what was done."""
    started = time.perf_counter()
    pins.CACHE.mkdir(exist_ok=True)
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
        log(f"{step.name}: building ({why})")
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
        base = "models" if out_dir == pins.MODELS else out_dir.relative_to(pins.WEB).as_posix()
        for rel, digest in step.files().items():
            files[f"{base}/{rel}"] = digest
            sizes[f"{base}/{rel}"] = size = (out_dir / rel).stat().st_size
            if _lacks_copies(out_dir / rel, size):
                no_copies.append(f"{base}/{rel}")
    shell = _shell_files()
    for rel in shell:
        sizes[rel] = (pins.WEB / rel).stat().st_size
    build_id = fingerprint(*(f"{k}={v}" for k, v in sorted({**files, **shell}.items())))[:16]
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
    path = pins.VENDOR / "build.json"
    if not path.exists() or path.read_bytes() != data:
        write_atomic(path, data)


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
        path.relative_to(pins.WEB).as_posix(): sha256_file(path)
        for path in sorted(pins.WEB.rglob("*"))
        if path.is_file()
        and pins.VENDOR not in path.parents
        and "__pycache__" not in path.parts
        and path.relative_to(pins.WEB).as_posix() not in _NOT_SHELL
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
    return [f"vendor/pyodide/{e['file_name']}" for name, e in lock_entries().items() if name == "pillow"]


def _boot_groups(files: dict[str, str]) -> dict[str, list[str]]:
    """What the app downloads to start, by progress bar (the rest is fetched for offline use)."""
    entries = lock_entries()
    # Pillow is not in the app's boot: the browser decodes what the app shows; Pillow is loaded on
    # first need (a TIFF; pyapp.browser.ensure_pillow), and kept for offline use from then on.
    wheels = [f"vendor/pyodide/{e['file_name']}" for name, e in entries.items() if name == "numpy"]
    groups = {
        "Pyodide": [f"vendor/pyodide/{n}" for n in (*PYODIDE_CORE, "pyodide-lock.json")],
        "Python packages": [*wheels, f"vendor/wheels/{wheel_name()}"],
        "TF.js": [
            "vendor/tfjs/tf.min.js",
            "vendor/tfjs/tf-backend-wasm.min.js",
            # Not WebGPU's bundle: js/tfjs.js loads it only when pyapp.runtime tries WebGPU where the browser
            # has it (it is kept for offline use with the rest of vendor/tfjs/).
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
    if out == pins.WEB.resolve() or pins.WEB.resolve() in out.parents:
        raise BuildError(f"--out {out} must not be inside {pins.WEB}")
    if out.exists() and any(out.iterdir()) and not (out / ".pyapp-site").exists():
        raise BuildError(f"--out {out} exists and is not empty; refusing to overwrite it")
    if out.exists():
        shutil.rmtree(out)
    ignore = shutil.ignore_patterns(".stamp-*", "*.part", "__pycache__")
    shutil.copytree(pins.WEB, out, ignore=ignore)
    shutil.copytree(pins.MODELS, out / "models", ignore=shutil.ignore_patterns(".stamp-*", "*.part", "README.md"))
    (out / "_headers").write_text(headers_file)
    (out / ".pyapp-site").write_text(__version__ + "\n")
    return out
