"""Ingest throughput: Spark on local[N] against a plain single-process loop, in one run.

    .venv/bin/python bench/ingest.py --exams 150 --cores 2

Generates (or reuses) a synthetic dump, then times
  1. the plain loop: pydicom read + decode + rescale + window + resize of every file, one process,
     no Spark (the same per-file function the job runs, so the work is identical);
  2. the same loop in ``cores`` plain processes at once (multiprocessing, no Spark): what this
     machine's cores give to perfectly parallel work, the ceiling any parallel job can reach;
  3. the Spark ingest job on ``local[cores]`` over the whole dump, and over a subset of it, so the
     fixed cost (JVM, job start, Python workers) and the steady-state marginal rate separate.
Prints files/s, the per-core ratio Spark / plain loop, the parallel ceiling, and Spark's per-step
seconds, as a Markdown table row.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def plain_loop(paths: list[Path]) -> float:
    from radnet_spark.config import load_config
    from radnet_spark.ingest.instance import parse_file
    from radnet_spark.ingest.job import parse_options

    options = parse_options(load_config(), salt="bench")
    start = time.perf_counter()
    for path in paths:
        parse_file(str(path), path.stat().st_size, options)
    return time.perf_counter() - start


def _parse_chunk(paths: list[Path]) -> int:
    plain_loop(paths)
    return len(paths)


def parallel_plain(paths: list[Path], processes: int) -> float:
    """Seconds for ``processes`` plain loops over interleaved shares of the files, started warm."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_parse_chunk, [paths[:8]] * processes)  # imports and first-call costs, not timed
        start = time.perf_counter()
        pool.map(_parse_chunk, [paths[i::processes] for i in range(processes)])
        return time.perf_counter() - start


def spark_ingest(spark, dump: Path, warehouse: Path) -> tuple[float, dict[str, float]]:  # noqa: ANN001
    from radnet_spark.config import load_config
    from radnet_spark.ingest.job import ingest

    shutil.rmtree(warehouse, ignore_errors=True)
    start = time.perf_counter()
    summary = ingest(spark, str(dump), None, str(warehouse), load_config())
    return time.perf_counter() - start, summary.step_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams", type=int, default=150)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--data", default="data/bench/ingest", help="where the dump is generated/reused")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every measurement; the best of each is reported (other load only slows)")
    args = parser.parse_args()

    os.environ.setdefault("RADNET_SALT", "bench")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from radnet_spark.synth import DefectRates, generate_pacs

    data = Path(args.data) / f"exams{args.exams}"
    if not (data / "ground_truth.csv").exists():
        generate_pacs(data, exams=args.exams, seed=3, defect_rates=DefectRates.none())
    files = sorted(p for p in (data / "dicom").rglob("*") if p.is_file())
    half = data / "half"
    if not half.exists():
        # A second, smaller dump of the same files (hard links) for the marginal-rate estimate.
        for path in files[: len(files) // 2]:
            target = half / path.relative_to(data / "dicom")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)

    plain_seconds = min(plain_loop(files) for _ in range(args.repeat))
    plain_rate = len(files) / plain_seconds
    ceiling_rate = len(files) / min(parallel_plain(files, args.cores) for _ in range(args.repeat))

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(f"local[{args.cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(args.cores * 2))
        .getOrCreate()
    )
    scratch = Path(tempfile.mkdtemp(prefix="radnet-bench-"))
    spark_ingest(spark, half, scratch / "warm")  # JVM and worker warm-up, not timed
    half_seconds, full_seconds, steps = math.inf, math.inf, {}
    for _ in range(args.repeat):
        half_seconds = min(half_seconds, spark_ingest(spark, half, scratch / "half")[0])
        seconds, run_steps = spark_ingest(spark, data / "dicom", scratch / "full")
        if seconds < full_seconds:
            full_seconds, steps = seconds, run_steps
    spark.stop()
    shutil.rmtree(scratch, ignore_errors=True)

    n_half = len(files) // 2
    spark_rate = len(files) / full_seconds
    marginal_rate = (len(files) - n_half) / max(full_seconds - half_seconds, 1e-9)
    fixed = full_seconds - len(files) / marginal_rate
    print(f"files={len(files)} cores={args.cores}")
    print(f"plain loop (1 process):      {plain_rate:8.1f} files/s")
    print(f"plain loop ({args.cores} processes):     {ceiling_rate:8.1f} files/s  ({ceiling_rate / args.cores / plain_rate:.2f}x per core: the machine's parallel ceiling)")
    print(f"spark local[{args.cores}] end to end:   {spark_rate:8.1f} files/s  ({spark_rate / args.cores / plain_rate:.2f}x per core)")
    print(f"spark marginal (steady):     {marginal_rate:8.1f} files/s  ({marginal_rate / args.cores / plain_rate:.2f}x per core, "
          f"{marginal_rate / ceiling_rate:.2f}x the parallel ceiling)")
    print(f"spark fixed cost per job:    {fixed:8.1f} s")
    print("steps of the whole-dump job: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items()))
    print(
        f"| {len(files)} | {args.cores} | {plain_rate:.0f} | {ceiling_rate / args.cores / plain_rate:.2f} "
        f"| {spark_rate:.0f} | {spark_rate / args.cores / plain_rate:.2f} "
        f"| {marginal_rate:.0f} | {marginal_rate / args.cores / plain_rate:.2f} | {marginal_rate / ceiling_rate:.2f} "
        f"| {fixed:.1f} |"
    )


if __name__ == "__main__":
    main()
