"""A build step: what it depends on (a fingerprint), what it wrote (a stamp of sha256), how it runs.

A step is rebuilt when its inputs' fingerprint changed, or an output is missing or differs from the
sha256 recorded when it was built (a partial or corrupt vendor dir).

>>> fingerprint("a", b"b") == fingerprint("a", b"b") != fingerprint("a", b"c")
True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyapp_build import pins
from pyapp_build.compress import sha256_file

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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def log(msg: str) -> None:
    print(f"[build] {msg}", file=sys.stderr, flush=True)


def write_atomic(path: Path, data: bytes) -> None:
    # A crash half-way must never leave a truncated file that looks built.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256(_STEP_VERSION.encode())
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


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
        staging = Path(tempfile.mkdtemp(prefix=f"pyapp-{self.name}-", dir=pins.CACHE))
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
        write_atomic(self.stamp_path, json.dumps(stamp, indent=1, sort_keys=True).encode())

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
