"""Fusion of per-view embeddings: dimensions, value ranges, missing views and persisted state."""

from __future__ import annotations

import numpy as np
import pytest

from radnet_spark.clustering.kmeans import KMeansModel, fit_matrix
from radnet_spark.config import ClusterConfig
from radnet_spark.fusion import (
    FusionModel,
    assign_per_combination,
    fit_fusion,
    fit_per_combination,
    join_views,
    scale_to_unit,
    softmax_negative,
)

DIMS = {"tags": 3, "image": 4, "diagnosis": 2}
N_INSTANCES = 24


def _embeddings(spark):
    rng = np.random.default_rng(0)
    tags, images, diagnoses = [], [], []
    for i in range(N_INSTANCES):
        uid, exam, split = f"uid{i:02d}", f"exam{i // 2:02d}", "train" if i < 16 else "test"
        tags.append((uid, exam, split, rng.normal(size=DIMS["tags"]).tolist()))
        if i % 3:  # every third instance has no usable image
            images.append((uid, exam, split, rng.normal(size=DIMS["image"]).tolist()))
    for e in range(N_INSTANCES // 2):
        if e % 4:  # every fourth exam has no diagnosis
            diagnoses.append((f"exam{e:02d}", "train", rng.normal(size=DIMS["diagnosis"]).tolist()))
    schema = "sop_instance_uid string, exam_id string, split string, embedding array<float>"
    return {
        "tags": spark.createDataFrame(tags, schema),
        "image": spark.createDataFrame(images, schema),
        "diagnosis": spark.createDataFrame(diagnoses, "exam_id string, split string, embedding array<float>"),
    }


def _view_models() -> dict[str, KMeansModel]:
    rng = np.random.default_rng(1)
    return {v: fit_matrix(rng.normal(size=(30, d)), 3, seed=0) for v, d in DIMS.items()}


def _fused(spark, method: str, missing_view: str = "zero_fill"):
    """The paper's unscaled fusion (``block_scaling=none``), whose layout and ranges these tests pin."""
    joined = join_views(_embeddings(spark))
    config = ClusterConfig(fusion=method, missing_view=missing_view, block_scaling="none")
    model = fit_fusion(joined, list(DIMS), config, view_models=_view_models())
    return model, model.transform(joined).toPandas().set_index("sop_instance_uid").sort_index()


def test_softmax_rows_sum_to_one_and_favour_near_centres():
    probs = softmax_negative(np.array([[0.0, 1.0, 5.0], [1000.0, 1001.0, 1002.0]]))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs[:, 0] > probs[:, 1]).all() and (probs[:, 1] > probs[:, 2]).all()


def test_scaling_clips_values_outside_the_fitted_bounds():
    scaled = scale_to_unit(np.array([[-1.0, 5.0], [3.0, 5.0]]), np.array([0.0, 5.0]), np.array([2.0, 5.0]))
    assert scaled.tolist() == [[0.0, 0.0], [1.0, 0.0]]


def test_unknown_method_is_rejected_with_a_sentence(spark):
    joined = join_views(_embeddings(spark))
    with pytest.raises(ValueError, match="Unknown fusion method"):
        fit_fusion(joined, ["tags"], ClusterConfig(fusion="average"))


def test_embeddings_zero_fill_keeps_every_row_with_documented_layout(spark):
    model, fused = _fused(spark, "embeddings")
    assert len(fused) == N_INSTANCES
    assert model.output_dim() == 3 + 4 + 2 + 3
    features = np.stack(fused["features"].to_numpy())
    assert features.shape == (N_INSTANCES, model.output_dim())
    indicators = features[:, -3:]
    no_image = fused.index.isin([f"uid{i:02d}" for i in range(N_INSTANCES) if i % 3 == 0])
    assert (indicators[no_image, 1] == 0).all() and (indicators[~no_image, 1] == 1).all()
    assert (features[no_image, 3:7] == 0).all()
    no_diagnosis = ~fused["views_present"].apply(lambda v: "diagnosis" in v).to_numpy()
    assert no_diagnosis.sum() == 6 and (features[no_diagnosis, 7:9] == 0).all()


def test_clusterdists_are_in_unit_range_with_one_column_per_centre(spark):
    model, fused = _fused(spark, "clusterdists")
    features = np.stack(fused["features"].to_numpy())
    assert features.shape[1] == 3 * 3 + 3
    assert features.min() >= 0.0 and features.max() <= 1.0
    # Bounds come from training rows, so each centre's column reaches 0 and 1 somewhere in train.
    train = features[(fused["split"] == "train").to_numpy(), :3]
    assert np.allclose(train.min(axis=0), 0.0) and np.allclose(train.max(axis=0), 1.0)


