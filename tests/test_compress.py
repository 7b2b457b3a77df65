"""pyapp_build.compress: which files get .br/.gz siblings, deterministic bytes, exact round trips, stale siblings."""

from __future__ import annotations

import gzip
import os
import random
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from pyapp_build import compress


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty cache of its own (never the user's), outside its tree."""
    folder = tmp_path_factory.mktemp("pyapp-cache")
    monkeypatch.setenv("PYAPP_CACHE_DIR", str(folder))
    return folder


def _text(size: int, seed: int = 0) -> bytes:
    """Compressible, JS-like text of ``size`` bytes."""
    rng = random.Random(seed)
    words = ["const", "tensor", "shape", "return", "function", "await", "dispose", "=>", "{", "}", ";"]
    out = bytearray()
    while len(out) < size:
        out += f"{rng.choice(words)} x{rng.randrange(500)} ".encode()
    return bytes(out[:size])


def _age(path: Path, seconds: int) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [
        ("pyodide.asm.wasm", 5000, True),
        ("tf.min.js", 5000, True),
        ("pyodide.mjs", 5000, True),
        ("model.json", 5000, True),
        ("group1-shard1of1.bin", 5000, True),
        ("lfw_subset.npy", 5000, True),
        ("digits.CSV", 5000, True),
        ("index.html", 5000, True),
        ("manifest.webmanifest", 5000, True),
        ("tf.min.js", 1023, False),  # under 1 KiB
        ("numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl", 5000, False),  # not a zip: see the next test
        ("python_stdlib.zip", 5000, False),
        ("digits.csv.gz", 5000, False),
        ("tf.min.js.br", 5000, False),
        ("chelsea.png", 5000, False),
        ("rocket.jpg", 5000, False),
        (".stamp-model.json", 5000, False),  # build bookkeeping
        ("_headers", 5000, False),
    ],
)
def test_compressible_choice(tmp_path: Path, name: str, size: int, expected: bool) -> None:
    """Text, JS, JSON, WebAssembly, weights and stored archives of 1 KiB or more; never formats compressed
    already."""
    path = tmp_path / name
    path.write_bytes(b"a" * size)
    assert compress.is_compressible(path) is expected
    assert not compress.COMPRESSIBLE_SUFFIXES & compress.ALREADY_COMPRESSED_SUFFIXES


@pytest.mark.parametrize("suffix", [".whl", ".zip"])
def test_archives_are_compressible_only_when_stored(tmp_path: Path, suffix: str) -> None:
    """A zip whose members are stored (the bytecode archives, pyapp_build.pycompile) compresses on the wire;
    a deflated one is compressed already."""
    import zipfile

    for method, expected in ((zipfile.ZIP_STORED, True), (zipfile.ZIP_DEFLATED, False)):
        path = tmp_path / f"a-{method}{suffix}"
        with zipfile.ZipFile(path, "w", method) as archive:
            archive.writestr("m.pyc", bytes(range(256)) * 40)
        assert compress.is_compressible(path) is expected, method


def test_same_input_same_bytes(tmp_path: Path) -> None:
    """Brotli (quality 11, via node) and gzip (level 9, mtime 0) are deterministic."""
    data = _text(60_000)
    outputs = []
    for run in ("a", "b"):
        src = tmp_path / run / "app.js"
        src.parent.mkdir()
        src.write_bytes(data)
        [(br, gz)] = compress.compress_files([(src, src)])
        assert br is not None
        assert gz is not None
        outputs.append((compress.sibling(src, "br").read_bytes(), compress.sibling(src, "gzip").read_bytes()))
    assert outputs[0] == outputs[1]
    assert compress.gzip_bytes(data) == compress.gzip_bytes(data) == outputs[0][1]
    assert outputs[0][1][4:8] == b"\0\0\0\0", "gzip mtime is 0"


def test_siblings_decode_to_exactly_the_original(tmp_path: Path) -> None:
    """What a browser decodes from X.br / X.gz is X, byte for byte (the service worker's sha256 holds)."""
    files = {
        "a.js": _text(200_000, seed=1),
        "sub/b.json": _text(5_000, seed=2),
        "c.wasm": bytes(range(256)) * 400 + _text(30_000, seed=3),
    }
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    report = compress.compress_tree(tmp_path)
    assert sorted(report.compressed) == sorted(files)
    for rel, data in files.items():
        path = tmp_path / rel
        br, gz = compress.sibling(path, "br"), compress.sibling(path, "gzip")
        assert compress.brotli_decompress(br.read_bytes()) == data
        assert gzip.decompress(gz.read_bytes()) == data
        assert compress.decode_sibling(br) == compress.decode_sibling(gz) == data
        assert len(br.read_bytes()) < len(gz.read_bytes()) < len(data)


