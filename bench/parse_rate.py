"""Steady-state cost of the ingest's per-file function, one process, no Spark.

    .venv/bin/python bench/parse_rate.py DUMP/dicom
    .venv/bin/python bench/parse_rate.py DUMP/dicom --limit 300 --profile 25
    cd /tmp && PYTHONPATH=/path/to/other/checkout /work/main/.venv/bin/python /work/main/bench/parse_rate.py DUMP/dicom

Runs ``parse_file`` (read, de-identify, scrub names, decode, export: what a Spark worker does per
file) over every file of a dump (or the first ``--limit``), after a warm-up of 20 files (imports,
names lexicon, caches), three times, and prints the best pass in files/s and ms/file, wall and CPU
time of this process (CPU time is the steadier figure on a shared machine), with the checkout
measured. ``--profile N`` then runs one more pass under cProfile and prints the N functions with
the most own time and where the time of each stage of ``parse_file`` goes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

_STAGES = (
    "radnet_spark/dicom/header.py:read_dataset",
    "radnet_spark/dicom/header.py:dataset_to_tags",
    "radnet_spark/dicom/deid.py:deidentify_tags",
    "radnet_spark/dicom/names.py:record_name_tokens",
    "radnet_spark/dicom/pixels.py:export_8bit",
)


def main(argv: list[str] | None = None) -> int:
    import radnet_spark
    from radnet_spark.config import load_config
    from radnet_spark.ingest.instance import parse_file
    from radnet_spark.ingest.job import parse_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump", type=Path, help="folder of DICOM files (searched recursively)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files (sorted)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print a cProfile of one pass")
    args = parser.parse_args(argv)

    options = parse_options(load_config(), salt="bench")
    paths = sorted(p for p in args.dump.rglob("*") if p.is_file())
    if args.limit:
        paths = paths[: args.limit]
    files = [(str(path), path.stat().st_size) for path in paths]
    for path, size in files[:20]:
        parse_file(path, size, options)
    best_wall = best_cpu = float("inf")
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        for path, size in files:
            parse_file(path, size, options)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    print(f"{Path(radnet_spark.__file__).parent}: {len(files)} files, best of 3 {best_wall:.2f} s, "
          f"{len(files) / best_wall:.0f} files/s, {1000 * best_wall / len(files):.2f} ms/file wall, "
          f"{1000 * best_cpu / len(files):.2f} ms/file CPU")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for path, size in files:
            parse_file(path, size, options)
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.profile)
        total = sum(entry[3] for key, entry in stats.stats.items() if key[2] == "parse_file")
        print("stage (cumulative, under the profiler)           ms/file   share")
        for stage in _STAGES:
            module, function = stage.split(":")
            seconds = sum(entry[3] for key, entry in stats.stats.items()
                          if key[0].endswith(module) and key[2] == function)
            print(f"{stage:50s} {1000 * seconds / len(files):7.2f}   {seconds / max(total, 1e-9):5.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
