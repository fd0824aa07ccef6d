"""Bounded samples for driver-side fits: the same rows as a full sort, found without one."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from radnet_spark.sampling import candidate_fraction, hash_threshold, smallest_hash_rows


def test_fraction_keeps_everything_for_small_tables_and_a_margin_above_the_bound_otherwise():
    assert candidate_fraction(100, 50) == 1.0
    assert candidate_fraction(100, 100) == 1.0
    fraction = candidate_fraction(1000, 1_000_000)
    assert 1000 / 1_000_000 < fraction < 2 * 1000 / 1_000_000


def test_threshold_splits_the_signed_hash_range_by_the_fraction():
    assert hash_threshold(0.0) == -(2**63)
    assert hash_threshold(0.5) == 0
    assert hash_threshold(1.0) == 2**63 - 1


@pytest.mark.parametrize("max_rows", [1, 17, 250, 5000])
def test_sample_equals_the_smallest_hashes_of_a_full_sort(spark, max_rows):
    df = spark.range(0, 5000, numPartitions=7).withColumn("key", F.concat(F.lit("uid-"), F.col("id").cast("string")))
    rank = F.xxhash64(F.lit(3), F.col("key"))
    expected = [r["key"] for r in df.orderBy(rank, "key").limit(max_rows).collect()]
    sampled = [r["key"] for r in smallest_hash_rows(df, max_rows, rank, ["key"]).collect()]
    assert sampled == expected


def test_sample_does_not_depend_on_partitioning(spark):
    base = spark.range(0, 3000).withColumn("key", F.col("id").cast("string"))
    rank = F.xxhash64(F.lit(11), F.col("key"))
    one = [r["key"] for r in smallest_hash_rows(base.repartition(1), 100, rank, ["key"]).collect()]
    many = [r["key"] for r in smallest_hash_rows(base.repartition(13), 100, rank, ["key"]).collect()]
    assert one == many
    assert len(one) == 100


def test_sample_filters_candidates_before_sorting(spark):
    # The plan must hold the hash threshold filter: without it the whole table is sorted.
    df = spark.range(0, 100_000).withColumn("key", F.col("id").cast("string"))
    sample = smallest_hash_rows(df, 10, F.xxhash64(F.lit(1), F.col("key")), ["key"], total=100_000)
    plan = sample._jdf.queryExecution().optimizedPlan().toString()
    assert "Filter" in plan


def test_image_training_copy_holds_only_what_the_embedder_reads(spark):
    from radnet_spark.config import ImageConfig
    from radnet_spark.views.image import bounded_training_images as _bounded_training_images

    images = spark.range(0, 6000, numPartitions=4).select(
        F.concat(F.lit("uid-"), F.col("id").cast("string")).alias("sop_instance_uid"),
        F.when(F.col("id") % 5 == 0, "validation").otherwise("train").alias("split"),
    )
    settings = ImageConfig(train_sample_rows=300, pca_sample_rows=500, validation_sample_rows=100)
    kept = {r["split"]: r["count"] for r in _bounded_training_images(images, settings, 42).groupBy("split").count().collect()}
    # Enough rows for every sample the embedder draws, and not much more (the six-sigma margin).
    assert 500 <= kept["train"] <= 500 + 6 * 500**0.5 + 64 + 100
    assert 100 <= kept["validation"] <= 100 + 6 * 100**0.5 + 64 + 50
