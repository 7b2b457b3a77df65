#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what is missing
# (Debian's chromium, firefox-esr, webkit2gtk-driver and xvfb, the npm stack,
# a venv with the test tools), builds the assets from the registries, lints,
# type-checks, then runs pytest (host tests, real-browser tests on the wasm,
# webgl and cpu backends, and the app on all three browser engines).
# Extra arguments go to pytest, e.g. `bash tools/test.sh -m "not browser"`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# Some environments set PYTHONDONTWRITEBYTECODE=1 (this one does): then a fresh venv never keeps bytecode, and
# every Python process the run starts (two xdist workers, the serial run, the CLIs the tests call) compiles
# keras, numpy, Playwright and the rest again. Measured here: importing the test stack costs 9.8 s in a fresh
# venv with the variable set, 4.9 s once the bytecode is kept. The build's fingerprints and the site export
# skip __pycache__, and .gitignore has it.
unset PYTHONDONTWRITEBYTECODE

# The browser engines (Debian packages): Chromium's headless shell for every browser test (the full
# `chromium` for the benchmarks and as a fallback); Firefox ESR and WebKitGTK
# (WebKitWebDriver + MiniBrowser, on an Xvfb display) for the cross-engine suite, tests/test_engines.py.
engines=()
if [ -z "${PYAPP_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then engines+=(chromium fonts-dejavu-core); fi
if [ -z "${PYAPP_CHROMIUM:-}" ] && ! command -v chromium-headless-shell >/dev/null 2>&1; then engines+=(chromium-headless-shell); fi
if [ -z "${PYAPP_FIREFOX:-}" ] && ! command -v firefox-esr >/dev/null 2>&1; then engines+=(firefox-esr); fi
command -v WebKitWebDriver >/dev/null 2>&1 || engines+=(webkit2gtk-driver)
command -v Xvfb >/dev/null 2>&1 || engines+=(xvfb)
if [ "${#engines[@]}" -gt 0 ]; then
  say "installing browser engines (Debian packages): ${engines[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${engines[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
UV_VERSION=0.9.30
stamp=.venv/.pyapp-deps
want=$( (sha256sum pyproject.toml; echo "uv $UV_VERSION") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python test dependencies"
  # uv (pinned) installs the same versions pip resolves, from its cache outside the clone: measured here,
  # 7 s the first time and 3 s after, against about 60 s with pip, on every fresh clone.
  if .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" 2>/dev/null; then
    .venv/bin/uv pip install --python .venv/bin/python -q -e '.[test]'
  else
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  fi
  echo "$want" >"$stamp"
fi

# Lint and type-check while the build runs: the build mostly waits on the registries and on one core
# (measured: half of the two cores idle during it), and neither check reads what it writes. mypy keeps
# its cache outside the clone, keyed by the mypy version, so a fresh clone re-checks only pyapp's own
# modules, not numpy's and Playwright's stubs.
mypy_version=$(.venv/bin/mypy --version | cut -d' ' -f2)
lint_log=$(mktemp)
(
  .venv/bin/ruff check . && .venv/bin/ruff format --check . \
    && MYPY_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pyapp/mypy-$mypy_version" .venv/bin/mypy
) >"$lint_log" 2>&1 &
lint=$!

say "building assets (npm + PyPI registries)"
build=0
.venv/bin/python serve.py build || build=$?
lint_status=0
wait "$lint" || lint_status=$?
say "ruff + mypy"
cat "$lint_log"
rm -f "$lint_log"
[ "$build" -ne 0 ] && exit "$build"
[ "$lint_status" -ne 0 ] && exit "$lint_status"

# Two workers (pytest-xdist): a browser test alone keeps ~1.5 of the 2 cores busy (measured), so a second
# worker fills the gaps; tests marked `serial` measure timing, so they run afterwards on their own. Tests of one
# xdist_group share a worker (the camera tests: one camera browser, booted once).
# PYAPP_TEST_JOBS=N sets the workers (1: one plain pytest). Selecting tests (-m, -k, a path) runs one
# plain pytest with exactly those arguments.
jobs=${PYAPP_TEST_JOBS:-2}
for arg in "$@"; do
  case "$arg" in -m | -m* | -k | -k* | tests* | pyapp* | *.py | *::*) jobs=1 ;; esac
done
if [ "$jobs" -le 1 ]; then
  say "pytest"
  exec .venv/bin/python -m pytest "$@"
fi
say "pytest: $jobs workers, then the serial tests alone"
status=0
.venv/bin/python -m pytest -n "$jobs" --dist loadgroup -m "not serial" "$@" || status=$?
serial=0
# Only the modules that hold serial tests: collecting the whole suite costs ~10 s (keras among the imports).
mapfile -t serial_files < <(grep -l "pytest.mark.serial" tests/test_*.py)
if [ "${#serial_files[@]}" -gt 0 ]; then
  .venv/bin/python -m pytest -m serial "$@" "${serial_files[@]}" || serial=$?
fi
[ "$serial" -eq 5 ] && serial=0 # no serial test selected
[ "$status" -ne 0 ] && exit "$status"
exit "$serial"
