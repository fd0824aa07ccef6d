"""Cluster metrics from Spark aggregates agree with scikit-learn and with brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import homogeneity_score, normalized_mutual_info_score

from radnet_spark.evaluation.metrics import (
    contingency_counts,
    contingency_matrix,
    evaluate_clusters,
    harmonic_mean,
    homogeneity_from_contingency,
    in_cluster_cosine_distance,
    mean_pairwise_cosine_similarity,
    nmi_from_contingency,
)


def _labels(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, 6, size=n)
    modality = np.where(rng.random(n) < 0.8, clusters % 3, rng.integers(0, 3, size=n))
    bpe = rng.integers(0, 5, size=n)
    return clusters, modality, bpe


def _brute_force_distance(units: np.ndarray) -> float:
    n = len(units)
    sims = units @ units.T
    return 1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1))


def test_contingency_scores_equal_scikit_learn_on_matrices():
    clusters, modality, _ = _labels()
    table = np.zeros((6, 3))
    np.add.at(table, (clusters, modality), 1)
    assert homogeneity_from_contingency(table) == pytest.approx(homogeneity_score(modality, clusters))
    assert nmi_from_contingency(table) == pytest.approx(normalized_mutual_info_score(modality, clusters))


def test_single_cluster_and_single_label_follow_scikit_learn_edge_cases():
    assert nmi_from_contingency(np.array([[5.0]])) == normalized_mutual_info_score([0] * 5, [0] * 5)
    assert homogeneity_from_contingency(np.array([[5.0]])) == homogeneity_score([0] * 5, [0] * 5)
    assert nmi_from_contingency(np.array([[3.0, 2.0]])) == normalized_mutual_info_score(
        [0, 0, 0, 1, 1], [0] * 5
    )


def test_harmonic_mean_is_zero_when_any_metric_is_zero():
    assert harmonic_mean([0.5, 0.0, 1.0]) == 0.0
    assert harmonic_mean([0.5, 1.0]) == pytest.approx(2 / 3)


def test_sum_formula_equals_brute_force_pairwise_cosine_distance():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 5)) + 1.0
    units = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert 1 - mean_pairwise_cosine_similarity(units.sum(axis=0), 7) == pytest.approx(
        _brute_force_distance(units)
    )
    assert mean_pairwise_cosine_similarity(units[0], 1) is None


def test_spark_metrics_equal_scikit_learn_on_the_same_labels(spark):
    clusters, modality, bpe = _labels()
    labels = [str(m) for m in modality]
    rows = [
        (f"u{i}", int(c), f"M{m}", f"B{b}")
        for i, (c, m, b) in enumerate(zip(clusters, modality, bpe, strict=True))
    ]
    df = spark.createDataFrame(rows, "sop_instance_uid string, cluster int, modality string, bpe string")
    table = contingency_matrix(contingency_counts(df, "modality"))
    assert table.sum() == len(rows)
    assert homogeneity_from_contingency(table) == pytest.approx(homogeneity_score(labels, clusters))
    result = evaluate_clusters(df.select("sop_instance_uid", "cluster"), df)
    assert result["hs_modality"] == pytest.approx(homogeneity_score(modality, clusters))
    assert result["nmi_modality"] == pytest.approx(normalized_mutual_info_score(modality, clusters))
    assert result["hs_bpe"] == pytest.approx(homogeneity_score(bpe, clusters))
    assert result["nmi_bpe"] == pytest.approx(normalized_mutual_info_score(bpe, clusters))
    expected = harmonic_mean([result[k] for k in ("hs_modality", "nmi_modality", "hs_bpe", "nmi_bpe")])
    assert result["score"] == pytest.approx(expected)
    assert sum(result["sizes"].values()) == len(rows)


def test_in_cluster_cosine_distance_in_spark_equals_brute_force(spark):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 4)) + np.array([2.0, 0, 0, 0])
    clusters = np.repeat([0, 1, 2], 10)
    rows = [(int(c), [float(v) for v in row]) for c, row in zip(clusters, x, strict=True)]
    df = spark.createDataFrame(rows, "cluster int, embedding array<float>").repartition(3)
    result = in_cluster_cosine_distance(df, "embedding")
    units = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = {c: _brute_force_distance(units[clusters == c]) for c in range(3)}
    for c, value in expected.items():
        assert result["per_cluster"][c] == pytest.approx(value, abs=1e-5)
    assert result["mean"] == pytest.approx(np.mean(list(expected.values())), abs=1e-5)


def test_diagnosis_distance_joins_the_exam_embedding_to_every_instance(spark):
    assignments = spark.createDataFrame(
        [("a", "e1", 0), ("b", "e1", 0), ("c", "e2", 0), ("d", "e3", 1)],
        "sop_instance_uid string, exam_id string, cluster int",
    )
    labels = spark.createDataFrame(
        [(u, "CT", "HEAD") for u in "abcd"], "sop_instance_uid string, modality string, bpe string"
    )
    diagnoses = spark.createDataFrame(
        [("e1", [1.0, 0.0]), ("e2", [0.0, 1.0])], "exam_id string, embedding array<float>"
    )
    result = evaluate_clusters(assignments, labels, diagnosis_embeddings=diagnoses)
    # Cluster 0 holds e1, e1, e2: pairs (a,b)=0, (a,c)=(b,c)=1 → mean distance 2/3; cluster 1 has no pair.
    assert result["diagnosis_distance"] == pytest.approx(2 / 3)
    assert result["per_cluster"]["diagnosis_distance"] == {0: pytest.approx(2 / 3)}


def test_comparison_has_a_row_per_view_and_fusion_with_split_columns(spark, tmp_path):
    from radnet_spark.config import ClusterConfig
    from radnet_spark.evaluation.compare import compare_fusions, paper_k, write_comparison

    rng = np.random.default_rng(2)
    tags, images, labels = [], [], []
    for i in range(60):
        group = i % 3
        split = ("train", "validation", "test")[i % 5 % 3]
        uid, exam = f"u{i}", f"e{i}"
        tags.append((uid, exam, split, (rng.normal(size=3) + 5 * group).tolist()))
        images.append((uid, exam, split, (rng.normal(size=4) + 5 * group).tolist()))
        labels.append((uid, ["CT", "MR", "CR"][group], ["HEAD", "CHEST", "KNEE"][group]))
    schema = "sop_instance_uid string, exam_id string, split string, embedding array<float>"
    embeddings = {"tags": spark.createDataFrame(tags, schema), "image": spark.createDataFrame(images, schema)}
    label_df = spark.createDataFrame(labels, "sop_instance_uid string, modality string, bpe string")
    overrides = {"tags": 3, "image": 3, "embeddings:tags+image": 3, "clusterprobs:tags+image": 3}
    table = compare_fusions(
        embeddings, label_df, ClusterConfig(), methods=["embeddings", "clusterprobs"], k_overrides=overrides
    )
    assert table["model"].tolist() == ["tags", "image", "[tags]-[image]", "[tags]-[image]"]
    assert table["fusion"].tolist() == ["-", "-", "embeddings", "clusterprobs"]
    assert {"validation_score", "test_score", "test_image_distance"} <= set(table.columns)
    # Three separated groups, one per label: the embeddings fusion recovers them exactly.
    assert table.loc[2, "test_hs_modality"] == pytest.approx(1.0)
    csv_path, md_path = write_comparison(table, tmp_path)
    assert csv_path.read_text().startswith("model,fusion") and "| [tags]-[image] |" in md_path.read_text()
    assert paper_k(["tags", "image", "diagnosis"], "embeddings") == 50
