"""Same inputs and settings give the same labels, whatever the partitioning of the work.

Two `radnet run`s on one small generated dump into two warehouses: the second with a different
number of read tasks and shuffle partitions. k, metrics and every instance's cluster must agree.
(The salt is the same in both: it decides the hashed exam ids and with them the split.)
"""

from __future__ import annotations

import pytest

from radnet_spark.config import load_config
from radnet_spark.pipeline import run
from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tables import read_table

SETTINGS = [
    "tags.missforest_trees=8", "tags.missforest_max_iter=2", "tags.ae_max_epochs=3",
    "image.max_epochs=2", "image.cae_filters=[8,8,16,16]", "image.pca_components=16",
    "text.epochs=5", "text.vector_size=16", "text.min_word_frequency=2",
    "cluster.k_min=2", "cluster.k_max=10", "cluster.k_step=1",
]


def _table(spark, warehouse: str, name: str, key: str = "sop_instance_uid") -> dict:
    return {row[key]: row for row in read_table(spark, warehouse, name).collect()}


@pytest.fixture(scope="module")
def two_runs(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism")
    dump = root / "pacs"
    generate_pacs(dump, exams=14, seed=21, defect_rates=DefectRates.none(), workers=1)
    dicom, diagnoses = str(dump / "dicom"), str(dump / "diagnoses.csv")
    first = run(spark, dicom, diagnoses, str(root / "wa"), load_config(None, SETTINGS), models_root=str(root / "ma"))
    shuffle_partitions = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "5")
    try:
        other_layout = load_config(None, [*SETTINGS, "ingest.files_per_partition=7", "ingest.tasks_per_slot=1",
                                          "ingest.file_batch_size=3"])
        second = run(spark, dicom, diagnoses, str(root / "wb"), other_layout, models_root=str(root / "mb"))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", shuffle_partitions)
    return first, str(root / "wa"), second, str(root / "wb")


def test_two_runs_choose_the_same_k_and_score_the_same(two_runs):
    first, _, second, _ = two_runs
    assert first.k == second.k
    assert first.metrics == second.metrics
    assert first.pipeline.manifest()["reproducibility"] == second.pipeline.manifest()["reproducibility"]


def test_two_runs_give_every_instance_the_same_cluster(spark, two_runs):
    _, warehouse_a, _, warehouse_b = two_runs
    labels_a = {uid: row["cluster"] for uid, row in _table(spark, warehouse_a, "labels").items()}
    labels_b = {uid: row["cluster"] for uid, row in _table(spark, warehouse_b, "labels").items()}
    assert len(labels_a) > 50
    assert labels_a == labels_b


def test_two_runs_embed_every_view_identically(spark, two_runs):
    _, warehouse_a, _, warehouse_b = two_runs
    for view, key in (("tags", "sop_instance_uid"), ("image", "sop_instance_uid"), ("diagnosis", "exam_id")):
        a = {k: list(row["embedding"]) for k, row in _table(spark, warehouse_a, f"embeddings_{view}", key).items()}
        b = {k: list(row["embedding"]) for k, row in _table(spark, warehouse_b, f"embeddings_{view}", key).items()}
        assert a == b, view
