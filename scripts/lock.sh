#!/usr/bin/env bash
# Refresh requirements.lock (and requirements-pip.lock) from pyproject.toml: exact versions and sha256 hashes of every
# runtime and test dependency, and of the build backend (setuptools), for every Python
# netlab supports (>= 3.11: Debian 12 has 3.11, Ubuntu 24.04 has 3.12) and every platform.
#   ./scripts/lock.sh                         add what pyproject.toml now needs; keep the other pins
#   ./scripts/lock.sh --upgrade               move every pin to the newest version pyproject.toml allows
#   ./scripts/lock.sh --upgrade-package NAME  move one
# The resolver (uv, https://github.com/astral-sh/uv) runs from a throwaway venv and never
# becomes a dependency. It reads PyPI only, so the hashes are PyPI's; setup.sh installs
# with --require-hashes, and pip skips any other index's file whose hash differs.
# requirements-pip.lock pins pip alone: setup.sh installs it into .venv only where the venv's own pip has no
# --config-settings (Ubuntu 22.04's python3.11 venv gets python3-pip-whl's 22.0.2), checked against its sha256.
# Then run tests/unit/test_lock.py and commit pyproject.toml with requirements.lock and requirements-pip.lock.
set -euo pipefail

UV_VERSION=0.13.9
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "uv==$UV_VERSION"
# pyproject.toml's [build-system] requires: what `pip install -e .` builds netlab with.
python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' \
  "$here/pyproject.toml" > "$tmp/build-requires.in"

cd "$here"
UV_CACHE_DIR="$tmp/cache" "$tmp/venv/bin/uv" pip compile \
  pyproject.toml --extra test "$tmp/build-requires.in" \
  --universal --python-version 3.11 \
  --generate-hashes \
  --index-url https://pypi.org/simple \
  --custom-compile-command "./scripts/lock.sh" \
  --output-file requirements.lock \
  --quiet "$@"
# uv names the temporary input file; name what it stands for instead.
sed -i "s|$tmp/build-requires.in|pyproject.toml (build-system)|g" requirements.lock
echo pip > "$tmp/pip.in"
UV_CACHE_DIR="$tmp/cache" "$tmp/venv/bin/uv" pip compile \
  "$tmp/pip.in" \
  --universal --python-version 3.11 \
  --generate-hashes \
  --index-url https://pypi.org/simple \
  --custom-compile-command "./scripts/lock.sh" \
  --output-file requirements-pip.lock \
  --quiet "$@"
sed -i "s|-r $tmp/pip.in|-r scripts/lock.sh (setup.sh: the venv's pip, where it has no --config-settings)|g" \
  requirements-pip.lock
echo "lock.sh: requirements.lock has $(grep -c '^[a-z]' requirements.lock) packages; run tests/unit/test_lock.py, then commit it and requirements-pip.lock with pyproject.toml"
