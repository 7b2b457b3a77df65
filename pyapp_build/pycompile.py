"""Python archives (the standard library zip, wheels) with bytecode in place of sources, made by Pyodide's
own interpreter: what the official distribution's ``pyc`` variant is (``pyodide py-compile`` in
pyodide-build), built here from the npm package's ``full`` files.

Why: a page that boots Pyodide compiles every module it imports, in WebAssembly. Measured here (2 cores,
headless Chromium 156), booting Pyodide, loading numpy and Pillow and importing them: ``loadPyodide``
5.2 s -> 2.1 s, the imports 1.1 s -> 0.4 s; the test harness's whole boot 10.4 -> 6.2 s of CPU.

- Compiled under Pyodide in Node (:data:`RUNNER`): a ``.pyc`` belongs to one CPython minor version
  (3.12 for Pyodide 0.27), and pyodide-build's ``py-compile`` runs on the host's interpreter, 3.11
  here. Pyodide in Node is the browser's own interpreter, so the bytecode is what the page would
  have compiled.
- ``foo.py`` becomes ``foo.pyc`` at the same place (a sourceless module, which zipimport and the
  path finder both load), unchecked-hash (PEP 552: no timestamps, so the same sources give the same
  bytes); ``co_filename`` is where the file lives at run time (``/lib/python312.zip/json/__init__.py``),
  so tracebacks name the real module. A wheel's ``RECORD`` lists the ``.pyc`` files with their hashes.
- The archives are written uncompressed (``ZIP_STORED``): bytecode is larger than source, but an
  uncompressed archive compresses far better as a whole on the wire (brotli siblings, see
  :mod:`pyapp_build.compress`): the standard library 2.36 MB deflated as shipped -> 2.55 MB of
  bytecode with brotli, numpy 3.06 -> 2.30 MB. Zipimport reads stored members without inflating.

Host side standard library only; :func:`compile_archive` also runs inside Pyodide (the runner imports
this file there).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Runs :func:`compile_archive` under Pyodide in Node, for each job given as JSON on the command line.
RUNNER = Path(__file__).with_name("pycompile.mjs")
#: CPython 3.12's bytecode magic (``importlib.util.MAGIC_NUMBER`` under Pyodide 0.27).
PYC_MAGIC_312 = (3531).to_bytes(2, "little") + b"\r\n"
#: Its ``sys.implementation.cache_tag``: the name of a module's bytecode in ``__pycache__``.
CACHE_TAG_312 = "cpython-312"


def pycache_name(name: str) -> str:
    """Where CPython 3.12 looks for the bytecode of the module ``name`` (a ``.py`` path in an archive).

    >>> pycache_name("pyapp/model.py"), pycache_name("top.py")
    ('pyapp/__pycache__/model.cpython-312.pyc', '__pycache__/top.cpython-312.pyc')
    """
    folder, _, file = name.rpartition("/")
    return f"{folder}/__pycache__/{file[:-3]}.{CACHE_TAG_312}.pyc".lstrip("/")


class PyCompileError(RuntimeError):
    """An archive could not be compiled (no Node.js, a syntax error, a broken archive)."""


@dataclass(frozen=True)
class Job:
    """Compile ``source`` (a zip or wheel) into ``dest``; ``prefix`` is where its members live at run time.

    ``sources``: keep each ``.py`` and add its bytecode beside it, in ``__pycache__`` (checked-hash), instead of
    replacing it (pyapp's own wheel: see :func:`compile_archive`).
    """

    source: Path
    dest: Path
    prefix: str
    sources: bool = False


def compile_archive(source: str, dest: str, prefix: str, sources: bool = False) -> int:
    """Write ``dest``: ``source`` with each ``.py`` member compiled to ``.pyc``, stored; the count compiled.

    Under the running interpreter (Pyodide's, from :func:`compile_archives`); members keep their
    order and dates, so the same input gives the same bytes.

    With ``sources``, each ``pkg/m.py`` stays and ``pkg/__pycache__/m.cpython-312.pyc`` follows it, a
    *checked*-hash pyc (PEP 552): the import system hashes the source it sits beside and uses the bytecode only
    when it matches, so a source edited after the build is compiled as usual, never run stale. For pyapp's own
    wheel: its sources are read at run time (tracebacks, ``inspect``, the playground's examples), and the
    same wheel installs anywhere (other CPython versions ignore another version's ``__pycache__`` entries).

    >>> import tempfile, zipfile, os
    >>> d = tempfile.mkdtemp()
    >>> with zipfile.ZipFile(os.path.join(d, "a.zip"), "w") as z:
    ...     z.writestr("m.py", "X = 1\\n")
    >>> compile_archive(os.path.join(d, "a.zip"), os.path.join(d, "b.zip"), "/lib/")
    1
    >>> zipfile.ZipFile(os.path.join(d, "b.zip")).namelist()
    ['m.pyc']
    """
    import importlib._bootstrap_external as bootstrap
    import importlib.util

    compiled = 0
    records: dict[str, str] = {}  # RECORD's line for each compiled source
    with zipfile.ZipFile(source) as zin:
        members = []
        for info in zin.infolist():
            data = zin.read(info)
            name = info.filename
            if name.endswith(".py"):
                try:
                    code = compile(data, prefix + name, "exec", dont_inherit=True)
                except SyntaxError as err:
                    raise PyCompileError(f"{source}: {name} does not compile: {err}") from None
                pyc = bytes(bootstrap._code_to_hash_pyc(code, importlib.util.source_hash(data), sources))  # type: ignore[attr-defined]
                compiled += 1
                digest = base64.urlsafe_b64encode(hashlib.sha256(pyc).digest()).rstrip(b"=").decode()
                if sources:
                    members.append((info, name, data))
                    name = pycache_name(name)
                    records[name] = f"{name},sha256={digest},{len(pyc)}"
                else:
                    name += "c"
                    records[info.filename] = f"{name},sha256={digest},{len(pyc)}"
                data = pyc
            members.append((info, name, data))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout:
        for info, name, data in members:
            if name.endswith(".dist-info/RECORD") and records:
                data = _record(data, records, added=sources)
            out = zipfile.ZipInfo(name, info.date_time)
            out.external_attr = info.external_attr
            zout.writestr(out, data, zipfile.ZIP_STORED)
    return compiled


def _record(data: bytes, compiled: dict[str, str], added: bool = False) -> bytes:
    """A wheel's RECORD with each compiled ``.py`` line replaced by its ``.pyc``'s (name, hash, size), or with
    ``added``, the ``.pyc`` lines (keyed by their own names) added before RECORD's own line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(data.decode())):
        if added and row and row[0].endswith(".dist-info/RECORD"):
            out.writelines(line + "\n" for line in compiled.values())
        if not added and row and row[0] in compiled:
            out.write(compiled[row[0]] + "\n")
        else:
            writer.writerow(row)
    return out.getvalue().encode()


def compile_archives(jobs: Sequence[Job], pyodide_dir: Path, *, cache: bool = True) -> int:
    """Run :func:`compile_archive` for each job under the Pyodide in ``pyodide_dir`` (the npm package), in Node.

    With ``cache``, a job whose output is in the cache (:func:`cache_entry`) is copied from there
    instead, once checked; what is compiled is stored there. Returns how many jobs the cache answered.
    """
    if not jobs:
        return 0
    entries = {job: cache_entry(job, pyodide_dir) for job in jobs} if cache else {}
    todo = [job for job in jobs if not (job in entries and _take(entries[job], job))]
    if todo:
        _compile(todo, pyodide_dir)
        for job in todo:
            if job in entries:
                _store(entries[job], job.dest)
    return len(jobs) - len(todo)


def _compile(jobs: Sequence[Job], pyodide_dir: Path) -> None:
    node = shutil.which("node")
    if node is None:
        raise PyCompileError("node is required to compile Python archives with Pyodide (install Node.js >= 18)")
    spec = [[str(j.source.resolve()), str(j.dest.resolve()), j.prefix, j.sources] for j in jobs]
    proc = subprocess.run(
        [node, str(RUNNER), str(pyodide_dir.resolve()), str(Path(__file__).resolve()), json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_OPTIONS": ""},
    )
    if proc.returncode != 0:
        raise PyCompileError(f"compiling {[j.source.name for j in jobs]} under Pyodide failed:\n{proc.stderr[-4000:]}")
    for job in jobs:
        if not job.dest.is_file():
            raise PyCompileError(f"Pyodide did not write {job.dest}")


# --------------------------------------------------------------------------- cache

#: Part of every cache key: raise it when what an entry means changes.
CACHE_FORMAT = 1


def cache_entry(job: Job, pyodide_dir: Path) -> Path:
    """Where the cache keeps ``job``'s output: ``bytecode/<key[:2]>/<key>.zip`` in the build's cache
    (:func:`pyapp_build.compress.cache_dir`, outside the repository, so a fresh clone reuses it).

    key = sha256 of :data:`CACHE_FORMAT`, the source's sha256, the prefix, this module and its runner
    (what compiles), and the Pyodide that compiles (its ``package.json``): whatever decides the bytes.
    """
    from pyapp_build.compress import cache_dir, sha256_file  # host only: this module also runs inside Pyodide

    parts = [str(CACHE_FORMAT), sha256_file(job.source), job.prefix, *(["sources"] if job.sources else [])]
    parts += [sha256_file(path) for path in (Path(__file__), RUNNER, pyodide_dir / "package.json")]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return cache_dir() / "bytecode" / key[:2] / f"{key}.zip"


def _take(entry: Path, job: Job) -> bool:
    """Copy a cached output to ``job.dest`` if it is whole: its sha256 is the one stored beside it, and it holds
    the source's members in order, each ``.py`` as ``.pyc``, the others (RECORD aside) with the same CRC."""
    from pyapp_build.compress import sha256_file

    try:
        if sha256_file(entry) != entry.with_suffix(".sha256").read_text().strip():
            return False
        with zipfile.ZipFile(job.source) as zin, zipfile.ZipFile(entry) as zcached:
            cached_members = zcached.infolist()
            if job.sources:  # each source followed by its bytecode, exactly; then the rest compared as below
                added = {pycache_name(i.filename) for i in zin.infolist() if i.filename.endswith(".py")}
                expected = [
                    name
                    for i in zin.infolist()
                    for name in (i.filename, *([pycache_name(i.filename)] if i.filename.endswith(".py") else []))
                ]
                if [i.filename for i in cached_members] != expected:
                    return False
                cached_members = [i for i in cached_members if i.filename not in added]
            pairs = list(itertools.zip_longest(zin.infolist(), cached_members))
        for original, cached in pairs:
            if original is None or cached is None:
                return False
            if original.filename.endswith(".py") and not job.sources:
                if cached.filename != original.filename + "c":
                    return False
            elif cached.filename != original.filename or (
                cached.CRC != original.CRC and not cached.filename.endswith(".dist-info/RECORD")
            ):
                return False
        shutil.copyfile(entry, job.dest)
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    with contextlib.suppress(OSError):
        os.utime(entry)  # recently used
    return True


def _store(entry: Path, output: Path) -> None:
    """Keep ``output`` in the cache (a whole entry or none); a cache that cannot be written is skipped."""
    from pyapp_build.compress import sha256_file

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".tmp-{os.getpid()}-{entry.name}")
        shutil.copyfile(output, tmp)
        entry.with_suffix(".sha256").write_text(sha256_file(output) + "\n")
        os.replace(tmp, entry)
    except OSError as exc:
        print(f"pycompile: cannot write the cache ({exc}); going on without it", file=sys.stderr)
