"""Streaming Parquet rows into torch: coverage, filters, sampling, shuffling, bounded memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from radnet_spark.errors import PipelineError
from radnet_spark.training.parquet_loader import (
    ArrowRowDataset,
    BatchSource,
    ParquetSource,
    decode_features,
    features_dataset,
    images_dataset,
)


@pytest.fixture()
def feature_table(tmp_path):
    """120 rows in two files, row groups of 16; features = [id, id, id]; ids ≡ 0 mod 5 are validation."""
    folder = tmp_path / "tag_features"
    folder.mkdir()
    for part, ids in enumerate((np.arange(0, 70), np.arange(70, 120))):
        table = pa.table({
            "sop_instance_uid": [f"uid{i}" for i in ids],
            "split": ["validation" if i % 5 == 0 else "train" for i in ids],
            "features": pa.array([[float(i)] * 3 for i in ids], pa.list_(pa.float32())),
        })
        pq.write_table(table, folder / f"part-{part}.parquet", row_group_size=16)
    return str(folder)


def ids_of(dataset) -> list[int]:
    return [int(row[0]) for row in dataset]


def test_every_row_is_streamed_exactly_once_per_epoch(feature_table):
    dataset = features_dataset(feature_table, seed=1, batch_rows=8, shuffle_buffer=10)
    for _ in range(2):
        assert sorted(ids_of(dataset)) == list(range(120))
    assert len(dataset) == 120


def test_rows_come_as_float_vectors(feature_table):
    row = next(iter(features_dataset(feature_table)))
    assert row.dtype == torch.float32 and row.shape == (3,)


def test_dict_filter_keeps_only_matching_rows(feature_table):
    dataset = features_dataset(feature_table, row_filter={"split": "validation"})
    assert sorted(ids_of(dataset)) == list(range(0, 120, 5))
    assert len(dataset) == 24


def test_expression_filter_keeps_only_matching_rows(feature_table):
    dataset = features_dataset(feature_table, row_filter=pc.field("sop_instance_uid").isin(["uid3", "uid90"]))
    assert sorted(ids_of(dataset)) == [3, 90]


def test_hive_partition_column_can_be_filtered(tmp_path):
    for split, ids in (("train", range(10)), ("test", range(10, 14))):
        (tmp_path / f"split={split}").mkdir()
        table = pa.table({"features": pa.array([[float(i)] for i in ids], pa.list_(pa.float32()))})
        pq.write_table(table, tmp_path / f"split={split}" / "part.parquet")
    assert sorted(ids_of(features_dataset(str(tmp_path), row_filter={"split": "test"}))) == [10, 11, 12, 13]


def test_max_rows_bounds_the_sample_and_keeps_it_across_epochs(feature_table):
    dataset = features_dataset(feature_table, row_filter={"split": "train"}, max_rows=37, seed=4)
    first, second = ids_of(dataset), ids_of(dataset)
    assert len(first) == 37 and len(set(first)) == 37
    assert sorted(first) == sorted(second)
    assert all(i % 5 != 0 for i in first)
    assert len(dataset) == 37


def test_order_changes_between_epochs_and_repeats_with_the_seed(feature_table):
    dataset = features_dataset(feature_table, seed=9, batch_rows=8, shuffle_buffer=20)
    epoch_0, epoch_1 = ids_of(dataset), ids_of(dataset)
    assert epoch_0 != epoch_1
    again = features_dataset(feature_table, seed=9, batch_rows=8, shuffle_buffer=20)
    assert ids_of(again) == epoch_0
    assert ids_of(again) == epoch_1
    assert ids_of(features_dataset(feature_table, seed=10, batch_rows=8, shuffle_buffer=20)) != epoch_0


def test_set_epoch_picks_the_shuffle_of_that_epoch(feature_table):
    dataset = features_dataset(feature_table, seed=9)
    ids_of(dataset)
    second = ids_of(dataset)
    dataset.set_epoch(1)
    assert ids_of(dataset) == second


def test_unshuffled_reading_keeps_file_order(feature_table):
    assert ids_of(features_dataset(feature_table, shuffle=False)) == list(range(120))


def test_never_more_than_a_batch_and_a_buffer_of_rows_are_held(feature_table):
    # Row groups hold 16 rows; batches of 5 must still be cut to 5.
    dataset = features_dataset(feature_table, batch_rows=5, shuffle_buffer=7)
    assert sorted(ids_of(dataset)) == list(range(120))
    assert dataset.peak_batch_rows == 5
    assert dataset.peak_buffered_rows == 7


def test_source_batches_are_no_larger_than_batch_rows(feature_table):
    source = ParquetSource(feature_table, ["features"], batch_rows=6)
    sizes = [batch.num_rows for batch in source.iter_batches(epoch=0)]
    assert max(sizes) <= 6 and sum(sizes) == 120


def test_shards_split_the_rows_without_overlap(feature_table):
    source = ParquetSource(feature_table, ["features"], seed=2)
    shards = [
        [int(v) for batch in source.iter_batches(epoch=3, shard=shard, num_shards=3)
         for v in decode_features(batch.column("features"))[:, 0]]
        for shard in range(3)
    ]
    assert sorted(sum(shards, [])) == list(range(120))
    assert all(shards)


def test_dataloader_workers_together_read_each_row_once(feature_table):
    dataset = features_dataset(feature_table, seed=5)
    loader = DataLoader(dataset, batch_size=16, num_workers=2)
    ids = [int(value) for batch in loader for value in batch[:, 0]]
    assert sorted(ids) == list(range(120))


def test_images_are_decoded_to_unit_range_single_channel_tensors(tmp_path):
    images = np.arange(3 * 16, dtype=np.uint8).reshape(3, 4, 4) * 5
    table = pa.table({"image": [image.tobytes() for image in images], "image_size": [4, 4, 4]})
    pq.write_table(table, tmp_path / "images.parquet")
    rows = list(images_dataset(str(tmp_path), shuffle=False))
    assert rows[0].shape == (1, 4, 4) and rows[0].dtype == torch.float32
    np.testing.assert_allclose(rows[2][0].numpy(), images[2] / 255.0, rtol=1e-6)


def test_an_image_of_the_wrong_size_is_reported(tmp_path):
    table = pa.table({"image": [bytes(16)]})
    pq.write_table(table, tmp_path / "images.parquet")
    with pytest.raises(PipelineError, match="not 8×8"):
        list(images_dataset(str(tmp_path), image_size=8))


def test_a_missing_column_is_named_in_the_error(feature_table):
    with pytest.raises(PipelineError, match="no column 'split2'"):
        features_dataset(feature_table, row_filter={"split2": "train"})


def test_unequal_feature_lengths_are_reported():
    with pytest.raises(PipelineError, match="differ in length"):
        decode_features(pa.array([[1.0, 2.0], [1.0]], pa.list_(pa.float32())))


def test_any_batch_source_can_feed_the_dataset():
    class InMemory:
        def iter_batches(self, epoch, shard=0, num_shards=1):
            if shard == 0:
                yield pa.record_batch({"features": pa.array([[1.0], [2.0]], pa.list_(pa.float32()))})

        def num_rows(self):
            return 2

    source = InMemory()
    assert isinstance(source, BatchSource)
    dataset = ArrowRowDataset(source, "features", decode_features, torch.from_numpy)
    assert sorted(float(row[0]) for row in dataset) == [1.0, 2.0]


def test_split_filters_prune_a_table_partitioned_by_split(tmp_path):
    # Image training writes its work table with one folder per split; the filters must still select.
    import pyarrow.dataset as pads

    from radnet_spark.embedders import TRAIN_ROWS, VALIDATION_ROWS

    table = pa.table({"image": [b"x" * 4] * 10, "split": ["train"] * 7 + ["validation"] * 3})
    pads.write_dataset(table, tmp_path, format="parquet", partitioning=["split"], partitioning_flavor="hive")
    assert ParquetSource(str(tmp_path), ["image"], VALIDATION_ROWS, max_rows=5, shuffle=False).num_rows() == 3
    assert ParquetSource(str(tmp_path), ["image"], TRAIN_ROWS, max_rows=100).num_rows() == 7
