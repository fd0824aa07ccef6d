"""CAE encoder throughput: Spark pandas UDF on local[2] against a plain torch loop, in one run.

    flock /tmp/radnet-spark.lock .venv/bin/python bench/inference.py --small 1000 --large 3000 --repeat 2

Generates (or reuses, ``--images``) a Parquet table of 128² uint8 images, saves an untrained CAE
with the default architecture (the encoder's cost does not depend on its weights), then times
  1. the plain loop: pyarrow read + decode + CAE encode in batches, one process, 2 torch threads;
  2. the same loop in a subprocess started with glibc ``MALLOC_MMAP_THRESHOLD_`` /
     ``MALLOC_TRIM_THRESHOLD_`` set (glibc reads them only at process start);
  3. ``embed_dataframe`` on Spark ``local[2]`` (2 Python workers × 1 torch thread), once cold and then
     warm on the small and the large table, so the fixed cost (job start, workers, model load) and the
     steady-state marginal rate separate; with and without the malloc variables in the workers.
Prints images/s and the ratio of the UDF's steady-state rate to the best plain loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def structured_images(count: int, size: int, seed: int) -> np.ndarray:
    """Images that look like something: a soft gradient, a few bright ellipses and bars, sensor noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images = np.empty((count, size, size), dtype=np.uint8)
    for index in range(count):
        canvas = 40 * rng.random() * (rows * rng.random() + cols * rng.random())
        for _ in range(rng.integers(1, 4)):
            centre_r, centre_c = rng.uniform(0.2, 0.8, 2)
            radius_r, radius_c = rng.uniform(0.05, 0.3, 2)
            inside = ((rows - centre_r) / radius_r) ** 2 + ((cols - centre_c) / radius_c) ** 2 <= 1
            canvas[inside] += rng.uniform(60, 200)
        if rng.random() < 0.5:
            start = rng.integers(0, size - 8)
            canvas[start:start + rng.integers(2, 8), :] += rng.uniform(40, 120)
        canvas += rng.normal(0, 6, canvas.shape)
        images[index] = np.clip(canvas, 0, 255).astype(np.uint8)
    return images


def write_table(folder: Path, count: int, size: int, seed: int, files: int = 4) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    images = structured_images(count, size, seed)
    for part, chunk in enumerate(np.array_split(np.arange(count), files)):
        pq.write_table(pa.table({
            "sop_instance_uid": [f"1.2.826.0.1.{seed}.{i}" for i in chunk],
            "exam_id": [f"exam{i // 20:06d}" for i in chunk],
            "split": ["train"] * len(chunk),
            "image": [images[i].tobytes() for i in chunk],
            "image_size": pa.array([size] * len(chunk), pa.int32()),
        }), folder / f"part-{part:03d}.parquet", row_group_size=256)


def save_untrained_cae(target: Path, size: int) -> None:
    import torch

    from radnet_spark.embedders import ImageEmbedder
    from radnet_spark.nets.conv_autoencoder import ConvAutoencoder

    torch.manual_seed(0)
    embedder = ImageEmbedder(image_size=size, pca_components=None)
    embedder.model = ConvAutoencoder(image_size=size).eval()
    embedder.save(str(target))


def plain_loop(table: str, embedder_dir: str, threads: int, batch_rows: int) -> dict[str, float]:
    """Read, decode and encode every image of ``table`` in this process; returns rows and seconds."""
    import pyarrow.dataset as ds
    import torch

    from radnet_spark.embedders import ImageEmbedder

    torch.set_num_threads(threads)
    embedder = ImageEmbedder.load(embedder_dir, device="cpu")
    embedder.embed_numpy(structured_images(8, embedder.image_size, 99))  # warm the kernels up
    rows = 0
    start = time.perf_counter()
    for batch in ds.dataset(table, format="parquet").to_batches(columns=["image"], batch_size=batch_rows):
        rows += len(embedder.embed_bytes(batch.column("image").to_pylist()))
    return {"rows": rows, "seconds": time.perf_counter() - start}


