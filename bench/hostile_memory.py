"""Peak memory of parsing each hostile file, one fresh process per file (no Spark).

    .venv/bin/python bench/hostile_memory.py                # this checkout
    PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/hostile_memory.py --corpus DIR   # before

Writes issue 14's hostile corpus (``tests/hostile_corpus.py``) once, or reuses ``--corpus``, then
runs the ingest's per-file function (``parse_file`` with the default settings, the code a Spark
worker runs for each file) on each file in its own Python process and reads that process's peak
resident memory (``ru_maxrss``). Prints one Markdown row per file: status, reason, peak MB, seconds.
The same corpus under an older checkout on PYTHONPATH gives the "before" figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
from radnet_spark.config import load_config
from radnet_spark.ingest.instance import parse_file
from radnet_spark.ingest.job import parse_options
import radnet_spark, os
options = parse_options(load_config(), salt="bench")
path = sys.argv[1]
start = time.perf_counter()
try:
    size = os.path.getsize(path)
except OSError:
    size = -1
try:
    row = parse_file(path, size, options)
    status, reason = row["status"], row["reason"]
except MemoryError:
    status, reason = "crashed", "MemoryError"
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"status": status, "reason": reason, "peak": peak, "seconds": seconds,
                  "code": os.path.dirname(radnet_spark.__file__)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="a corpus already written (its dicom/ folder's parent)")
    parser.add_argument("--only", help="substring of the relative paths to measure")
    parser.add_argument("--limit-gb", type=float, default=4.0, help="address-space cap of each child (GB)")
    args = parser.parse_args(argv)

    root = args.corpus
    if root is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from hostile_corpus import write_hostile_corpus

        root = Path(tempfile.mkdtemp(prefix="hostile-memory-"))
        write_hostile_corpus(root)
        print(f"corpus written to {root}", file=sys.stderr)
    dicom = root / "dicom"
    paths = sorted(p for p in dicom.rglob("*") if not p.is_dir() and (p.is_file() or p.is_symlink()))
    limit = int(args.limit_gb * 1024**3)
    print("| file | status | reason | peak RSS MB | seconds |")
    print("|---|---|---|---|---|")
    code = None
    for path in paths:
        relative = str(path.relative_to(dicom))
        if args.only and args.only not in relative:
            continue
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=dict(os.environ),
            preexec_fn=lambda: __import__("resource").setrlimit(
                __import__("resource").RLIMIT_AS, (limit, limit)),
        )
        if done.returncode != 0 or not done.stdout.strip():
            print(f"| {relative} | crashed (exit {done.returncode}) | | | |")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        code = result["code"]
        print(f"| {relative} | {result['status']} | {result['reason'] or ''} | {result['peak'] / 1e6:.0f} | "
              f"{result['seconds']:.2f} |")
    print(f"\ncode measured: {code}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
