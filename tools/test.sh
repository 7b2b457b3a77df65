#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what is missing
# (Debian's chromium, the npm stack, a venv with the test tools), builds the
# assets from the registries, lints, type-checks, then runs pytest (host tests
# and real-browser tests on the wasm, webgl and cpu backends).
# Extra arguments go to pytest, e.g. `bash tools/test.sh -m "not browser"`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

if [ -z "${PYAPP_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium (Debian package)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.pyapp-deps
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python test dependencies"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$want" >"$stamp"
fi

say "building assets (npm + PyPI registries)"
.venv/bin/python serve.py build

say "ruff + mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

say "pytest"
exec .venv/bin/python -m pytest "$@"