def test_incompressible_and_small_files_get_no_sibling(tmp_path: Path) -> None:
    """A sibling that saves under 5% is not written (random weights); files under 1 KiB are skipped."""
    (tmp_path / "noise.bin").write_bytes(random.Random(0).randbytes(50_000))
    (tmp_path / "tiny.js").write_bytes(_text(1000))
    (tmp_path / "photo.png").write_bytes(_text(50_000))
    report = compress.compress_tree(tmp_path)
    assert [(f.path, f.br, f.gz) for f in report.files] == [("noise.bin", None, None)]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "noise.bin",
        "photo.png",
        "tiny.js",
    ]
    assert report.total() == report.total("br") == report.total("gzip") == 50_000


def test_report_sizes_and_totals(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_bytes(_text(40_000, seed=4))
    (tmp_path / "b.css").write_bytes(_text(10_000, seed=5))
    (tmp_path / "noise.bin").write_bytes(random.Random(1).randbytes(4_000))
    report = compress.compress_tree(tmp_path)
    by_path = {f.path: f for f in report.files}
    assert sorted(by_path) == ["a.js", "b.css", "noise.bin"]
    for rel in ("a.js", "b.css"):
        f = by_path[rel]
        assert f.original == (tmp_path / rel).stat().st_size
        assert f.br == (tmp_path / f"{rel}.br").stat().st_size
        assert f.gz == (tmp_path / f"{rel}.gz").stat().st_size
    assert by_path["noise.bin"].br is None
    assert by_path["noise.bin"].gz is None
    assert report.total() == 54_000
    assert report.total("br") == sum((tmp_path / f"{r}.br").stat().st_size for r in ("a.js", "b.css")) + 4_000
    assert report.total("gzip") == sum((tmp_path / f"{r}.gz").stat().st_size for r in ("a.js", "b.css")) + 4_000


def test_second_run_compresses_nothing_until_a_file_changes(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_bytes(_text(20_000, seed=6))
    (tmp_path / "b.js").write_bytes(_text(20_000, seed=7))
    assert compress.compress_tree(tmp_path).compressed == ["a.js", "b.js"]
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = compress.compress_tree(tmp_path)
    assert again.compressed == []
    assert again.removed == []
    assert [f.path for f in again.files] == ["a.js", "b.js"]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    (tmp_path / "b.js").write_bytes(_text(25_000, seed=8))
    assert compress.compress_tree(tmp_path).compressed == ["b.js"]
    assert compress.decode_sibling(tmp_path / "b.js.br") == (tmp_path / "b.js").read_bytes()
    # A damaged sibling (not the size recorded) is written again.
    (tmp_path / "a.js.gz").write_bytes(b"garbage")
    assert compress.compress_tree(tmp_path).compressed == ["a.js"]
    assert gzip.decompress((tmp_path / "a.js.gz").read_bytes()) == (tmp_path / "a.js").read_bytes()


def test_stale_siblings_are_removed_and_foreign_gz_files_kept(tmp_path: Path) -> None:
    """Siblings whose original is gone (or shrank under 1 KiB) go; a .gz file of the site stays."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "digits.csv.gz").write_bytes(gzip.compress(_text(5000)))  # a file of the site
    (tmp_path / "data" / "old.json").write_bytes(_text(8_000, seed=9))
    (tmp_path / "shrinks.js").write_bytes(_text(8_000, seed=10))
    (tmp_path / "stays.js").write_bytes(_text(8_000, seed=11))
    compress.compress_tree(tmp_path)
    (tmp_path / "data" / "old.json").unlink()
    (tmp_path / "shrinks.js").write_bytes(b"x" * 100)
    report = compress.compress_tree(tmp_path)
    assert sorted(report.removed) == ["data/old.json.br", "data/old.json.gz", "shrinks.js.br", "shrinks.js.gz"]
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if not p.name.startswith("."))
    assert left == ["data", "data/digits.csv.gz", "shrinks.js", "stays.js", "stays.js.br", "stays.js.gz"]
    assert [f.path for f in report.files] == ["stays.js"]


def test_copied_tree_reuses_fresh_siblings_and_redoes_stale_ones(tmp_path: Path) -> None:
    """An export (copy with mtimes) of a compressed tree keeps siblings at least as new as their original."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.js").write_bytes(_text(20_000, seed=12))
    (src / "b.js").write_bytes(_text(20_000, seed=13))
    compress.compress_tree(src)
    (src / compress.INDEX_NAME).unlink()  # as export_static leaves it (.stamp-* files are not copied)
    dst = tmp_path / "dst"
    shutil.copytree(src, dst)
    _age(dst / "b.js.br", 60)  # older than its original: not trusted
    report = compress.compress_tree(dst)
    assert report.compressed == ["b.js"]
    assert compress.decode_sibling(dst / "b.js.br") == (dst / "b.js").read_bytes()


def test_compression_needs_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "a.js").write_bytes(_text(5000))
    monkeypatch.setattr(compress.shutil, "which", lambda name: None)
    with pytest.raises(compress.CompressError, match="node is required"):
        compress.compress_tree(tmp_path)
    assert not (tmp_path / "a.js.br").exists()


