"""Spark inference equals the pure embedders on the same rows (run with the Spark lock)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from pyspark.sql import functions as F

from radnet_spark.embedders import ImageEmbedder, TagEmbedder
from radnet_spark.errors import PipelineError
from radnet_spark.inference import ARROW_BATCH_CONF, arrow_batch_rows, embed_dataframe, embed_frame

ROWS = 30


@pytest.fixture(scope="module")
def tag_embedder_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    features = rng.random((ROWS, 6)).astype(np.float32)
    folder = tmp_path_factory.mktemp("tag_features")
    pq.write_table(pa.table({
        "split": ["train", "validation", "test"] * (ROWS // 3),
        "features": pa.array(features.tolist(), pa.list_(pa.float32())),
    }), folder / "part.parquet")
    torch.set_num_threads(1)
    embedder = TagEmbedder(bottleneck=3, hidden=(5, 4), max_epochs=1, seed=0).fit(str(folder), progress=False)
    target = tmp_path_factory.mktemp("models") / "tags"
    embedder.save(str(target))
    return str(target), features


@pytest.fixture(scope="module")
def image_embedder_dir(tmp_path_factory):
    images = np.random.default_rng(1).integers(0, 256, (ROWS, 16, 16), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("images")
    pq.write_table(pa.table({
        "split": ["train", "validation", "test"] * (ROWS // 3),
        "image": [image.tobytes() for image in images],
    }), folder / "part.parquet")
    torch.set_num_threads(1)
    embedder = ImageEmbedder(
        filters=(4, 4), bottleneck_channels=2, image_size=16, max_epochs=1, pca_components=5, seed=0,
    ).fit(str(folder), progress=False)
    target = tmp_path_factory.mktemp("models") / "image"
    embedder.save(str(target))
    return str(target), images


def key_frame(values: list) -> pd.DataFrame:
    return pd.DataFrame({
        "sop_instance_uid": [f"uid{i}" for i in range(len(values))],
        "exam_id": [f"exam{i // 3}" for i in range(len(values))],
        "split": ["train"] * len(values),
        "modality": ["CT"] * len(values),
        "payload": values,
    })


def input_frame(spark, column: str, values: list, with_split: bool = True):
    frame = key_frame(values).rename(columns={"payload": column})
    return spark.createDataFrame(frame if with_split else frame.drop(columns=["split"]))


def collected(df) -> dict[str, np.ndarray]:
    return {row["sop_instance_uid"]: np.asarray(row["embedding"], dtype=np.float32) for row in df.collect()}


def test_spark_tag_embeddings_equal_the_pure_embedder(spark, tag_embedder_dir):
    directory, features = tag_embedder_dir
    df = input_frame(spark, "features", [row.tolist() for row in features])
    df = df.withColumn("features", F.col("features").cast("array<float>"))
    with arrow_batch_rows(spark, 7):
        out = embed_dataframe(df, directory, "tags", batch_rows=4)
        result = collected(out)
    assert out.columns == ["sop_instance_uid", "exam_id", "split", "embedding"]
    expected = TagEmbedder.load(directory).embed_numpy(features)
    for index in range(ROWS):
        np.testing.assert_allclose(result[f"uid{index}"], expected[index], rtol=1e-5, atol=1e-6)


def test_spark_image_embeddings_equal_the_pure_embedder(spark, image_embedder_dir):
    directory, images = image_embedder_dir
    df = input_frame(spark, "image", [image.tobytes() for image in images])
    with arrow_batch_rows(spark, 8):
        result = collected(embed_dataframe(df.repartition(2), directory, "image", batch_rows=3))
    expected = ImageEmbedder.load(directory).embed_numpy(images)
    assert len(result) == ROWS
    for index in range(ROWS):
        np.testing.assert_allclose(result[f"uid{index}"], expected[index], rtol=1e-5, atol=1e-5)


def test_split_is_derived_from_the_exam_when_the_input_has_none(spark, image_embedder_dir):
    from radnet_spark.splits import split_of

    directory, images = image_embedder_dir
    df = input_frame(spark, "image", [image.tobytes() for image in images[:6]], with_split=False)
    rows = embed_dataframe(df, directory, "image").collect()
    expected = {f"exam{i}": split_of(f"exam{i}") for i in range(2)}
    assert {row["exam_id"]: row["split"] for row in rows} == expected


def test_a_missing_input_column_is_named_before_any_job_runs(spark, tag_embedder_dir):
    directory, _ = tag_embedder_dir
    df = spark.createDataFrame(key_frame([1.0, 2.0]))
    with pytest.raises(PipelineError, match="no column 'features'"):
        embed_dataframe(df, directory, "tags")


def test_a_directory_without_the_right_embedder_fails_on_the_driver(spark, tag_embedder_dir, tmp_path):
    directory, features = tag_embedder_dir
    df = input_frame(spark, "features", [row.tolist() for row in features[:2]])
    with pytest.raises(PipelineError, match="holds no fitted embedder"):
        embed_dataframe(df, str(tmp_path), "tags")
    with pytest.raises(PipelineError, match="holds the 'tags' embedder, but the 'image' one"):
        embed_dataframe(df, directory, "image", input_col="features")


def test_arrow_batch_rows_restores_the_previous_setting(spark):
    spark.conf.set(ARROW_BATCH_CONF, "1000")
    with arrow_batch_rows(spark, 16):
        assert spark.conf.get(ARROW_BATCH_CONF) == "16"
    assert spark.conf.get(ARROW_BATCH_CONF) == "1000"


def test_null_inputs_get_null_embeddings(image_embedder_dir):
    directory, images = image_embedder_dir
    frame = key_frame([images[0].tobytes(), None, images[1].tobytes()]).rename(columns={"payload": "image"})
    embedder = ImageEmbedder.load(directory)
    out = embed_frame(embedder, frame, "image", "image", "embedding", ["sop_instance_uid"])
    assert out["embedding"][1] is None
    assert len(out["embedding"][0]) == 5 and len(out["embedding"][2]) == 5
