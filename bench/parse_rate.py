"""Steady-state cost of the ingest's per-file function, one process, no Spark.

    .venv/bin/python bench/parse_rate.py DUMP/dicom
    cd /tmp && PYTHONPATH=/path/to/other/checkout /work/main/.venv/bin/python /work/main/bench/parse_rate.py DUMP/dicom

Runs ``parse_file`` (read, de-identify, scrub names, decode, export: what a Spark worker does per
file) over every file of a dump, after a warm-up of 20 files (imports, names lexicon, caches), three
times, and prints the best pass in files/s and ms/file, with the checkout measured.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import radnet_spark
    from radnet_spark.config import load_config
    from radnet_spark.ingest.instance import parse_file
    from radnet_spark.ingest.job import parse_options

    root = Path((argv or sys.argv[1:])[0])
    options = parse_options(load_config(), salt="bench")
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths[:20]:
        parse_file(str(path), path.stat().st_size, options)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for path in paths:
            parse_file(str(path), path.stat().st_size, options)
        best = min(best, time.perf_counter() - start)
    print(f"{Path(radnet_spark.__file__).parent}: {len(paths)} files, best of 3 {best:.2f} s, "
          f"{len(paths) / best:.0f} files/s, {1000 * best / len(paths):.2f} ms/file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
