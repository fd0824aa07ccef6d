"""Encoder throughput: Spark pandas UDF on local[2] against a plain torch loop, in one run.

    flock /tmp/radnet-spark.lock .venv/bin/python bench/inference.py --small 1000 --large 3000 --repeat 2
    flock /tmp/radnet-spark.lock .venv/bin/python bench/inference.py --encoder pretrained \
        --small 200 --large 600 --batch-rows 32 --repeat 2

``--encoder pretrained`` times the pretrained_image view instead of the CAE: a ResNet-18-sized network
(plain torch, random weights, 11.2 M parameters, pooled 512-d output) scripted to TorchScript the
way a hospital would export its own encoder, resized to ``--input-size`` (224) and replicated to 3
channels in the executors; the baseline is a plain torch loop over the same file (pyarrow read,
frombuffer, interpolate, normalise, forward) with 1 and with 2 threads, so images/s per core compare
directly. The rest of this text describes the CAE run.

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
from typing import Any

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
    parser.add_argument("--encoder", choices=("cae", "pretrained"), default="cae",
                        help="the CAE, or a ResNet-18-sized TorchScript encoder through the pretrained_image view")
    parser.add_argument("--input-size", type=int, default=224, help="pretrained encoder's input side")
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
    if args.encoder == "pretrained":
        pretrained_benchmark(small, large, args)
        return
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
                  worker_env: dict[str, str], run_job: Any = None) -> tuple[int, float, float, float]:
    """Rows of the small table, then seconds of a cold job, and of the best warm jobs on small and large.

    ``run_job(spark, table) -> seconds`` times one job; None times the CAE's ``embed_dataframe``.
    """
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
            if run_job is not None:
                return run_job(spark, str(table))
            return spark_job(spark, str(table), model_dir, args.batch_rows, args.arrow_rows)

        cold = job(small)
        warm_small = min(job(small) for _ in range(args.repeat))
        warm_large = min(job(large) for _ in range(args.repeat))
    finally:
        spark.stop()
    return small_rows, cold, warm_small, warm_large


# -- the pretrained_image view: a ResNet-18-sized TorchScript encoder -------------------------------------------
def resnet18_features() -> Any:
    """ResNet-18's layout (plain torch, no torchvision): 4 stages of 2 basic blocks, pooled 512-d output."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, inputs: int, outputs: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(outputs)
            self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(outputs)
            self.shortcut = nn.Identity() if stride == 1 and inputs == outputs else nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

    class ResNet18Features(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                       nn.MaxPool2d(3, 2, 1)]
            channels = 64
            for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [BasicBlock(channels, outputs, stride), BasicBlock(outputs, outputs, 1)]
                channels = outputs
            self.body = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x).mean(dim=(2, 3))

    torch.manual_seed(0)
    return ResNet18Features().eval()


def save_pretrained_encoder(folder: Path, input_size: int, batch_rows: int) -> int:
    """A scripted ResNet-18 and its preprocessing as a fitted pretrained_image folder; returns its parameters."""
    import torch

    from radnet_spark.views.pretrained_image import MODEL_FILE, PREPROCESSING_FILE

    model = resnet18_features()
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(model), str(folder / MODEL_FILE))
    (folder / PREPROCESSING_FILE).write_text(json.dumps({
        "input_size": input_size, "channels": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        "batch_rows": batch_rows}))
    return sum(parameter.numel() for parameter in model.parameters())


