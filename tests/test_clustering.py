"""k-means engines, assignment in Spark, elbow and CLARA k-medoids on small generated blobs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from radnet_spark.clustering.elbow import ElbowResult, choose_k, elbow_from_matrix, elbow_png, k_range
from radnet_spark.clustering.kmeans import (
    KMeansModel,
    fit_kmeans,
    fit_matrix,
    nearest_centres,
    pairwise_distances,
)
from radnet_spark.clustering.kmedoids import clara_matrix, fit_kmedoids


def _blobs(n: int = 400, centers: int = 4, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(
        n_samples=n, centers=centers, n_features=dim, cluster_std=0.5, center_box=(-20, 20), random_state=seed
    )
    return x.astype(np.float32), y


def _frame(spark, x: np.ndarray):
    rows = [(f"uid{i}", "train", [float(v) for v in row]) for i, row in enumerate(x)]
    return spark.createDataFrame(rows, "sop_instance_uid string, split string, features array<float>")


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    # Two labelings agree up to renaming when the pair (a, b) has as many distinct values as each.
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_pairwise_distances_match_direct_computation():
    rng = np.random.default_rng(1)
    x, c = rng.normal(size=(20, 5)), rng.normal(size=(3, 5))
    direct = np.linalg.norm(x[:, None, :] - c[None, :, :], axis=2)
    assert np.allclose(pairwise_distances(x, c, "euclidean"), direct)
    cosine = 1 - (x @ c.T) / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(c, axis=1))
    assert np.allclose(pairwise_distances(x, c, "cosine"), cosine)


def test_unknown_distance_is_rejected_with_a_sentence():
    with pytest.raises(ValueError, match="Unknown distance"):
        pairwise_distances(np.zeros((1, 2)), np.zeros((1, 2)), "manhattan")


def test_sample_fit_is_deterministic_for_a_seed():
    x, _ = _blobs()
    first = fit_matrix(x, 4, seed=7).centres
    second = fit_matrix(x, 4, seed=7).centres
    assert np.array_equal(first, second)


def test_faiss_backend_recovers_the_blobs():
    x, y = _blobs()
    model = fit_matrix(x, 4, backend="faiss", seed=3, n_init=5)
    assert _same_partition(model.predict(x), y)


def test_cosine_sample_fit_returns_unit_centres():
    x, _ = _blobs()
    model = fit_matrix(x, 4, distance="cosine")
    assert np.allclose(np.linalg.norm(model.centres, axis=1), 1.0)


def test_model_round_trips_through_save_and_load(tmp_path):
    model = KMeansModel(
        centres=np.arange(6, dtype=float).reshape(3, 2), distance="cosine", info={"n_iter": 3}
    )
    loaded = KMeansModel.load(model.save(tmp_path / "m"))
    assert np.array_equal(loaded.centres, model.centres)
    assert loaded.distance == "cosine" and loaded.info["n_iter"] == 3


def test_elbow_picks_the_true_number_of_blobs():
    x, _ = _blobs(n=600, centers=4)
    result = elbow_from_matrix(x, k_range(2, 10))
    assert result.chosen_k == 4
    assert result.knee_found


def test_elbow_falls_back_when_the_curve_is_straight():
    k, found = choose_k([2, 3, 4, 5], [40.0, 30.0, 20.0, 10.0])
    assert not found and k == 2


def test_elbow_result_round_trips_and_plots(tmp_path):
    result = ElbowResult(ks=[2, 3, 4], wcss=[10.0, 5.0, 4.0], chosen_k=3)
    loaded = ElbowResult.load(result.save(tmp_path / "elbow.json"))
    assert loaded == result
    assert elbow_png(result).startswith(b"\x89PNG")


def test_clara_medoids_are_data_rows_one_per_blob():
    x, y = _blobs(n=300, centers=3)
    model = clara_matrix(x, 3, distance="euclidean", draws=3, draw_rows=120, seed=1)
    assert model.algorithm == "kmedoids"
    for medoid in model.centres:
        assert np.any(np.all(np.isclose(x, medoid), axis=1))
    medoid_blobs = {int(y[np.all(np.isclose(x, m), axis=1)][0]) for m in model.centres}
    assert medoid_blobs == {0, 1, 2}
    assert _same_partition(model.predict(x), y)


def test_assign_gives_nearest_centre_and_its_distance(spark):
    x, _ = _blobs(n=120)
    centres = x[[0, 50, 100]].astype(np.float64) + 0.1
    model = KMeansModel(centres=centres)
    assigned = (
        model.assign(_frame(spark, x))
        .toPandas()
        .sort_values("sop_instance_uid", key=lambda s: s.str[3:].astype(int))
    )
    labels, dist = nearest_centres(x, centres, "euclidean")
    assert assigned["cluster"].tolist() == labels.tolist()
    assert np.allclose(assigned["distance"].to_numpy(), dist, atol=1e-4)


def test_rows_without_a_vector_keep_a_null_cluster(spark):
    df = spark.createDataFrame(
        [("a", [0.0, 0.0]), ("b", None)], "sop_instance_uid string, features array<float>"
    )
    rows = {r["sop_instance_uid"]: r for r in KMeansModel(centres=np.zeros((1, 2))).assign(df).collect()}
    assert rows["a"]["cluster"] == 0 and rows["b"]["cluster"] is None


def test_sample_and_mllib_engines_agree_on_separated_blobs(spark):
    x, y = _blobs(n=400)
    df = _frame(spark, x).cache()
    sample = fit_kmeans(df, 4, engine="sample", fit_sample_rows=400, seed=1)
    mllib = fit_kmeans(df, 4, engine="mllib", seed=1)
    a = sample.assign(df).orderBy("sop_instance_uid").toPandas()["cluster"].to_numpy()
    b = mllib.assign(df).orderBy("sop_instance_uid").toPandas()["cluster"].to_numpy()
    assert _same_partition(a, b)
    assert sample.cost(df) == pytest.approx(mllib.cost(df), rel=0.01)


def test_cost_is_the_within_cluster_sum_of_squares(spark):
    x, _ = _blobs(n=100)
    model = fit_matrix(x, 4)
    _, dist = nearest_centres(x, model.centres, "euclidean")
    assert model.cost(_frame(spark, x)) == pytest.approx(float((dist**2).sum()), rel=1e-4)


def test_kmedoids_fit_from_spark_assigns_every_row(spark):
    x, y = _blobs(n=200, centers=3)
    df = _frame(spark, x)
    model = fit_kmedoids(df, 3, distance="cosine", fit_sample_rows=150, draws=2)
    clusters = model.assign(df).toPandas()["cluster"]
    assert clusters.notna().all() and set(clusters) <= {0, 1, 2}


def test_the_elbow_keeps_label_free_scores_and_a_runner_up():
    from radnet_spark.clustering.elbow import elbow_from_matrix

    rng = np.random.default_rng(4)
    centres = rng.normal(0, 10, (4, 3))
    x = np.concatenate([c + rng.normal(0, 0.3, (60, 3)) for c in centres])
    result = elbow_from_matrix(x, [2, 3, 4, 5, 6, 8], seed=1)
    assert len(result.silhouette) == len(result.calinski_harabasz) == len(result.ks)
    assert result.ks[int(np.nanargmax(result.silhouette))] == 4  # four blobs: the silhouette agrees
    assert result.runner_up in result.ks and result.runner_up != result.chosen_k
    saved = result.to_dict()
    assert saved["rule"] in ("kneedle", "chord fallback") and saved["runner_up"] == result.runner_up
