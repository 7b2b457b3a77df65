"""A JupyterLite site whose notebook installs pyapp and classifies a photo, built offline.

Host-only. The site comes from the pinned PyPI packages (``jupyterlite-core``,
``jupyterlite-pyodide-kernel``; see pyproject.toml's ``test`` extra), the Pyodide
kernel runs the build's own Pyodide (``web/vendor/pyodide/``, not the CDN the kernel
defaults to), and every wheel the kernel installs is in the site:

- in Pyodide's lock: the site's Pyodide wheels (numpy, Pillow, micropip, packaging) and
  the ones the kernel installs as it starts (IPython, jedi, ssl, sqlite3 and their
  dependencies), each sha256-checked against the official lock
  (:func:`pyapp_build.pyodide.pyodide_wheel`);
- in piplite's index (the site's ``pypi/``): pyapp's wheel, and ``comm``, which the kernel
  installs too and Pyodide 0.27 does not ship (pinned by sha256).

piplite's fallback to PyPI is off, so ``%pip install`` fails on anything else rather
than reaching for the internet. The site is meant to be served at ``/lite/`` beside
pyapp's own site at ``/``: the notebook loads TF.js and the model from there.

The build takes ~4 s here; its output is kept in the build cache under a fingerprint of
everything it is made from, so a rebuild happens only when one of those changed.

Example::

    >>> from pyapp_build import lite
    >>> site = lite.build()               # doctest: +SKIP
    >>> (site / "lab" / "index.html").is_file()   # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from pyapp_build import compress, pins, pyodide, samples
from pyapp_build.compress import sha256_file
from pyapp_build.pins import PYODIDE_CORE  # the kernel loads the build's own
from pyapp_build.steps import BuildError, log
from pyapp_build.wheel import pyapp_wheel_path

#: The PyPI packages the site is built with, as pyproject.toml's ``test`` extra pins them.
PINS = {
    "jupyterlite-core": "0.6.4",
    "jupyterlite-pyodide-kernel": "0.6.1",
    "jupyter-server": "2.17.0",
}
#: What the kernel installs as it starts (``initKernel`` in its worker) and the lock must hold.
KERNEL_PACKAGES = ("ssl", "sqlite3", "jedi", "ipython")
#: Wheels from PyPI for piplite's index: ``comm``, which the kernel installs and Pyodide 0.27 lacks.
PIPLITE_WHEELS = {
    "comm": ("comm-0.2.2-py3-none-any.whl", "e6fb86cb70ff661ee8c9c14e7d36d6de3b4066f1441be4063df9c5009f0a64d3"),
}
#: Where the site is served, beside pyapp's site at ``/``.
MOUNT = "/lite/"
NOTEBOOK = "classify.ipynb"
PHOTO = "chelsea.png"
#: The notebook's code cells, in order. The photo is a file next to the notebook (the kernel's
#: drive); TF.js and the model come from pyapp's site on the same origin.
CELLS = (
    "%pip install pyapp-tfjs",
    "import js\n"
    "import pyapp\n"
    "\n"
    "# pyapp's site is served at this origin's root: TF.js and the model come from there.\n"
    'SITE = f"{js.location.origin}/"\n'
    'rt = await pyapp.init(tfjs_url=SITE + "vendor/tfjs/")\n'
    "rt.backend, rt.tfjs_source",
    f'photo = open("{PHOTO}", "rb").read()\n'
    'async with await pyapp.ImageClassifier.load(SITE + "models/nsfw-mobilenet-v2/manifest.json") as clf:\n'
    "    predictions = await clf.classify(photo)\n"
    "predictions",
)
#: Bumped when the layout of the output changes, so older copies in the cache go stale.
_FORMAT = "1"


def cache_root() -> Path:
    """Where built sites are kept, one folder per fingerprint (the build cache, outside the clone)."""
    return compress.cache_dir() / "jupyterlite"


def check_pins() -> None:
    """Raise :class:`BuildError` unless the pinned JupyterLite packages are installed."""
    for name, want in PINS.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have != want:
            raise BuildError(
                f"{name}=={want} is needed to build the JupyterLite site (installed: {have}); "
                "run `pip install -e '.[test]'` (tools/test.sh does)"
            )


def notebook() -> dict[str, Any]:
    """The notebook, as nbformat 4 JSON."""
    intro = (
        "# pyapp in JupyterLite\n"
        "Installs pyapp from this site's wheel index, starts TF.js, and classifies the photo next to this notebook."
    )
    cells: list[dict[str, Any]] = [{"cell_type": "markdown", "metadata": {}, "source": intro}]
    cells += [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
        for source in CELLS
    ]
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python (Pyodide)", "language": "python", "name": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _vendor_lock() -> dict[str, Any]:
    lock: dict[str, Any] = json.loads((pins.VENDOR / "pyodide" / "pyodide-lock.json").read_text())
    return lock


def _pyapp_wheel() -> Path:
    wheel = pyapp_wheel_path()
    if not wheel.is_file():
        raise BuildError(f"{wheel} is missing; run `serve.py build`")
    return wheel


def _kernel_entries() -> dict[str, dict[str, Any]]:
    """The official lock's entries for :data:`KERNEL_PACKAGES` and everything they depend on."""
    packages = pyodide.official_lock()["packages"]
    assert isinstance(packages, dict)
    found: dict[str, dict[str, Any]] = {}
    todo = list(KERNEL_PACKAGES)
    while todo:
        name = todo.pop()
        # The lock's `depends` spells some names with underscores (prompt_toolkit); its keys use dashes.
        key = name if name in packages else name.replace("_", "-")
        if key in found:
            continue
        if key not in packages:
            raise BuildError(f"{name!r} is not in Pyodide's official lock")
        found[key] = packages[key]
        todo.extend(packages[key]["depends"])
    return dict(sorted(found.items()))


