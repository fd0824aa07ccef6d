"""Exam-level train/validation/test split: deterministic, proportional, identical in Spark."""

from __future__ import annotations

from collections import Counter

import pytest

from radnet_spark.errors import UserError
from radnet_spark.splits import exam_bucket, split_column, split_of

EXAMS = [f"exam-{i:05d}" for i in range(5_000)]


def test_split_of_is_deterministic_for_an_exam():
    assert [split_of(e) for e in EXAMS[:200]] == [split_of(e) for e in EXAMS[:200]]


def test_splits_are_roughly_80_10_10_on_5000_exams():
    counts = Counter(split_of(e) for e in EXAMS)
    assert set(counts) == {"train", "validation", "test"}
    assert counts["train"] / len(EXAMS) == pytest.approx(0.8, abs=0.02)
    assert counts["validation"] / len(EXAMS) == pytest.approx(0.1, abs=0.015)
    assert counts["test"] / len(EXAMS) == pytest.approx(0.1, abs=0.015)


def test_custom_fractions_are_respected():
    counts = Counter(split_of(e, train=0.5, validation=0.3) for e in EXAMS)
    assert counts["train"] / len(EXAMS) == pytest.approx(0.5, abs=0.025)
    assert counts["validation"] / len(EXAMS) == pytest.approx(0.3, abs=0.025)


def test_seed_changes_the_assignment():
    same = sum(split_of(e, seed=1) == split_of(e, seed=2) for e in EXAMS)
    assert same < len(EXAMS) * 0.9


def test_all_training_when_train_fraction_is_one():
    assert {split_of(e, train=1.0, validation=0.0) for e in EXAMS[:500]} == {"train"}


def test_fractions_above_one_are_rejected():
    with pytest.raises(UserError):
        split_of("exam", train=0.9, validation=0.2)


def test_spark_split_column_agrees_with_pure_function(spark):
    from pyspark.sql import functions as F

    rows = [(e,) for e in EXAMS] + [("čćžšđ-ünïcode",), ("",)]
    df = spark.createDataFrame(rows, "exam_id string")
    got = df.select(
        "exam_id",
        split_column("exam_id").alias("split"),
        split_column(F.col("exam_id"), 0.6, 0.2, 7).alias("other"),
    ).collect()
    for row in got:
        assert row["split"] == split_of(row["exam_id"])
        assert row["other"] == split_of(row["exam_id"], 0.6, 0.2, 7)
    assert len(got) == len(rows)


def test_spark_split_of_null_exam_is_null(spark):
    df = spark.createDataFrame([(None,)], "exam_id string")
    assert df.select(split_column("exam_id").alias("s")).collect()[0]["s"] is None


def test_every_instance_of_an_exam_gets_the_same_split(spark):
    from pyspark.sql import functions as F

    rows = [(f"sop-{e}-{k}", e) for e in EXAMS[:300] for k in range(3)]
    df = spark.createDataFrame(rows, "sop_instance_uid string, exam_id string")
    per_exam = (
        df.withColumn("split", split_column("exam_id")).groupBy("exam_id").agg(F.count_distinct("split"))
    )
    assert {r[1] for r in per_exam.collect()} == {1}


def test_bucket_is_in_range():
    assert all(0 <= exam_bucket(e) < 10_000 for e in EXAMS[:1000])