def test_clusterprobs_sum_to_one_per_present_view(spark):
    _, fused = _fused(spark, "clusterprobs")
    for features, present in zip(fused["features"], fused["views_present"], strict=True):
        for index, view in enumerate(["tags", "image", "diagnosis"]):
            block_sum = features[index * 3 : (index + 1) * 3].sum()
            assert block_sum == pytest.approx(1.0 if view in present else 0.0, abs=1e-5)


def test_available_views_keeps_rows_and_clusters_each_combination_apart(spark):
    joined = join_views(_embeddings(spark))
    model = fit_fusion(joined, list(DIMS), ClusterConfig(missing_view="available_views", block_scaling="none"))
    fused = model.transform(joined)
    rows = fused.toPandas()
    assert len(rows) == N_INSTANCES
    for features, present in zip(rows["features"], rows["views_present"], strict=True):
        assert len(features) == sum(DIMS[v] for v in present)
    models = fit_per_combination(
        fused, lambda d: fit_matrix(np.stack(d.toPandas()["features"]), 2), fit_split=None
    )
    assigned = assign_per_combination(fused, models).toPandas()
    assert len(assigned) == N_INSTANCES and assigned["cluster"].notna().all()
    by_combo = assigned.groupby(assigned["views_present"].apply(",".join))["cluster"].apply(set)
    all_clusters = [c for clusters in by_combo for c in clusters]
    assert len(all_clusters) == len(set(all_clusters))  # no cluster id shared between combinations


def test_state_round_trips_and_reproduces_the_same_features(spark, tmp_path):
    model, fused = _fused(spark, "clusterdists")
    loaded = FusionModel.load(model.save(tmp_path / "fusion"))
    assert loaded.bounds == model.bounds and loaded.dims == model.dims
    again = (
        loaded.transform(join_views(_embeddings(spark))).toPandas().set_index("sop_instance_uid").sort_index()
    )
    assert np.allclose(np.stack(again["features"]), np.stack(fused["features"]))


def test_unit_variance_scaling_gives_every_view_the_same_spread():
    from radnet_spark.fusion import FusionModel, block_scale

    rng = np.random.default_rng(0)
    wide = rng.normal(0, 50.0, (200, 40))  # large units, many dimensions: would decide every distance
    narrow = rng.normal(3.0, 0.01, (200, 2))
    model = FusionModel("embeddings", ["tags", "image"], {"tags": 40, "image": 2})
    model.scales = {"tags": block_scale(wide), "image": block_scale(narrow, weight=2.0)}
    spreads = {}
    for view, block in (("tags", wide), ("image", narrow)):
        scaled = model.block(view, block)
        spreads[view] = float(((scaled - scaled.mean(axis=0)) ** 2).sum(axis=1).mean())
        assert abs(float(scaled.mean())) < 1e-9
    assert spreads["tags"] == pytest.approx(1.0) and spreads["image"] == pytest.approx(4.0)
    # A missing view's zero block sits at that view's training mean.
    features, present = model.fuse({"tags": (wide[:1], np.array([True])), "image": (narrow[:0], np.array([False]))})
    assert present == [["tags"]] and np.allclose(features[0][40:42], 0.0)


def test_clusterprobs_temperature_keeps_a_view_of_small_distances_informative():
    from radnet_spark.fusion import typical_distance

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]) * 1e-3  # a collapsed view: tiny distances
    rows = centres[rng.integers(0, 3, 60)] + rng.normal(0, 1e-4, (60, 2))
    model = FusionModel("clusterprobs", ["diagnosis"], {"diagnosis": 2},
                        view_models={"diagnosis": KMeansModel(centres=centres, distance="euclidean")})
    raw = model.raw_block("diagnosis", rows)
    assert np.allclose(raw, 1 / 3, atol=1e-2)  # paper's raw softmax: uniform, says nothing
    distances = np.linalg.norm(rows[:, None, :] - centres[None], axis=2)
    model.temperatures = {"diagnosis": typical_distance(distances)}
    tempered = model.raw_block("diagnosis", rows)
    assert np.allclose(tempered.sum(axis=1), 1.0)
    assert (tempered.argmax(axis=1) == distances.argmin(axis=1)).all()
    assert tempered.max(axis=1).mean() > 0.9  # the nearest centre now clearly wins


def test_scaled_clusterprobs_fit_a_temperature_per_view_and_round_trip(spark, tmp_path):
    joined = join_views(_embeddings(spark))
    model = fit_fusion(joined, list(DIMS), ClusterConfig(fusion="clusterprobs", block_scaling="unit_variance"),
                       view_models=_view_models())
    assert set(model.temperatures) == set(DIMS) and all(t > 0 for t in model.temperatures.values())
    loaded = FusionModel.load(model.save(tmp_path / "fusion"))
    assert loaded.temperatures == model.temperatures
    first = model.transform(joined).toPandas().set_index("sop_instance_uid").sort_index()
    again = loaded.transform(joined).toPandas().set_index("sop_instance_uid").sort_index()
    assert np.allclose(np.stack(again["features"]), np.stack(first["features"]))