# --------------------------------------------------------------------------- cache


def _tree(root: Path) -> dict[str, bytes]:
    """Two compressible files and an incompressible one (its encodings are cached too, then dropped)."""
    files = {
        "a.js": _text(120_000, seed=20),
        "sub/b.json": _text(9_000, seed=21),
        "noise.bin": random.Random(22).randbytes(6_000),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _siblings(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".br", ".gz")
    }


def _entries(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (cache / "compressed").rglob("*") if p.suffix in (".br", ".gz")}


@pytest.fixture
def node_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each brotli compression (one node process) was given."""
    runs: list[int] = []
    real = compress.brotli_files

    def counting(jobs: Sequence[tuple[Path, Path]], quality: int | None = None) -> list[int]:
        if jobs:
            runs.append(len(jobs))
        return real(jobs, quality)

    monkeypatch.setattr(compress, "brotli_files", counting)
    return runs


def test_cache_folder_like_pips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$PYAPP_CACHE_DIR, else $XDG_CACHE_HOME/pyapp (absolute only), else ~/.cache/pyapp."""
    monkeypatch.setenv("PYAPP_CACHE_DIR", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compress.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("PYAPP_CACHE_DIR")
    assert compress.cache_dir() == tmp_path / "xdg" / "pyapp"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert compress.cache_dir() == tmp_path / "home" / ".cache" / "pyapp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compress.cache_dir() == tmp_path / "home" / ".cache" / "pyapp"


def test_second_tree_comes_from_the_cache_with_the_same_bytes(
    tmp_path: Path, cache: Path, node_runs: list[int]
) -> None:
    """A fresh folder with the same files (a fresh clone) compresses nothing, and gets the very same siblings."""
    without = tmp_path / "without"
    _tree(without)
    assert compress.compress_tree(without, cache=False).cache_hits == 0
    assert node_runs == [3]
    assert not (cache / "compressed").exists(), "cache=False does not touch the cache"

    cold, warm = tmp_path / "cold", tmp_path / "warm"
    files = _tree(cold)
    _tree(warm)
    first = compress.compress_tree(cold)
    assert first.cache_hits == 0
    assert node_runs == [3, 3]
    assert len(_entries(cache)) == 6, "both encodings of every file, kept or not"
    second = compress.compress_tree(warm)
    assert second.compressed == first.compressed == sorted(files)
    assert second.cache_hits == 6
    assert node_runs == [3, 3], "no brotli compression the second time"
    assert second.files == first.files
    assert _siblings(warm) == _siblings(cold) == _siblings(without)
    assert sorted(_siblings(warm)) == ["a.js.br", "a.js.gz", "sub/b.json.br", "sub/b.json.gz"]
    for rel, data in files.items():
        for coding in compress.SIBLINGS:
            sib = compress.sibling(warm / rel, coding)
            assert not sib.exists() or compress.decode_sibling(sib) == data


def test_changed_settings_miss_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path, node_runs: list[int]
) -> None:
    """The key holds the settings: another brotli quality compresses again (gzip, unchanged, still hits)."""
    _tree(tmp_path / "q11")
    _tree(tmp_path / "q5")
    compress.compress_tree(tmp_path / "q11")
    monkeypatch.setattr(compress, "BROTLI_QUALITY", 5)
    assert compress.compress_tree(tmp_path / "q5").cache_hits == 3
    assert node_runs == [3, 3]
    assert len(_entries(cache)) == 9