def inputs() -> str:
    """A fingerprint of everything the site is made from."""
    digest = hashlib.sha256(_FORMAT.encode())

    def add(*parts: str) -> None:
        for part in parts:
            digest.update(part.encode())
            digest.update(b"\0")

    add(*(f"{k}=={v}" for k, v in PINS.items()), Path(__file__).read_text())
    add(json.dumps(notebook(), sort_keys=True), json.dumps(PIPLITE_WHEELS, sort_keys=True))
    add(json.dumps(_kernel_entries(), sort_keys=True))
    for name in PYODIDE_CORE:
        add(name, sha256_file(pins.VENDOR / "pyodide" / name))
    add(
        json.dumps(_vendor_lock(), sort_keys=True),
        sha256_file(_pyapp_wheel()),
        sha256_file(pins.VENDOR / "samples" / PHOTO),
    )
    return digest.hexdigest()


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _pyodide_dir(out: Path) -> None:
    """The site's Pyodide: the build's core files and wheels, the kernel's wheels, one lock for all of them."""
    source = pins.VENDOR / "pyodide"
    for name in PYODIDE_CORE:
        _link_or_copy(source / name, out / name)
    lock = _vendor_lock()
    packages: dict[str, Any] = {}
    for name, entry in lock["packages"].items():
        # pyapp and pyfive sit outside vendor/pyodide/ (../wheels/); the notebook installs pyapp from piplite.
        if "/" in entry["file_name"]:
            continue
        path = source / entry["file_name"]
        if sha256_file(path) != entry["sha256"]:
            raise BuildError(f"{path} does not match vendor/pyodide/pyodide-lock.json; run `serve.py build`")
        _link_or_copy(path, out / entry["file_name"])
        packages[name] = entry
    for name, entry in _kernel_entries().items():
        if name in packages:
            continue
        file_name, data = pyodide.pyodide_wheel(name, entry)  # checked against the official lock
        (out / file_name).write_bytes(data)
        packages[name] = entry
    lock["packages"] = dict(sorted(packages.items()))
    (out / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True))


