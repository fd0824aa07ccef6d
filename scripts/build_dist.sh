#!/usr/bin/env bash
# Build what is shipped to a cluster: a wheel of radnet_spark in dist/ (or the folder given).
#
#   scripts/build_dist.sh [OUT_DIR]        # default: dist/
#
# The wheel is built from a copy of the sources so the repository gets no build/ or egg-info
# litter, offline (--no-build-isolation: setuptools of the venv, nothing is downloaded).
# Prints the wheel's path on the last line.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$repo/setup.py" "$repo/README.md" "$stage/"
# Only the package: no caches, no tests, no data.
tar -C "$repo" --exclude='__pycache__' --exclude='*.pyc' -cf - radnet_spark | tar -C "$stage" -xf -

rm -f "$out"/radnet_spark-*.whl
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$out" "$stage" >&2
wheel="$(ls "$out"/radnet_spark-*.whl)"
echo "$wheel"
