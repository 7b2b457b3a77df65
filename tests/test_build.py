"""pyapp_build, the site's build: verified Pyodide wheels, per-step fingerprints, stale/corrupt detection, the pyapp
wheel (browser code only), static export."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from harness import run_in_pyodide

import pyapp_build
import serve
from pyapp.artifacts import ModelJson
from pyapp.manifest import ModelManifest
from pyapp_build import compress


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: None) -> Path:
    """The build pointed at empty output dirs, with a copy of the (real) wheel mirror, CDN off."""
    web = tmp_path / "web"
    shutil.copytree(pyapp_build.WEB, web, ignore=shutil.ignore_patterns("vendor"))
    monkeypatch.setattr(pyapp_build.pins, "WEB", web)
    monkeypatch.setattr(pyapp_build.pins, "VENDOR", web / "vendor")
    monkeypatch.setattr(pyapp_build.pins, "MODELS", tmp_path / "models")
    # The downloads (pyapp_build.pyodide.downloads_dir(), outside the repository) are the real build's, reused.
    monkeypatch.setattr(pyapp_build.pins, "CACHE", tmp_path / "cache")
    mirror = tmp_path / "mirror"
    shutil.copytree(pyapp_build.pyodide.mirror_dir(), mirror)
    monkeypatch.setattr(pyapp_build.pyodide, "mirror_dir", lambda: mirror)
    monkeypatch.setattr(pyapp_build.pyodide, "_fetch_cdn", lambda name: None)
    # Brotli at quality 11 takes a minute for the whole build; the same code at quality 1 takes seconds.
    monkeypatch.setattr(compress, "BROTLI_QUALITY", 1)
    return tmp_path


def _numpy_wheel() -> str:
    return str(pyapp_build.pyodide.lock_entries()["numpy"]["file_name"])


def test_tampered_wheel_fails_the_build(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One flipped byte in a wheel from the mirror stops the build, names the file and both hashes."""
    wheel = sandbox / "mirror" / _numpy_wheel()
    data = bytearray(wheel.read_bytes())
    data[1000] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(pyapp_build.BuildError, match=r"sha256 mismatch for numpy-2\.0\.2-.*\.whl") as err:
        pyapp_build.build(only=["wheels"])
    assert "official pyodide-lock.json 0.27.7" in str(err.value)
    assert not (sandbox / "web" / "vendor" / "pyodide" / _numpy_wheel()).exists(), "nothing half-vendored"
    # The CLI reports it and exits non-zero.
    assert serve.main(["build"]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err


def test_datasets_come_only_from_a_checked_wheel(sandbox: Path) -> None:
    """The digits file is taken from scikit-learn's Pyodide wheel only when that wheel matches the official lock."""
    packages = pyapp_build.pyodide.official_lock()["packages"]
    assert isinstance(packages, dict)
    wheel = sandbox / "mirror" / str(packages["scikit-learn"]["file_name"])
    good = wheel.read_bytes()
    wheel.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    data = sandbox / "web" / "vendor" / "data"
    with pytest.raises(pyapp_build.BuildError, match=r"sha256 mismatch for scikit_learn-1\.6\.1-"):
        pyapp_build.build(only=["data"])
    assert not data.exists() or not any(data.iterdir()), "nothing half-vendored"
    wheel.write_bytes(good)
    assert pyapp_build.build(only=["data"]).rebuilt == ["data"]
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == ["digits.csv.gz", "lfw_subset.npy"]


def test_vendored_wheels_match_official_lock(built: None) -> None:
    """What the real build vendored is the official lock's wheels: the pure ones byte for byte, numpy and
    Pillow compiled to bytecode, the lock's entries the official ones with the compiled files' sha256."""
    pyapp_build.pyodide.verify_vendored_wheels()
    lock = json.loads((pyapp_build.VENDOR / "pyodide" / "pyodide-lock.json").read_text())
    assert sorted(lock["packages"]) == ["micropip", "numpy", "packaging", "pillow", "pyapp-tfjs", "pyfive"]
    assert lock["info"]["version"] == "0.27.7"
    official = pyapp_build.pyodide.official_lock()["packages"]
    assert isinstance(official, dict)
    for name in ("micropip", "packaging"):
        assert lock["packages"][name] == official[name], "the official entries, untouched"
    for name in ("numpy", "pillow"):
        entry = lock["packages"][name]
        wheel = pyapp_build.VENDOR / "pyodide" / entry["file_name"]
        assert {**entry, "sha256": official[name]["sha256"]} == official[name]
        assert entry["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest() != official[name]["sha256"]


def test_bytecode_archives_are_the_originals_compiled_by_pyodide(built: None, tmp_path: Path) -> None:
    """The standard library zip and the numpy wheel hold, for each .py of the originals (the npm package's
    zip, the official wheel), a .pyc of CPython 3.12 (Pyodide's, magic 3531) where Pyodide's boot finds it,
    every other member unchanged, stored uncompressed; the wheel's RECORD lists the .pyc files with their
    sha256; and compiling the originals again gives the same bytes (the build is reproducible)."""
    from pyapp_build import pycompile

    numpy_name, numpy_bytes = pyapp_build.pyodide.pyodide_wheel("numpy")
    original = tmp_path / numpy_name
    original.write_bytes(numpy_bytes)
    stdlib = pyapp_build.NODE_MODULES / "pyodide" / "python_stdlib.zip"
    pairs = [(stdlib, pyapp_build.VENDOR / "pyodide" / "python_stdlib.zip", pyapp_build.STDLIB_PREFIX)]
    pairs.append((original, pyapp_build.VENDOR / "pyodide" / numpy_name, pyapp_build.SITE_PACKAGES))
    for source, vendored, _ in pairs:
        with zipfile.ZipFile(source) as zin, zipfile.ZipFile(vendored) as zout:
            names = zin.namelist()
            assert zout.namelist() == [n + "c" if n.endswith(".py") else n for n in names]
            assert {i.compress_type for i in zout.infolist()} == {zipfile.ZIP_STORED}
            for name in names:
                if name.endswith(".py"):
                    pyc = zout.read(name + "c")
                    assert pyc[:4] == pycompile.PYC_MAGIC_312, name
                    assert int.from_bytes(pyc[4:8], "little") == 0b01, "unchecked hash-based (PEP 552)"
                elif not name.endswith("RECORD"):
                    assert zout.read(name) == zin.read(name), name
    with zipfile.ZipFile(pyapp_build.VENDOR / "pyodide" / numpy_name) as z:
        record = {row.split(",")[0]: row for row in z.read("numpy-2.0.2.dist-info/RECORD").decode().splitlines()}
        pyc = z.read("numpy/__init__.pyc")
    digest = base64.urlsafe_b64encode(hashlib.sha256(pyc).digest()).rstrip(b"=").decode()
    assert record["numpy/__init__.pyc"] == f"numpy/__init__.pyc,sha256={digest},{len(pyc)}"
    assert not [name for name in record if name.endswith(".py")]
    again = [pycompile.Job(source, tmp_path / f"again-{vendored.name}", prefix) for source, vendored, prefix in pairs]
    pycompile.compile_archives(again, pyapp_build.NODE_MODULES / "pyodide", cache=False)
    for job, (_, vendored, _) in zip(again, pairs, strict=True):
        assert job.dest.read_bytes() == vendored.read_bytes(), vendored.name


def test_the_browsers_pyapp_wheel_is_the_dist_wheel_with_checked_bytecode_beside_each_module(built: None) -> None:
    """web/vendor/wheels/ holds dist/'s wheel with, right after each module, its CPython 3.12 bytecode where the
    import system looks (``pyapp/__pycache__/m.cpython-312.pyc``): compiled by Pyodide's own interpreter,
    *checked*-hash (PEP 552, flags 0b11: used only while the source beside it is the one it was compiled from),
    listed in RECORD with its sha256 and size. Every other member is dist's, byte for byte; dist/ has no bytecode
    (pip compiles for the interpreter it installs into). Stored: brotli compresses the whole better."""
    from pyapp_build import pycompile

    with zipfile.ZipFile(pyapp_build.pins.DIST / pyapp_build.wheel_name()) as zdist:
        dist = {i.filename: zdist.read(i) for i in zdist.infolist()}
    with zipfile.ZipFile(pyapp_build.VENDOR / "wheels" / pyapp_build.wheel_name()) as zsite:
        site_infos = zsite.infolist()
        site = {i.filename: zsite.read(i) for i in site_infos}
    assert not [n for n in dist if n.endswith(".pyc")]
    expected = [m for n in dist for m in ([n, pycompile.pycache_name(n)] if n.endswith(".py") else [n])]
    assert [i.filename for i in site_infos] == expected
    assert {i.compress_type for i in site_infos} == {zipfile.ZIP_STORED}
    record = {row.split(",")[0]: row for row in site["pyapp_tfjs-0.1.0.dist-info/RECORD"].decode().splitlines()}
    assert set(record) == set(expected)
    for name, data in site.items():
        if name.endswith(".pyc"):
            assert data[:4] == pycompile.PYC_MAGIC_312, name
            assert int.from_bytes(data[4:8], "little") == 0b11, f"{name}: checked hash-based"
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert record[name] == f"{name},sha256={digest},{len(data)}"
        elif not name.endswith("RECORD"):
            assert data == dist[name], name
    assert "pyapp/__pycache__/model.cpython-312.pyc" in site


@run_in_pyodide
def test_pyapp_is_imported_from_its_bytecode_in_the_browser(pyodide: Any) -> None:
    """In Pyodide, each pyapp module loaded has its bytecode from the wheel beside it, made for this interpreter
    (its magic number) from exactly the source beside it (the hash the import system checks): so the import used
    it, and compiled nothing."""
    import importlib.util
    import sys

    loaded = [m for name, m in sys.modules.items() if name.startswith("pyapp.") and getattr(m, "__file__", None)]
    assert len(loaded) > 10, [m.__name__ for m in loaded]
    for module in loaded:
        with open(module.__file__, "rb") as f:
            source = f.read()
        with open(importlib.util.cache_from_source(module.__file__), "rb") as f:
            pyc = f.read()
        assert pyc[:4] == importlib.util.MAGIC_NUMBER, module.__name__
        assert pyc[8:16] == importlib.util.source_hash(source), module.__name__


def test_a_broken_source_stops_the_compile_with_its_name(tmp_path: Path) -> None:
    """A module that does not compile stops the build step, naming the archive and the module."""
    from pyapp_build import pycompile

    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("good.py", "X = 1\n")
        z.writestr("pkg/bad.py", "def f(:\n")
    job = pycompile.Job(broken, tmp_path / "out.zip", "/lib/")
    with pytest.raises(pycompile.PyCompileError, match=r"broken\.zip: pkg/bad\.py does not compile"):
        pycompile.compile_archives([job], pyapp_build.NODE_MODULES / "pyodide")


def test_compiled_archives_are_reused_from_the_cache_only_when_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compiled archive is kept in the build's cache (outside the repository: a fresh clone compiles
    nothing the machine compiled before); a second build copies it, the same bytes. A damaged entry, or one
    that does not hold the source's members, is compiled again; a changed source has another entry."""
    from pyapp_build import pycompile

    monkeypatch.setenv("PYAPP_CACHE_DIR", str(tmp_path / "cache"))
    pyodide_dir = pyapp_build.NODE_MODULES / "pyodide"
    sources = [tmp_path / "a.zip", tmp_path / "b.zip"]
    for i, source in enumerate(sources):
        with zipfile.ZipFile(source, "w") as z:
            z.writestr("m.py", f"X = {i}\n")
            z.writestr("data.txt", "kept as it is\n")

    def build(tag: str) -> tuple[int, list[bytes]]:
        jobs = [pycompile.Job(source, tmp_path / f"{tag}-{source.name}", "/lib/") for source in sources]
        taken = pycompile.compile_archives(jobs, pyodide_dir)
        return taken, [job.dest.read_bytes() for job in jobs]

    taken, compiled = build("first")
    assert taken == 0, "an empty cache answers nothing"
    assert build("second") == (2, compiled)
    damaged, alien = (
        pycompile.cache_entry(pycompile.Job(source, tmp_path / "x", "/lib/"), pyodide_dir) for source in sources
    )
    damaged.write_bytes(compiled[0][:-1] + bytes([compiled[0][-1] ^ 1]))
    with zipfile.ZipFile(alien, "w") as z:  # whole (the sha256 beside it made to match), not b.zip's members
        z.writestr("other.pyc", b"")
    alien.with_suffix(".sha256").write_text(hashlib.sha256(alien.read_bytes()).hexdigest())
    assert build("third") == (0, compiled), "both compiled again"
    assert build("fourth") == (2, compiled), "and their entries renewed"
    with zipfile.ZipFile(sources[0], "a") as z:
        z.writestr("n.py", "Y = 2\n")
    assert pycompile.cache_entry(pycompile.Job(sources[0], tmp_path / "x", "/lib/"), pyodide_dir) != damaged


def test_lock_names_pyapp_with_its_wheel_and_dependencies(built: None) -> None:
    """pyodide-lock added pyapp's wheel: pyodide.loadPackage("pyapp-tfjs") and micropip find it by name."""
    lock = json.loads((pyapp_build.VENDOR / "pyodide" / "pyodide-lock.json").read_text())
    entry = lock["packages"]["pyapp-tfjs"]
    wheel = pyapp_build.VENDOR / "wheels" / pyapp_build.wheel_name()
    assert entry["file_name"] == f"../wheels/{pyapp_build.wheel_name()}", (
        "relative to the lock, where the site keeps it"
    )
    assert entry["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert entry["imports"] == ["pyapp"]
    assert entry["depends"] == ["numpy", "pillow"]
    assert entry["version"] == "0.1.0"
    assert entry["install_dir"] == "site"


def test_lock_names_pyfive_pinned_from_pypi(built: None) -> None:
    """pyfive (read Keras weights in the page) is PyPI's wheel, byte for byte as pinned, and loadable by name."""
    lock = json.loads((pyapp_build.VENDOR / "pyodide" / "pyodide-lock.json").read_text())
    file_name, digest = pyapp_build.PYPI_WHEELS["pyfive"]
    entry = lock["packages"]["pyfive"]
    assert entry["file_name"] == f"../wheels/{file_name}"
    assert (
        entry["sha256"]
        == digest
        == hashlib.sha256((pyapp_build.VENDOR / "wheels" / file_name).read_bytes()).hexdigest()
    )
    assert entry["depends"] == ["numpy"], "numpy only: nothing Pyodide lacks"
    assert entry["imports"] == ["pyfive"]
    boot = [f for group in json.loads((pyapp_build.VENDOR / "build.json").read_text())["boot"].values() for f in group]
    assert not any("pyfive" in f for f in boot), "loaded when a Keras file arrives, not at boot"


def test_build_info_names_the_files_that_have_no_compressed_copies(built: None) -> None:
    """build.json ``no_copies``: the files of a type and size that get .br/.gz copies but have none (deflated
    wheels: compressed already). The service worker asks a host that compresses nothing for no copy of these,
    so none of its requests is answered 404; every other such file has both copies."""
    info = json.loads((pyapp_build.VENDOR / "build.json").read_text())
    assert info["no_copies"], "the deflated wheels (micropip, packaging, pyfive)"
    # pyapp's browser wheel is stored (sources and bytecode uncompressed, as Pyodide's compiled wheels are): it
    # compresses far better as a whole, so it has its copies.
    assert f"vendor/wheels/{pyapp_build.wheel_name()}" not in info["no_copies"]
    for rel in info["files"]:
        path = pyapp_build.MODELS / rel.removeprefix("models/") if rel.startswith("models/") else pyapp_build.WEB / rel
        if not compress.has_compressible_suffix(rel) or info["sizes"][rel] < compress.MIN_SIZE:
            continue
        has = [compress.sibling(path, c).exists() for c in ("br", "gzip")]
        assert has == ([False, False] if rel in info["no_copies"] else [True, True]), rel


def test_offline_copy_is_the_apps_runtime_and_not_the_extras(built: None) -> None:
    """The service worker's offline set (build.json ``offline``) holds every file the app boots with and
    the playground's page, and none of what most visitors never use: the sample photos, Pillow (TIFF
    only), micropip and packaging, pyfive. Each of those is downloaded, then kept, on first use; the
    offline copy is part of every first visit's bytes (issue 12: <= 12 MB on the wire)."""
    info = json.loads((pyapp_build.VENDOR / "build.json").read_text())
    offline = set(info["offline"])
    boot = {f for group in info["boot"].values() for f in group}
    assert boot <= offline, boot - offline
    assert set(info["shell"]) <= offline
    assert {"playground.html", "playground.py", "js/playground.js", "vendor/pyscript/core.js"} <= offline
    extras = [
        f
        for f in offline
        if f.startswith("vendor/samples/")
        or f.startswith(
            ("vendor/pyodide/pillow-", "vendor/pyodide/micropip-", "vendor/pyodide/packaging-", "vendor/wheels/pyfive-")
        )
    ]
    assert extras == [], extras
    assert any(f.startswith("vendor/samples/") for f in info["files"]), "the samples are still part of the build"
    # Kept too where the browser cannot decode in the app's worker (js/page.js asks the app).
    assert [f.split("-")[0] for f in info["offline_decoder"]] == ["vendor/pyodide/pillow"]
    assert set(info["offline_decoder"]) <= set(info["files"])
    # What that costs on the wire with brotli (serve.py): the siblings the build wrote.
    wire = 0
    for rel in offline:
        path = (pyapp_build.ROOT / rel) if rel.startswith("models/") else (pyapp_build.WEB / rel)
        br = path.with_name(path.name + ".br")
        wire += br.stat().st_size if br.exists() else path.stat().st_size
    assert wire <= 12_000_000, f"offline copy {wire:,} bytes with brotli"


def test_tfjs_sri_module_pins_the_vendored_files(built: None) -> None:
    """pyapp/_tfjs_files.py (the CDN fallback) is what the build writes from node_modules, and each pin is
    the sha384 of the file the site vendors; the URLs are the same TF.js version on jsDelivr."""
    from pyapp import _tfjs_files

    assert pyapp_build.TFJS_SRI_MODULE.read_text() == pyapp_build.jslibs.tfjs_sri_source()
    assert sorted(_tfjs_files.FILES) == sorted(pyapp_build.TFJS_FILES.values())
    assert _tfjs_files.TFJS_VERSION == "4.22.0"
    for name, (url, integrity) in _tfjs_files.FILES.items():
        data = (pyapp_build.VENDOR / "tfjs" / name).read_bytes()
        digest = base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert integrity == f"sha384-{digest}", name
        assert url.startswith("https://cdn.jsdelivr.net/npm/@tensorflow/tfjs")
        assert url.endswith(f"@4.22.0/dist/{name}")


def test_verify_detects_tampered_vendored_wheel(sandbox: Path) -> None:
    pyapp_build.build(only=["wheels"])
    vendored = sandbox / "web" / "vendor" / "pyodide" / _numpy_wheel()
    vendored.write_bytes(vendored.read_bytes()[:-10])
    with pytest.raises(pyapp_build.BuildError, match="sha256 mismatch"):
        pyapp_build.pyodide.verify_vendored_wheels(vendored.parent)


def test_rebuild_is_a_no_op_then_repairs_partial_or_corrupt_output(sandbox: Path) -> None:
    """Up to date -> nothing rebuilt; a deleted or modified output -> only that step is rebuilt."""
    first = pyapp_build.build()
    assert first.rebuilt == [
        "pyodide",
        "wheels",
        "tfjs",
        "pyscript",
        "nsfwjs",
        "brotli",
        "model",
        "samples",
        "data",
        "pypi",
        "pyapp",
        "lock",
        "compress",
    ]
    again = pyapp_build.build()
    assert again.rebuilt == []
    (sandbox / "web" / "vendor" / "tfjs" / "tfjs-backend-wasm.wasm").unlink()
    shard = sandbox / "models" / "nsfw-mobilenet-v2" / "uint8" / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:100])
    assert pyapp_build.status()["tfjs"] == "tfjs-backend-wasm.wasm missing"
    assert pyapp_build.status()["model"] == "nsfw-mobilenet-v2/uint8/group1-shard1of1.bin modified or corrupt"
    repaired = pyapp_build.build()
    # The rebuilt files are newer than their .br/.gz siblings: those are checked and renewed too.
    assert repaired.rebuilt == ["tfjs", "model", "compress"]
    assert all(v == "ok" for v in pyapp_build.status().values())
    assert compress.decode_sibling(shard.with_name(shard.name + ".br")) == shard.read_bytes()


