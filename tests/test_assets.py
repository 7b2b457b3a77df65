"""The asset build: verified Pyodide wheels, stale/corrupt detection, the pyapp wheel, static export."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import serve
from pyapp import assets
from pyapp.manifest import ModelManifest, weight_bytes


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: None) -> Path:
    """The build pointed at empty output dirs, with a copy of the (real) wheel mirror, CDN off."""
    web = tmp_path / "web"
    shutil.copytree(assets.WEB, web, ignore=shutil.ignore_patterns("vendor"))
    monkeypatch.setattr(assets, "WEB", web)
    monkeypatch.setattr(assets, "VENDOR", web / "vendor")
    monkeypatch.setattr(assets, "MODELS", tmp_path / "models")
    real_cache = assets.CACHE
    monkeypatch.setattr(assets, "CACHE", tmp_path / "cache")
    # The pinned scikit-image wheel (sample photos) is reused, not downloaded again.
    (tmp_path / "cache" / "downloads").mkdir(parents=True)
    real_samples = real_cache / "downloads" / assets.SAMPLES_WHEEL[0]
    if real_samples.exists():
        shutil.copy(real_samples, tmp_path / "cache" / "downloads")
    mirror = tmp_path / "mirror"
    shutil.copytree(assets._mirror_dir(), mirror)
    monkeypatch.setattr(assets, "_mirror_dir", lambda: mirror)
    monkeypatch.setattr(assets, "_fetch_cdn", lambda name: None)
    return tmp_path


def _numpy_wheel() -> str:
    return str(assets._lock_entries()["numpy"]["file_name"])


def test_tampered_wheel_fails_the_build(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One flipped byte in a wheel from the mirror stops the build, names the file and both hashes."""
    wheel = sandbox / "mirror" / _numpy_wheel()
    data = bytearray(wheel.read_bytes())
    data[1000] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(assets.BuildError, match=r"sha256 mismatch for numpy-2\.0\.2-.*\.whl") as err:
        assets.build(only=["wheels"])
    assert "official pyodide-lock.json 0.27.7" in str(err.value)
    assert not (sandbox / "web" / "vendor" / "pyodide" / _numpy_wheel()).exists(), "nothing half-vendored"
    # The CLI reports it and exits non-zero.
    assert serve.main(["build"]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err


def test_datasets_come_only_from_a_checked_wheel(sandbox: Path) -> None:
    """The digits file is taken from scikit-learn's Pyodide wheel only when that wheel matches the official lock."""
    packages = assets.official_lock()["packages"]
    assert isinstance(packages, dict)
    wheel = sandbox / "mirror" / str(packages["scikit-learn"]["file_name"])
    good = wheel.read_bytes()
    wheel.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    data = sandbox / "web" / "vendor" / "data"
    with pytest.raises(assets.BuildError, match=r"sha256 mismatch for scikit_learn-1\.6\.1-"):
        assets.build(only=["data"])
    assert not data.exists() or not any(data.iterdir()), "nothing half-vendored"
    wheel.write_bytes(good)
    assert assets.build(only=["data"]).rebuilt == ["data"]
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == ["digits.csv.gz", "lfw_subset.npy"]


def test_vendored_wheels_match_official_lock(built: None) -> None:
    """What the real build vendored is byte-identical to the official lock's hashes."""
    assets.verify_vendored_wheels()
    lock = json.loads((assets.VENDOR / "pyodide" / "pyodide-lock.json").read_text())
    assert sorted(lock["packages"]) == ["micropip", "numpy", "packaging", "pillow"]
    assert lock["info"]["version"] == "0.27.7"


def test_verify_detects_tampered_vendored_wheel(sandbox: Path) -> None:
    assets.build(only=["wheels"])
    vendored = sandbox / "web" / "vendor" / "pyodide" / _numpy_wheel()
    vendored.write_bytes(vendored.read_bytes()[:-10])
    with pytest.raises(assets.BuildError, match="sha256 mismatch"):
        assets.verify_vendored_wheels(vendored.parent)


def test_rebuild_is_a_no_op_then_repairs_partial_or_corrupt_output(sandbox: Path) -> None:
    """Up to date -> nothing rebuilt; a deleted or modified output -> only that step is rebuilt."""
    first = assets.build()
    assert first.rebuilt == ["pyodide", "wheels", "tfjs", "pyscript", "nsfwjs", "model", "samples", "data", "pyapp"]
    again = assets.build()
    assert again.rebuilt == []
    (sandbox / "web" / "vendor" / "tfjs" / "tfjs-backend-wasm.wasm").unlink()
    shard = sandbox / "models" / "nsfw-mobilenet-v2" / "uint8" / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:100])
    assert assets.status()["tfjs"] == "tfjs-backend-wasm.wasm missing"
    assert assets.status()["model"] == "nsfw-mobilenet-v2/uint8/group1-shard1of1.bin modified or corrupt"
    repaired = assets.build()
    assert repaired.rebuilt == ["tfjs", "model"]
    assert all(v == "ok" for v in assets.status().values())


def test_model_variants_are_standard_layers_models_with_checked_manifest(built: None) -> None:
    """Each variant's model.json + shards are consistent; the manifest's hashes and labels are right."""
    d = assets.MODELS / "nsfw-mobilenet-v2"
    manifest = ModelManifest.from_json((d / "manifest.json").read_text(), base_url="models/nsfw-mobilenet-v2/")
    assert manifest.labels == ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")
    assert manifest.input.size == 224
    assert [v.name for v in manifest.variants] == ["uint8", "float16", "float32"]
    sizes = {}
    for variant in manifest.variants:
        for name, digest in variant.files.items():
            assert hashlib.sha256((d / name).read_bytes()).hexdigest() == digest
        model = json.loads((d / variant.model).read_text())
        assert model["format"] == "layers-model"
        shards = [d / variant.name / p for g in model["weightsManifest"] for p in g["paths"]]
        sizes[variant.name] = sum(p.stat().st_size for p in shards)
        assert sizes[variant.name] == weight_bytes(model["weightsManifest"])
    # The shipped uint8 weights are NSFWJS's own bytes; float32 is 4x, float16 2x their count.
    assert sizes["float32"] == 4 * sizes["uint8"]
    assert sizes["float16"] == 2 * sizes["uint8"]
    graph = ModelManifest.from_json((assets.MODELS / "nsfw-mobilenet-v2-mid" / "manifest.json").read_text())
    assert graph.variants[0].format == "graph-model"
    assert json.loads((assets.MODELS / "nsfw-mobilenet-v2-mid" / "uint8" / "model.json").read_text())["format"] == (
        "graph-model"
    )


def test_pyapp_wheel_is_reproducible_and_browser_only(tmp_path: Path) -> None:
    """Same sources -> same bytes; host-only modules stay out; it installs and imports."""
    a = assets.build_wheel(tmp_path / "a")
    b = assets.build_wheel(tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
        record = zf.read("pyapp-0.1.0.dist-info/RECORD").decode()
    assert "pyapp/model.py" in names
    assert "pyapp/py.typed" in names
    assert "pyapp/assets.py" not in names
    assert all(n in record for n in names if not n.endswith("RECORD"))
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