def _piplite_wheels(out: Path) -> None:
    wheel = _pyapp_wheel()
    _link_or_copy(wheel, out / wheel.name)
    for name, (file_name, digest) in PIPLITE_WHEELS.items():
        version = file_name.split("-")[1]
        wheel = samples.pinned_download(file_name, digest, f"{name}=={version}", " (for the JupyterLite kernel)")
        _link_or_copy(wheel, out / file_name)


def _write_lite_dir(lite: Path, contents: Path) -> None:
    _pyodide_dir(lite / "static" / "pyodide")
    _piplite_wheels(lite / "pypi")
    contents.mkdir(parents=True)
    (contents / NOTEBOOK).write_text(json.dumps(notebook(), indent=1) + "\n")
    _link_or_copy(pins.VENDOR / "samples" / PHOTO, contents / PHOTO)
    settings = {"@jupyterlite/pyodide-kernel-extension:kernel": {"disablePyPIFallback": True}}
    # exposeAppInBrowser: window.jupyterapp, so that a test can run the notebook's cells with JupyterLab's
    # own commands (a string: JupyterLite lower-cases it).
    data = {"litePluginSettings": settings, "exposeAppInBrowser": "true"}
    config = {"jupyter-lite-schema-version": 0, "jupyter-config-data": data}
    (lite / "jupyter-lite.json").write_text(json.dumps(config, indent=1))


def build(force: bool = False) -> Path:
    """The built site's folder (serve it at :data:`MOUNT`): from the cache when its inputs are unchanged.

    Needs web/vendor/ built first (``serve.py build``) and the pinned packages installed.
    """
    check_pins()
    fingerprint = inputs()
    root = cache_root()
    site = root / fingerprint[:32]
    if (site / ".done").is_file() and not force:
        (site / ".done").touch()  # in use: see _remove_unused
        return site
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lite-", dir=root) as tmp:
        lite, contents, output = Path(tmp) / "lite", Path(tmp) / "contents", Path(tmp) / "site"
        _write_lite_dir(lite, contents)
        cmd = [
            *(sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(lite)),
            *("--output-dir", str(output), "--contents", str(contents), "--no-sourcemaps"),
        ]
        # jupyter-server writes its runtime files and jupyterlite-core its doit database under these.
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(Path(tmp) / "runtime"), "JUPYTER_PLATFORM_DIRS": "1"}
        proc = subprocess.run(cmd, cwd=lite, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"jupyter lite build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        _check_site(output)
        (output / ".done").write_text(fingerprint + "\n")
        if force:
            shutil.rmtree(site, ignore_errors=True)
        try:
            os.replace(output, site)
        except OSError:
            # Another clone sharing the cache finished the same site first: the same inputs, so the same site.
            if not (site / ".done").is_file():
                raise
    _remove_unused(root, keep=site)
    log(f"lite: built {site} in {time.monotonic() - started:.0f} s")
    return site


def _remove_unused(root: Path, keep: Path, days: float = 7) -> None:
    """Delete the sites no build has used for ``days`` (~60 MB each). Not simply every other one: clones that
    share the cache (another branch, another pyapp wheel) may be serving theirs right now."""
    cutoff = time.time() - days * 86400
    for old in root.iterdir():
        done = old / ".done"
        if old != keep and done.is_file() and done.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def _check_site(site: Path) -> None:
    """What the build must have written: a sanity check, so a silent change upstream fails here."""
    config = json.loads((site / "jupyter-lite.json").read_text())
    kernel = config["jupyter-config-data"]["litePluginSettings"]["@jupyterlite/pyodide-kernel-extension:kernel"]
    if kernel.get("pyodideUrl") != "./static/pyodide/pyodide.js" or not kernel.get("disablePyPIFallback"):
        raise BuildError(f"unexpected Pyodide kernel settings in jupyter-lite.json: {kernel}")
    index = json.loads((site / "pypi" / "all.json").read_text())
    if not {"pyapp-tfjs", *PIPLITE_WHEELS} <= set(index):
        raise BuildError(f"piplite's index lacks a wheel: {sorted(index)}")
    if not (site / "files" / NOTEBOOK).is_file():
        raise BuildError(f"the notebook is not in the site: {sorted(p.name for p in (site / 'files').iterdir())}")
