"""k-means benchmark: in-memory baselines against our two Spark engines, on one generated matrix.

Generates ``--rows`` × ``--dims`` Gaussian blobs (``--k`` true centres) as Parquet, then in one run:

1. scikit-learn on all rows in memory;
2. scikit-learn on a ``--sample-rows`` sample in memory (the baseline for the ``sample`` engine);
3. FAISS on all rows in memory;
4. our ``sample`` engine: sample from Parquet in Spark, fit on the driver, assign every row in Spark;
5. MLlib on all rows (``solver="block"``).

Every method runs ``--iterations`` Lloyd iterations (fewer if it converges) with the same k; the cost
of every result is the within-cluster sum of squares over ALL rows, computed the same way.

Run (Spark is local; hold the shared lock on the lab machine)::

    flock /tmp/radnet-spark.lock .venv/bin/python bench/kmeans.py --rows 200000 --dims 512 --k 50
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np


def generate(rows: int, dims: int, k: int, seed: int, spread: float) -> np.ndarray:
    """Blobs: ``k`` centres with standard deviation ``spread`` per coordinate, unit noise; float32.

    With ``spread`` of about 1 or more the blobs are so far apart in 512 dimensions that
    k-means++ lands on them and Lloyd stops after 2 iterations, which measures initialisation, not
    iterations; 0.5 makes them overlap enough for Lloyd to work.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, dims)).astype(np.float32)
    labels = rng.integers(0, k, size=rows)
    x = centres[labels]
    x += rng.standard_normal(size=x.shape, dtype=np.float32)
    return x


def write_parquet(x: np.ndarray, path: Path, chunk: int = 20_000) -> None:
    """The matrix as Parquet with ``sop_instance_uid`` and ``features`` array<float>."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from radnet_spark.vectors import vectors_to_arrow

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    for part, start in enumerate(range(0, len(x), chunk)):
        block = x[start : start + chunk]
        ids = pa.array([f"row{i}" for i in range(start, start + len(block))])
        table = pa.table({"sop_instance_uid": ids, "features": vectors_to_arrow(block)})
        pq.write_table(table, path / f"part-{part:05d}.parquet")


def wcss(x: np.ndarray, centres: np.ndarray, chunk: int = 20_000) -> float:
    """Within-cluster sum of squares of all rows against ``centres``."""
    from radnet_spark.clustering.kmeans import nearest_centres

    total = 0.0
    for start in range(0, len(x), chunk):
        _, distance = nearest_centres(x[start : start + chunk], centres, "euclidean")
        total += float((distance**2).sum())
    return total


def report(name: str, seconds: float, iterations: int, cost: float, baseline: float | None) -> None:
    ratio = f"{cost / baseline:8.4f}" if baseline else "       -"
    per_iteration = seconds / max(iterations, 1)
    print(
        f"{name:<42} {seconds:9.2f} s {iterations:5d} it {per_iteration:8.3f} s/it  cost {cost:.6e}  "
        f"cost/mllib {ratio}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--sample-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spread", type=float, default=0.5, help="centre spread relative to unit noise")
    parser.add_argument("--out", default="/tmp/radnet-bench-kmeans")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--skip-mllib", action="store_true")
    args = parser.parse_args()

    import faiss
    from sklearn.cluster import KMeans

    from radnet_spark.clustering.kmeans import fit_kmeans, native_blas_hint
    from radnet_spark.config import SparkConfig
    from radnet_spark.session import get_spark

    out = Path(args.out)
    parquet = out / "matrix.parquet"
    start = time.perf_counter()
    x = generate(args.rows, args.dims, args.k, args.seed, args.spread)
    write_parquet(x, parquet)
    print(
        f"generated {args.rows} x {args.dims} blobs (k={args.k}, spread {args.spread}) as Parquet in "
        f"{time.perf_counter() - start:.1f} s; "
        f"system BLAS for MLlib: {native_blas_hint() or 'none (Java BLAS)'}"
    )
    results: list[tuple[str, float, int, float]] = []

    start = time.perf_counter()
    full = KMeans(args.k, n_init=1, max_iter=args.iterations, random_state=args.seed, algorithm="lloyd").fit(
        x
    )
    results.append(
        (
            "scikit-learn, all rows in memory",
            time.perf_counter() - start,
            int(full.n_iter_),
            wcss(x, full.cluster_centers_),
        )
    )

    rng = np.random.default_rng(args.seed)
    sample = x[rng.choice(len(x), size=min(args.sample_rows, len(x)), replace=False)]
    start = time.perf_counter()
    small = KMeans(args.k, n_init=1, max_iter=args.iterations, random_state=args.seed, algorithm="lloyd").fit(
        sample
    )
    sample_seconds = time.perf_counter() - start
    results.append(
        (
            f"scikit-learn, {len(sample)}-row sample in memory",
            sample_seconds,
            int(small.n_iter_),
            wcss(x, small.cluster_centers_),
        )
    )

    start = time.perf_counter()
    index = faiss.Kmeans(
        args.dims, args.k, niter=args.iterations, seed=args.seed, max_points_per_centroid=len(x)
    )
    index.train(x)
    results.append(
        ("FAISS, all rows in memory", time.perf_counter() - start, args.iterations, wcss(x, index.centroids))
    )

    spark = get_spark(SparkConfig(master=args.master, app_name="radnet-bench-kmeans"))
    df = spark.read.parquet(str(parquet))
    df.count()  # file listing and JVM warm-up are not part of any engine's time

    start = time.perf_counter()
    model = fit_kmeans(
        df,
        args.k,
        engine="sample",
        fit_sample_rows=args.sample_rows,
        max_iter=args.iterations,
        seed=args.seed,
    )
    fitted = time.perf_counter() - start
    spark_cost = model.cost(df)  # assigns every row in Spark and aggregates the squared distances
    stage = time.perf_counter() - start
    results.append(
        ("our sample engine: fit (sample+driver)", fitted, int(model.info["n_iter"]), wcss(x, model.centres))
    )
    results.append(
        ("our sample engine: fit + assign all in Spark", stage, int(model.info["n_iter"]), spark_cost)
    )

    mllib_cost = None
    if not args.skip_mllib:
        start = time.perf_counter()
        mllib = fit_kmeans(df, args.k, engine="mllib", max_iter=args.iterations, seed=args.seed, tol=0.0)
        results.append(
            (
                "MLlib, all rows (solver=block)",
                time.perf_counter() - start,
                int(mllib.info["n_iter"]),
                wcss(x, mllib.centres),
            )
        )
        mllib_cost = results[-1][3]

    print(f"\n{'method':<42} {'time':>11} {'iter':>8} {'':>10}")
    for name, seconds, iterations, cost in results:
        report(name, seconds, iterations, cost, mllib_cost)
    print(
        f"\nsample engine whole stage / scikit-learn on the same-size sample: {stage / sample_seconds:.2f}x "
        f"(target <= 1.5x)"
    )
    if mllib_cost:
        print(
            f"sample engine all-row cost / MLlib all-row cost: {spark_cost / mllib_cost:.4f} (target <= 1.01)"
        )
    spark.stop()


if __name__ == "__main__":
    main()