def test_corrupt_cache_entries_are_ignored_and_replaced(tmp_path: Path, cache: Path, node_runs: list[int]) -> None:
    """An entry that does not decode to the original (garbage, or another file's valid encoding) is not used."""
    _tree(tmp_path / "one")
    compress.compress_tree(tmp_path / "one")
    good = _entries(cache)
    paths = sorted(p for p in (cache / "compressed").rglob("*") if p.suffix in (".br", ".gz"))
    by_suffix = {suffix: [p for p in paths if p.suffix == suffix] for suffix in (".br", ".gz")}
    for same in by_suffix.values():  # each takes the next one's bytes: valid data, wrong original
        originals = [p.read_bytes() for p in same]
        for path, data in zip(same, originals[1:] + originals[:1], strict=True):
            path.write_bytes(data)
    by_suffix[".br"][0].write_bytes(b"not brotli")
    by_suffix[".gz"][0].write_bytes(b"\x1f\x8b not gzip")
    _tree(tmp_path / "two")
    report = compress.compress_tree(tmp_path / "two")
    assert report.cache_hits == 0
    assert node_runs == [3, 3]
    assert _siblings(tmp_path / "two") == _siblings(tmp_path / "one")
    assert _entries(cache) == good, "every entry written again"
    _tree(tmp_path / "three")
    assert compress.compress_tree(tmp_path / "three").cache_hits == 6
    assert node_runs == [3, 3]


def test_unusable_cache_still_compresses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No cache folder (a file in the way), or one that cannot be written: one line, the same siblings."""
    _tree(tmp_path / "plain")
    compress.compress_tree(tmp_path / "plain", cache=False)
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("PYAPP_CACHE_DIR", str(tmp_path / "file" / "cache"))
    _tree(tmp_path / "nofolder")
    assert compress.compress_tree(tmp_path / "nofolder").cache_hits == 0
    assert _siblings(tmp_path / "nofolder") == _siblings(tmp_path / "plain")
    assert capsys.readouterr().err.count("\n") == 1

    monkeypatch.setenv("PYAPP_CACHE_DIR", str(tmp_path / "readonly"))

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(compress.tempfile, "mkstemp", refuse)
    _tree(tmp_path / "readonly-tree")
    assert compress.compress_tree(tmp_path / "readonly-tree").cache_hits == 0
    assert _siblings(tmp_path / "readonly-tree") == _siblings(tmp_path / "plain")
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "cannot write the cache" in err
    assert not any((tmp_path / "readonly").rglob("*.br")), "no entry, not even half a one"


def test_cache_keeps_the_most_recently_used_under_its_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path
) -> None:
    """Past CACHE_MAX_BYTES the least recently used entries go; a hit counts as a use."""
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "a.js").write_bytes(_text(40_000, seed=30))
    compress.compress_tree(tmp_path / "old")
    old = _entries(cache)
    for path in (cache / "compressed").rglob("*.*"):
        _age(path, 3600)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "b.js").write_bytes(_text(40_000, seed=31))
    compress.compress_tree(tmp_path / "new")
    new = {name: data for name, data in _entries(cache).items() if name not in old}
    assert len(old) == len(new) == 2
    # Used again: a.js's entries are now the newest.
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "a.js").write_bytes(_text(40_000, seed=30))
    assert compress.compress_tree(tmp_path / "again").cache_hits == 2
    # Room for a.js's entries and a third file's, not b.js's as well.
    (tmp_path / "third").mkdir()
    (tmp_path / "third" / "c.js").write_bytes(_text(40_000, seed=32))
    limit = sum(map(len, old.values())) + sum(map(len, new.values())) + 100
    monkeypatch.setattr(compress, "CACHE_MAX_BYTES", limit)
    compress.compress_tree(tmp_path / "third")
    left = _entries(cache)
    assert set(old) <= set(left)
    assert not set(new) & set(left)
    assert len(left) == 4
    assert sum(map(len, left.values())) <= limit


def test_service_worker_knows_which_files_have_gzip_copies() -> None:
    """web/sw.js fetches a file's gzip copy from hosts that compress nothing: its list of suffixes and its
    size floor are the ones that decide here which files get copies."""
    sw = (Path(__file__).resolve().parent.parent / "web" / "sw.js").read_text()
    block = sw[sw.index("const GZIP_COPIES = {") : sw.index("};", sw.index("const GZIP_COPIES = {"))]
    assert set(re.findall(r'^\s+"(\.[a-z]+)":', block, re.M)) == compress.COMPRESSIBLE_SUFFIXES
    assert f"const MIN_GZIP_SIZE = {compress.MIN_SIZE};" in sw