def test_compress_step_writes_checked_siblings_outside_build_json(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every compressible output gets .br/.gz siblings that decode to it; build.json does not list them;
    a damaged or outdated sibling makes the step stale, and only that file is compressed again."""
    pyapp_build.build()
    vendor, models = sandbox / "web" / "vendor", sandbox / "models"
    wasm = vendor / "pyodide" / "pyodide.asm.wasm"
    for original in (wasm, vendor / "tfjs" / "tf.min.js", models / "nsfw-mobilenet-v2" / "uint8" / "model.json"):
        for coding in compress.SIBLINGS:
            assert compress.decode_sibling(compress.sibling(original, coding)) == original.read_bytes()
    for kind in ("png", "jpg", "gz"):  # compressed already
        assert not list(vendor.rglob(f"*.{kind}.br")), kind
    # The stored bytecode archives get siblings (pyapp's browser wheel too); deflated wheels (pyfive's,
    # micropip's) save too little.
    archives = sorted(p.name for p in vendor.rglob("*.br") if p.name.endswith((".whl.br", ".zip.br")))
    assert [name.split("-")[0] for name in archives] == ["numpy", "pillow", "pyapp_tfjs", "python_stdlib.zip.br"]
    info = json.loads((vendor / "build.json").read_text())
    assert not [f for f in [*info["files"], *info["sizes"]] if f.endswith((".br", ".gz")) and "digits" not in f]
    for group in info["boot"].values():
        assert not [f for f in group if f.endswith((".br", ".gz"))]
    assert (vendor / ".stamp-compress.json").exists()

    br = compress.sibling(wasm, "br")
    br.write_bytes(br.read_bytes()[:-1])
    assert pyapp_build.status()["compress"] == "web/vendor/pyodide/pyodide.asm.wasm.br modified or corrupt"
    capsys.readouterr()
    assert pyapp_build.build().rebuilt == ["compress"]
    assert compress.decode_sibling(br) == wasm.read_bytes()
    assert "compress: 1 files compressed" in capsys.readouterr().err, "the others are reused"

    js = vendor / "tfjs" / "tf.min.js"
    js.touch()  # newer than its siblings, which serve.py would then ignore
    assert pyapp_build.status()["compress"] == "web/vendor/tfjs/tf.min.js.br older than its original"
    assert pyapp_build.build().rebuilt == ["compress"]
    assert "compress: 0 files compressed" in capsys.readouterr().err, "same bytes: the siblings are reused"
    assert compress.sibling(js, "br").stat().st_mtime_ns >= js.stat().st_mtime_ns
    assert pyapp_build.status()["compress"] == "ok"
    # A sibling that was deleted is written again.
    compress.sibling(js, "gzip").unlink()
    assert pyapp_build.build().rebuilt == ["compress"]
    assert compress.decode_sibling(compress.sibling(js, "gzip")) == js.read_bytes()


def test_model_variants_are_standard_layers_models_with_checked_manifest(built: None) -> None:
    """Each variant's model.json + shards are consistent; the manifest's hashes and labels are right."""
    d = pyapp_build.MODELS / "nsfw-mobilenet-v2"
    manifest = ModelManifest.from_json((d / "manifest.json").read_text(), base_url="models/nsfw-mobilenet-v2/")
    assert manifest.labels == ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")
    assert manifest.input.size == 224
    assert [v.name for v in manifest.variants] == ["uint8", "float16", "float32"]
    sizes = {}
    for variant in manifest.variants:
        for name, digest in variant.files.items():
            assert hashlib.sha256((d / name).read_bytes()).hexdigest() == digest
        model = ModelJson.parse((d / variant.model).read_bytes(), variant.model)
        assert model.spec["format"] == "layers-model"
        sizes[variant.name] = sum((d / variant.name / p).stat().st_size for p in model.weights.paths)
        assert sizes[variant.name] == model.weights.total
    # The shipped uint8 weights are NSFWJS's own bytes; float32 is 4x, float16 2x their count.
    assert sizes["float32"] == 4 * sizes["uint8"]
    assert sizes["float16"] == 2 * sizes["uint8"]
    graph = ModelManifest.from_json((pyapp_build.MODELS / "nsfw-mobilenet-v2-mid" / "manifest.json").read_text())
    assert graph.variants[0].format == "graph-model"
    assert json.loads((pyapp_build.MODELS / "nsfw-mobilenet-v2-mid" / "uint8" / "model.json").read_text())[
        "format"
    ] == ("graph-model")


def test_each_step_fingerprints_only_its_own_inputs(
    built: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's fingerprint holds its own module's code and its own pins, not the whole build: an edit to
    pyapp_build/samples.py makes stale only the three steps it runs, and a new sample photo only one."""
    from pyapp_build import pins, samples, site

    before = {s.name: s.inputs() for s in site.steps()}
    edited = tmp_path / "samples.py"
    edited.write_text(Path(str(samples.__file__)).read_text() + "# an edit\n")
    monkeypatch.setattr(samples, "__file__", str(edited))
    after = {s.name: s.inputs() for s in site.steps()}
    assert sorted(name for name in before if before[name] != after[name]) == ["data", "pypi", "samples"]
    monkeypatch.undo()
    monkeypatch.setattr(pins, "SAMPLES", (*pins.SAMPLES, "page.png"))
    after = {s.name: s.inputs() for s in site.steps()}
    assert [name for name in before if before[name] != after[name]] == ["samples"]


def test_pyapp_wheel_is_reproducible_and_browser_only(tmp_path: Path) -> None:
    """The PEP 517 build (hatchling): same sources -> same bytes; host-only modules stay out; versioned
    dependencies, py.typed and the README in the metadata; it installs and imports."""
    a = pyapp_build.build_wheel(tmp_path / "a")
    b = pyapp_build.build_wheel(tmp_path / "b")
    assert a.name == "pyapp_tfjs-0.1.0-py3-none-any.whl"
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
        record = zf.read("pyapp_tfjs-0.1.0.dist-info/RECORD").decode()
        metadata = zf.read("pyapp_tfjs-0.1.0.dist-info/METADATA").decode()
        sources = {n: zf.read(n).decode() for n in names if n.endswith(".py")}
    # Exactly the runtime package: its modules and py.typed, nothing of the build (pyapp_build/, serve.py).
    package = sorted(
        p.relative_to(pyapp_build.ROOT).as_posix()
        for p in (pyapp_build.ROOT / "pyapp").rglob("*")
        if p.suffix in (".py", ".typed") and "__pycache__" not in p.parts
    )
    assert sorted(n for n in names if not n.startswith("pyapp_tfjs-0.1.0.dist-info/")) == package
    assert {"pyapp/model.py", "pyapp/py.typed", "pyapp/_tfjs_files.py"} <= set(names)
    build_imports = ("import pyapp_build", "from pyapp_build", "import subprocess", "import serve")
    assert [n for n, text in sources.items() if any(i in text for i in build_imports)] == []
    assert all(n in record for n in names if not n.endswith("RECORD"))
    headers, _, description = metadata.partition("\n\n")
    assert "Name: pyapp-tfjs" in headers.splitlines()
    assert "Requires-Dist: numpy>=2.0" in headers.splitlines()
    assert "Requires-Dist: pillow>=10.2" in headers.splitlines()
    assert "Requires-Python: >=3.11" in headers.splitlines()
    assert "Description-Content-Type: text/markdown" in headers.splitlines()
    assert description.strip() == (pyapp_build.ROOT / "README.md").read_text().strip()
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(a)], check=True
    )
    out = subprocess.run(
        [sys.executable, "-c", "import pyapp.manifest, pyapp; print(pyapp.__version__)"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0.1.0"


def test_dist_has_a_reproducible_sdist_that_builds_the_same_wheel(tmp_path: Path) -> None:
    """dist/: the wheel and the sdist; the sdist holds the package, README and pyproject.toml (not the
    host-only build), and the wheel is built from it, as an installer would."""
    wheel, sdist = pyapp_build.build_dist(tmp_path / "one")
    again = pyapp_build.build_dist(tmp_path / "two")
    assert sdist.name == "pyapp_tfjs-0.1.0.tar.gz"
    assert (wheel.read_bytes(), sdist.read_bytes()) == (again[0].read_bytes(), again[1].read_bytes())
    with tarfile.open(sdist) as tf:
        members = tf.getnames()
        info = tf.extractfile("pyapp_tfjs-0.1.0/PKG-INFO")
        assert info is not None
        pkg_info = info.read().decode()
    assert "pyapp_tfjs-0.1.0/pyproject.toml" in members
    assert "pyapp_tfjs-0.1.0/README.md" in members
    assert "pyapp_tfjs-0.1.0/pyapp/py.typed" in members
    assert not [m for m in members if "/tests/" in m or "/web/" in m or "pyapp_build" in m]
    assert "Requires-Dist: numpy>=2.0" in pkg_info


def test_static_export_serves_the_same_site(built: None, tmp_path: Path) -> None:
    """build --out writes web + models + _headers; refuses to clobber a foreign directory."""
    out = tmp_path / "site"
    assert serve.main(["build", "--out", str(out)]) == 0
    assert (out / "index.html").exists()
    assert (out / "models" / "nsfw-mobilenet-v2" / "manifest.json").exists()
    assert (out / "vendor" / "pyodide" / "pyodide.asm.wasm").exists()
    assert not list(out.rglob(".stamp-*"))
    assert "Cross-Origin-Embedder-Policy: require-corp" in (out / "_headers").read_text()
    info = json.loads((out / "vendor" / "build.json").read_text())
    for rel, digest in info["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    assert serve.main(["build", "--out", str(out)]) == 0  # re-export over our own output is fine
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert serve.main(["build", "--out", str(foreign)]) == 1
    assert (foreign / "keep.txt").read_text() == "mine"


def test_a_fresh_clone_takes_node_modules_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: None
) -> None:
    """npm ci's install of a lock is kept in the build cache; a clone with the same lock and no node_modules
    gets it from there as hard links, running no npm; a cached install the lock does not match is dropped
    for a new npm ci, which is kept in its place."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy2(pyapp_build.ROOT / "package-lock.json", clone / "package-lock.json")
    monkeypatch.setattr(pyapp_build.pins, "ROOT", clone)
    monkeypatch.setattr(pyapp_build.pins, "NODE_MODULES", clone / "node_modules")
    monkeypatch.setenv("PYAPP_CACHE_DIR", str(tmp_path / "cache"))
    npm_runs: list[list[str]] = []
    # The real install, seen through links only: the test never writes into a file of it.
    real = tmp_path / "real_node_modules"
    pyapp_build.npm.link_tree(Path(__file__).resolve().parent.parent / "node_modules", real)

    def npm_ci(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Stands in for npm ci: installs what the real one installed for this lock (links, never writes)."""
        npm_runs.append(cmd)
        pyapp_build.npm.link_tree(real, clone / "node_modules")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(pyapp_build.npm.subprocess, "run", npm_ci)

    assert pyapp_build.npm.ensure_node_modules() is True  # nothing cached yet: npm ci, then kept
    assert len(npm_runs) == 1
    saved = pyapp_build.npm._node_modules_cache(pyapp_build.npm.lock_bytes())
    assert (saved / "pyodide" / "package.json").is_file()

    shutil.rmtree(clone / "node_modules")  # a fresh clone of the same commit
    assert pyapp_build.npm.ensure_node_modules() is True
    assert len(npm_runs) == 1, "taken from the cache, no npm ci"
    mine, cached = (clone / "node_modules/pyodide/package.json").stat(), (saved / "pyodide/package.json").stat()
    assert (mine.st_ino, mine.st_dev) == (cached.st_ino, cached.st_dev), "a hard link, not a copy"
    assert pyapp_build.npm.ensure_node_modules() is False  # up to date: nothing to do

    shutil.rmtree(clone / "node_modules")
    shutil.rmtree(saved / "pyodide")  # the cached install lost a package the lock pins
    assert pyapp_build.npm.ensure_node_modules() is True
    assert len(npm_runs) == 2, "the broken cached install was not used"
    assert (saved / "pyodide" / "package.json").is_file(), "the new install is kept in its place"
    assert pyapp_build.npm._npm_ok(pyapp_build.npm.lock_bytes()) == (True, "")