def pretrained_plain_loop(table: str, folder: str, threads: int, batch_rows: int) -> dict[str, float]:
    """The same encoder as a plain torch loop: read, frombuffer, resize, replicate, normalise, forward."""
    import pyarrow.dataset as ds
    import torch

    from radnet_spark.views.pretrained_image import MODEL_FILE, PREPROCESSING_FILE

    torch.set_num_threads(threads)
    settings = json.loads((Path(folder) / PREPROCESSING_FILE).read_text())
    module = torch.jit.load(str(Path(folder) / MODEL_FILE)).eval()
    size = int(settings["input_size"])
    mean = torch.tensor(settings["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(settings["std"]).view(1, 3, 1, 1)

    def encode(images: list[bytes]) -> np.ndarray:
        side = int(round(len(images[0]) ** 0.5))
        pixels = np.frombuffer(b"".join(images), dtype=np.uint8).reshape(len(images), 1, side, side)
        batch = torch.from_numpy(pixels.copy()).float().div_(255.0)
        batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False)
        with torch.inference_mode():
            return module((batch.expand(-1, 3, -1, -1) - mean) / std).numpy()

    encode([bytes(64 * 64)] * 2)  # warm the kernels up
    rows = 0
    start = time.perf_counter()
    for batch in ds.dataset(table, format="parquet").to_batches(columns=["image"], batch_size=batch_rows):
        rows += len(encode(batch.column("image").to_pylist()))
    return {"rows": rows, "seconds": time.perf_counter() - start}


def pretrained_spark_job(spark, table: str, folder: str, arrow_rows: int) -> float:  # noqa: ANN001
    """Seconds of the pretrained_image view's transform over ``table``, written to the noop sink."""
    from radnet_spark.config import RadnetConfig
    from radnet_spark.inference import arrow_batch_rows
    from radnet_spark.views.base import FittedView
    from radnet_spark.views.pretrained_image import PretrainedImageView

    view = PretrainedImageView()
    start = time.perf_counter()
    with arrow_batch_rows(spark, arrow_rows):
        embedded = FittedView(view, folder, 512).transform(spark.read.parquet(table), RadnetConfig())
        embedded.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def pretrained_benchmark(small: Path, large: Path, args: argparse.Namespace) -> None:
    """Plain loop with 1 and 2 threads, then the view on Spark local[2]; images/s and per-core ratios."""
    folder = Path(tempfile.mkdtemp(prefix="radnet-bench-pretrained-"))
    parameters = save_pretrained_encoder(folder, args.input_size, args.batch_rows)
    plain = {}
    for threads in (1, 2):
        runs = [pretrained_plain_loop(str(large), str(folder), threads, args.batch_rows) for _ in range(args.repeat)]
        best = min(runs, key=lambda run: run["seconds"])
        plain[threads] = best["rows"] / best["seconds"]
    rows = int(best["rows"])
    print(f"ResNet-18-sized TorchScript encoder ({parameters / 1e6:.1f} M parameters, random weights), "
          f"{args.image_size}² images resized to {args.input_size}², model batch {args.batch_rows}, "
          f"Arrow batch {args.arrow_rows}, best of {args.repeat}")
    print(f"plain torch loop, 1 thread:       {plain[1]:7.1f} img/s ({rows} images)")
    print(f"plain torch loop, 2 threads:      {plain[2]:7.1f} img/s = {plain[2] / 2:.1f} per core")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    small_rows, cold, warm_small, warm_large = spark_timings(
        small, large, str(folder), args, {},
        run_job=lambda spark, table: pretrained_spark_job(spark, table, str(folder), args.arrow_rows))
    marginal = (rows - small_rows) / (warm_large - warm_small)
    fixed = warm_small - small_rows / marginal
    per_core = marginal / 2
    print("Spark pretrained_image view, local[2] (2 workers x 1 torch thread):")
    print(f"  cold job on {small_rows}:               {small_rows / cold:7.1f} img/s ({cold:.1f} s)")
    print(f"  warm jobs on {small_rows} / {rows}:       {small_rows / warm_small:7.1f} / {rows / warm_large:.1f} img/s "
          f"({warm_small:.1f} s / {warm_large:.1f} s)")
    print(f"  steady state (marginal):         {marginal:7.1f} img/s = {per_core:.1f} per core, "
          f"fixed cost ≈ {fixed:.1f} s/job")
    print(f"  per core ÷ plain 1 thread:       {per_core / plain[1]:7.2f}×")
    print(f"  per core ÷ plain 2 threads/2:    {per_core / (plain[2] / 2):7.2f}×")
    print(f"  warm {rows} job per core ÷ plain 1 thread: {rows / warm_large / 2 / plain[1]:7.2f}×")


if __name__ == "__main__":
    main()
