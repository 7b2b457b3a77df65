"""Real photos and datasets from pinned wheels (scikit-image, scikit-learn), and the pure-Python wheels from
PyPI the page loads on demand, each pinned by file name and sha256."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from pyapp_build.compress import sha256_file
from pyapp_build.pins import DATA_FILES, PYPI_WHEELS, SAMPLES, SAMPLES_WHEEL
from pyapp_build.pyodide import downloads_dir, pyodide_wheel
from pyapp_build.steps import BuildError, log


def pinned_download(file_name: str, expected: str, requirement: str, why: str, *pip_args: str) -> Path:
    """A wheel from PyPI, pinned by sha256: downloaded once into the cache, checked every time."""
    dl = downloads_dir()
    wheel = dl / file_name
    if not wheel.exists() or sha256_file(wheel) != expected:
        dl.mkdir(parents=True, exist_ok=True)
        log(f"downloading {requirement} from PyPI{why}")
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


def skimage_wheel() -> Path:
    """The pinned scikit-image wheel (downloaded once, checked every time)."""
    file_name, expected = SAMPLES_WHEEL
    platform = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp")
    return pinned_download(file_name, expected, "scikit-image==0.24.0", " (real sample photos)", *platform)


def pypi_wheel(name: str) -> Path:
    """The pinned wheel :data:`PYPI_WHEELS` names, from PyPI (downloaded once, checked every time)."""
    file_name, expected = PYPI_WHEELS[name]
    return pinned_download(file_name, expected, f"{name}=={file_name.split('-')[1]}", "")


def build_pypi(out: Path) -> None:
    for name in PYPI_WHEELS:
        wheel = pypi_wheel(name)
        shutil.copyfile(wheel, out / wheel.name)


def build_samples(out: Path) -> None:
    with zipfile.ZipFile(skimage_wheel()) as zf:
        for name in SAMPLES:
            (out / name).write_bytes(zf.read(f"skimage/data/{name}"))


def build_data(out: Path) -> None:
    archives: dict[str, zipfile.ZipFile] = {}
    for name, (source, member) in DATA_FILES.items():
        if source not in archives:
            if source == "sklearn":
                archives[source] = zipfile.ZipFile(io.BytesIO(pyodide_wheel("scikit-learn")[1]))
            else:
                archives[source] = zipfile.ZipFile(skimage_wheel())
        (out / name).write_bytes(archives[source].read(member))
    for archive in archives.values():
        archive.close()