def plain_loop_in_subprocess(table: str, embedder_dir: str, threads: int, batch_rows: int,
                             env: dict[str, str]) -> dict[str, float]:
    command = [sys.executable, __file__, "--plain-only", table, "--model", embedder_dir,
               "--threads", str(threads), "--batch-rows", str(batch_rows)]
    output = subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def spark_job(spark, table: str, embedder_dir: str, batch_rows: int, arrow_rows: int) -> float:  # noqa: ANN001
    from radnet_spark.inference import arrow_batch_rows, embed_dataframe

    start = time.perf_counter()
    with arrow_batch_rows(spark, arrow_rows):
        embedded = embed_dataframe(spark.read.parquet(table), embedder_dir, "image", batch_rows=batch_rows)
        embedded.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000, help="images in the small table")
    parser.add_argument("--large", type=int, default=3000, help="images in the large table")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--images", help="an existing images table to use as the large table")
    parser.add_argument("--batch-rows", type=int, default=64)
    parser.add_argument("--arrow-rows", type=int, default=256, help="Arrow batch rows sent to each UDF call")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest counts")
    parser.add_argument("--data", default="data/bench/inference", help="where tables are generated/reused")
    parser.add_argument("--plain-only", metavar="TABLE", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.plain_only:
        print(json.dumps(plain_loop(args.plain_only, args.model, args.threads, args.batch_rows)))
        return

    data = Path(args.data)
    small = data / f"images{args.small}_{args.image_size}"
    large = Path(args.images) if args.images else data / f"images{args.large}_{args.image_size}"
    for folder, count, seed in ((small, args.small, 1), (large, args.large, 2)):
        if not folder.exists():
            write_table(folder, count, args.image_size, seed)
    model_dir = Path(tempfile.mkdtemp(prefix="radnet-bench-cae-"))
    save_untrained_cae(model_dir, args.image_size)

    # Best of --repeat runs: the machine may be shared, and interference only ever slows a run down.
    plain, tuned = [
        min((plain_loop_in_subprocess(str(large), str(model_dir), 2, args.batch_rows, env)
             for _ in range(args.repeat)), key=lambda run: run["seconds"])
        for env in ({}, MALLOC_ENV)
    ]
    rows = int(plain["rows"])
    plain_rate, tuned_rate = rows / plain["seconds"], rows / tuned["seconds"]

    print(f"images {args.image_size}², CAE filters 16/32/64/128 → 8×8×8 code, model batch {args.batch_rows}, "
          f"Arrow batch {args.arrow_rows}, best of {args.repeat}")
    print(f"plain torch loop, 2 threads:                   {plain_rate:7.1f} img/s ({rows} images)")
    print(f"plain torch loop, 2 threads, glibc malloc env: {tuned_rate:7.1f} img/s")
    best = max(plain_rate, tuned_rate)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    for label, env in (("workers without malloc env", {}), ("workers with glibc malloc env", MALLOC_ENV)):
        timings = spark_timings(small, large, str(model_dir), args, env)
        small_rows, cold, warm_small, warm_large = timings
        marginal = (rows - small_rows) / (warm_large - warm_small)
        fixed = warm_small - small_rows / marginal
        print(f"Spark UDF local[2], {label}:")
        print(f"  cold job on {small_rows}:                {small_rows / cold:7.1f} img/s ({cold:.1f} s)")
        print(f"  warm jobs on {small_rows} / {rows}:         {small_rows / warm_small:7.1f} / "
              f"{rows / warm_large:.1f} img/s ({warm_small:.1f} s / {warm_large:.1f} s)")
        print(f"  steady state (marginal):          {marginal:7.1f} img/s, fixed cost ≈ {fixed:.1f} s/job")
        print(f"  ratio steady state / best plain:  {marginal / best:7.2f}×")
        print(f"  ratio warm {rows} job / best plain: {rows / warm_large / best:7.2f}×")


def spark_timings(small: Path, large: Path, model_dir: str, args: argparse.Namespace,
                  worker_env: dict[str, str]) -> tuple[int, float, float, float]:
    """Rows of the small table, then seconds of a cold job, and of the best warm jobs on small and large."""
    from pyspark.sql import SparkSession

    # Built by hand rather than with radnet_spark.session.get_spark, which always sets the malloc env.
    builder = (
        SparkSession.builder.master("local[2]").appName("radnet-bench-inference")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.driver.memory", "2g")
        .config("spark.executorEnv.RADNET_DEVICE", "cpu")
    )
    for key, value in worker_env.items():
        builder = builder.config(f"spark.executorEnv.{key}", value)
    spark = builder.getOrCreate()
    try:
        small_rows = spark.read.parquet(str(small)).count()

        def job(table: Path) -> float:
            return spark_job(spark, str(table), model_dir, args.batch_rows, args.arrow_rows)

        cold = job(small)
        warm_small = min(job(small) for _ in range(args.repeat))
        warm_large = min(job(large) for _ in range(args.repeat))
    finally:
        spark.stop()
    return small_rows, cold, warm_small, warm_large

if __name__ == "__main__":
    main()
