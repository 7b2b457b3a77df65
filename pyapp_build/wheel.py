"""pyapp's own wheel and sdist (PEP 517, hatchling, pinned and reproducible), and the site's
pyodide-lock.json (pyodide-lock) that names it, so that ``pyodide.loadPackage("pyapp-tfjs")`` finds it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pyapp._version import __version__
from pyapp_build import pins, pycompile
from pyapp_build.compress import sha256_file
from pyapp_build.npm import lock_bytes, node_module
from pyapp_build.pins import BUILD_TOOLS, DIST_NAME, PYPI_WHEELS, SITE_PACKAGES
from pyapp_build.pyodide import compiled_wheel, lock_entries, wheels_recorded
from pyapp_build.steps import BuildError, fingerprint, log


def _package_files() -> list[Path]:
    pkg = pins.ROOT / "pyapp"
    return sorted(
        p
        for p in pkg.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".typed", ".pyi")
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
    done = pins.TOOLS / ".installed"
    want = "\n".join(BUILD_TOOLS) + "\n"
    if done.is_file() and done.read_text() == want:
        return pins.TOOLS
    shutil.rmtree(pins.TOOLS, ignore_errors=True)
    log(f"installing the build tools into {pins.TOOLS.relative_to(pins.ROOT)} ({', '.join(BUILD_TOOLS)})")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(pins.TOOLS),
    ]
    proc = subprocess.run([*cmd, *BUILD_TOOLS], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"pip install {' '.join(BUILD_TOOLS)} failed:\n{proc.stderr}")
    done.write_text(want)
    return pins.TOOLS


def run_tool(args: list[str], what: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(build_tools()), "SOURCE_DATE_EPOCH": "1580601600"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=pins.ROOT)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def build_dist(dest: Path = pins.DIST) -> tuple[Path, Path]:
    """The wheel and sdist of pyapp, built the standard way (PEP 517: ``python -m build``, hatchling).

    The wheel is built from the sdist, as an installer would; both are reproducible (fixed
    timestamps, pinned backend). Returns (wheel, sdist) in ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyapp-dist-") as tmp:
        run_tool(["-m", "build", "--no-isolation", "--outdir", tmp, str(pins.ROOT)], "python -m build")
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


def build_pyapp(out: Path) -> None:
    """The distributable pair in dist/, and the browser's copy of the wheel in web/vendor/wheels/: the same
    wheel with each module's bytecode beside its source (:mod:`pyapp_build.pycompile`, ``sources``).

    Every page compiled pyapp's modules on every boot otherwise: importing what the app needs took 241 ms from
    the sources and 44 ms from the bytecode (measured in headless Chromium 156 on this 2-core machine, Pyodide
    0.27.7).
    """
    wheel, _ = build_dist(pins.DIST)
    job = pycompile.Job(wheel, out / wheel.name, SITE_PACKAGES, sources=True)
    pycompile.compile_archives([job], pins.NODE_MODULES / "pyodide")


def pyapp_inputs() -> str:
    parts: list[bytes | str] = [__version__, *BUILD_TOOLS, (pins.ROOT / "pyproject.toml").read_bytes()]
    for path in _package_files():
        parts += [path.relative_to(pins.ROOT).as_posix(), path.read_bytes()]
    if (pins.ROOT / "README.md").exists():
        parts.append((pins.ROOT / "README.md").read_bytes())  # the wheel's long description
    # What compiles the browser's copy: this module, pycompile and its runner, and the Pyodide that runs them.
    compilers = (Path(__file__), Path(pycompile.__file__), pycompile.RUNNER)
    parts += [path.read_bytes() for path in compilers]
    parts.append(lock_bytes())
    return fingerprint(*parts)


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


def pyapp_wheel_path() -> Path:
    return pins.VENDOR / "wheels" / wheel_name()


def build_lock(out: Path) -> None:
    """vendor/pyodide/pyodide-lock.json: the official lock's entries the site vendors, pyapp and the pypi wheels.

    Made with ``pyodide-lock`` (the Pyodide project's tool for lock files), so that
    ``pyodide.loadPackage("pyapp-tfjs")``, micropip and JupyterLite's piplite find pyapp by name,
    with its dependencies and sha256. Its ``file_name`` points at ``../wheels/``, where the site
    keeps it, relative to the lock (Pyodide resolves it against its ``indexURL``).
    """
    wheel = pyapp_wheel_path()
    if not wheel.is_file():
        raise BuildError(f"{wheel} is missing: the pyapp step makes it")
    keep = json.dumps(vendored_digests())
    official = node_module("pyodide/pyodide-lock.json")
    target = out / "pyodide-lock.json"
    extra = [pins.VENDOR / "wheels" / file_name for file_name, _ in PYPI_WHEELS.values()]
    args = [str(official), "../wheels/", keep, str(target), str(wheel), *map(str, extra)]
    run_tool(["-c", _LOCK_SCRIPT, *args], "pyodide-lock")
    lock = json.loads(target.read_text())
    entry = lock["packages"].get(DIST_NAME)
    if entry is None or entry["imports"] != ["pyapp"] or entry["sha256"] != sha256_file(wheel):
        raise BuildError(f"pyodide-lock wrote an unexpected entry for {DIST_NAME}: {entry}")
    for name, (file_name, digest) in PYPI_WHEELS.items():
        entry = lock["packages"].get(name)
        if entry is None or entry["file_name"] != f"../wheels/{file_name}" or entry["sha256"] != digest:
            raise BuildError(f"pyodide-lock wrote an unexpected entry for {name}: {entry}")


def vendored_digests() -> dict[str, str]:
    """The lock's packages and the sha256 of each as vendored (a compiled wheel's is not the official one):
    the wheels step's record, which that step has just checked, rather than hashing 16 MB again."""
    recorded = wheels_recorded(pins.VENDOR / "pyodide")
    digests = {}
    for name, entry in lock_entries().items():
        file_name = str(entry["file_name"])
        compiled = compiled_wheel(file_name) and file_name in recorded
        digests[name] = recorded[file_name] if compiled else str(entry["sha256"])
    return digests


def lock_inputs() -> str:
    wheel = pyapp_wheel_path()
    digest = sha256_file(wheel) if wheel.is_file() else "missing"
    vendored = json.dumps(vendored_digests(), sort_keys=True)
    return fingerprint(
        "lock",
        lock_bytes(),
        Path(__file__).read_bytes(),
        *BUILD_TOOLS,
        digest,
        vendored,
        *map(str, PYPI_WHEELS.items()),
    )
