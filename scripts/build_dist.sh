#!/usr/bin/env bash
# Build what is shipped to a cluster, into dist/ (or the folder given):
#   radnet_spark-<version>-py3-none-any.whl   to `pip install` on nodes or into a packed venv
#   radnet_spark-<version>.zip                 the same files, for `spark-submit --py-files`
#
#   scripts/build_dist.sh [OUT_DIR]
#
# Why both: PySpark puts only .zip/.egg/.jar files from --py-files on the executors' PYTHONPATH
# (pyspark/core/context.py PACKAGE_EXTENSIONS); a .whl is shipped but never importable there.
# A pure-Python wheel is a zip archive, so the .zip is a byte-for-byte copy under a name Spark uses.
# Built from a copy of the sources (no build/ or egg-info litter in the repository), offline
# (--no-build-isolation: the venv's setuptools, nothing is downloaded). Prints both paths.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$repo/setup.py" "$repo/README.md" "$stage/"
# Only the package: no caches, no tests, no data.
tar -C "$repo" --exclude='__pycache__' --exclude='*.pyc' -cf - radnet_spark | tar -C "$stage" -xf -

rm -f "$out"/radnet_spark-*.whl "$out"/radnet_spark-*.zip
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$out" "$stage" >&2
wheel="$(ls "$out"/radnet_spark-*.whl)"
zip="${wheel%%-py3-*}.zip"
cp "$wheel" "$zip"
echo "$wheel"
echo "$zip"
