"""Fitting, saving, loading and applying the tag and image embedders (no Spark)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synthetic_shapes import _one_torch_thread, shape_images  # noqa: F401 - autouse fixture

from radnet_spark.embedders import ImageEmbedder, TagEmbedder, fit_pca, load_embedder
from radnet_spark.errors import PipelineError

SPLITS = np.array(["train"] * 8 + ["validation", "test"])




@pytest.fixture(scope="module")
def tag_table(tmp_path_factory):
    rng = np.random.default_rng(0)
    count, width = 400, 24
    features = np.clip(rng.uniform(0, 1, (count, 3)) @ (rng.uniform(0, 1, (3, width)) / 3), 0, 1)
    folder = tmp_path_factory.mktemp("tag_features")
    table = pa.table({
        "sop_instance_uid": [f"uid{i}" for i in range(count)],
        "exam_id": [f"exam{i // 2}" for i in range(count)],
        "split": SPLITS[np.arange(count) % 10],
        "features": pa.array(features.astype(np.float32).tolist(), pa.list_(pa.float32())),
    })
    pq.write_table(table, folder / "part-0.parquet", row_group_size=64)
    return str(folder), features.astype(np.float32)


@pytest.fixture(scope="module")
def image_table(tmp_path_factory):
    images, labels = shape_images(400)
    folder = tmp_path_factory.mktemp("images")
    table = pa.table({
        "sop_instance_uid": [f"uid{i}" for i in range(len(images))],
        "exam_id": [f"exam{i}" for i in range(len(images))],
        "split": SPLITS[np.arange(len(images)) % 10],
        "image": [image.tobytes() for image in images],
        "image_size": [32] * len(images),
    })
    pq.write_table(table, folder / "part-0.parquet", row_group_size=50)
    return str(folder), images, labels


def small_tag_autoencoder(**overrides) -> TagEmbedder:
    settings = dict(bottleneck=4, hidden=(16, 8), max_epochs=8, patience=3, learning_rate=1e-2, seed=1)
    settings.update(overrides)
    return TagEmbedder("autoencoder", **settings)


def small_cae(**overrides) -> ImageEmbedder:
    settings = dict(
        filters=(8, 16, 16), bottleneck_channels=8, image_size=32, max_epochs=12, patience=3,
        learning_rate=3e-3, seed=1, pca_components=None,
    )
    settings.update(overrides)
    return ImageEmbedder(**settings)


def held_out_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray,
                      test_labels: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(classifier.fit(train, train_labels).score(test, test_labels))


def test_tag_autoencoder_embeddings_have_the_bottleneck_size_and_loss_falls(tag_table):
    path, features = tag_table
    embedder = small_tag_autoencoder().fit(path, progress=False)
    assert embedder.embed_numpy(features[:10]).shape == (10, 4)
    history = embedder.metrics["history"]
    assert min(epoch["val_loss"] for epoch in history) < history[0]["val_loss"]
    assert embedder.metrics["train_rows"] == 320 and embedder.metrics["validation_rows"] == 40


def test_tag_autoencoder_streams_only_the_bounded_training_sample(tag_table):
    path, _ = tag_table
    embedder = small_tag_autoencoder(max_epochs=1, train_sample_rows=50).fit(path, progress=False)
    assert embedder.metrics["train_rows"] == 50


def test_tag_pca_has_the_requested_components(tag_table):
    path, features = tag_table
    embedder = TagEmbedder("pca", pca_components=5).fit(path)
    assert embedder.embed_numpy(features[:3]).shape == (3, 5)
    assert embedder.metrics["explained_variance"] > 0.9  # the features have rank 3


def test_pca_components_are_clipped_to_the_data_with_a_warning(caplog):
    sample = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        projection = fit_pca(sample, 50, randomized=True, seed=0, what="tags")
    assert projection.n_components == 4
    assert "50 components requested" in caplog.text


def test_tag_pca_matches_scikit_learn(tag_table):
    from sklearn.decomposition import PCA

    path, features = tag_table
    embedder = TagEmbedder("pca", pca_components=3).fit(path, train_filter=None)
    expected = PCA(n_components=3, svd_solver="full").fit(features).transform(features[:5])
    np.testing.assert_allclose(np.abs(embedder.embed_numpy(features[:5])), np.abs(expected), atol=1e-4)


@pytest.mark.parametrize("kind", ["autoencoder", "pca"])
def test_saved_tag_embedder_loads_and_embeds_identically(tag_table, tmp_path, kind):
    path, features = tag_table
    if kind == "autoencoder":
        embedder = small_tag_autoencoder(max_epochs=2)
    else:
        embedder = TagEmbedder("pca", pca_components=4)
    embedder.fit(path, progress=False)
    embedder.save(str(tmp_path / "tags"))
    loaded = load_embedder(str(tmp_path / "tags"), "tags")
    assert isinstance(loaded, TagEmbedder) and loaded.kind == kind
    np.testing.assert_array_equal(loaded.embed_numpy(features), embedder.embed_numpy(features))
    config = json.loads((tmp_path / "tags" / "embedder.json").read_text())
    assert config["embedding_size"] == 4
    assert json.loads((tmp_path / "tags" / "metrics.json").read_text()) == embedder.metrics


def test_a_tags_table_without_a_split_column_needs_explicit_filters(tmp_path):
    table = pa.table({"features": pa.array([[0.5, 0.5]] * 4, pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "part.parquet")
    with pytest.raises(PipelineError, match="no column 'split'"):
        small_tag_autoencoder().fit(str(tmp_path), progress=False)


def test_loading_an_image_embedder_as_tags_is_refused(image_table, tmp_path):
    path, _, _ = image_table
    small_cae(max_epochs=1).fit(path, progress=False).save(str(tmp_path / "image"))
    with pytest.raises(PipelineError, match="holds the 'image' embedder, but the 'tags' one"):
        TagEmbedder.load(str(tmp_path / "image"))


def test_loading_from_an_empty_directory_says_what_is_missing(tmp_path):
    with pytest.raises(PipelineError, match="holds no fitted embedder"):
        ImageEmbedder.load(str(tmp_path))


def test_cae_embeddings_separate_discs_from_bars(image_table):
    path, images, labels = image_table
    embedder = small_cae().fit(path, progress=False)
    history = embedder.metrics["history"]
    assert min(epoch["val_loss"] for epoch in history) < history[0]["val_loss"]
    codes = embedder.embed_numpy(images)
    assert codes.shape == (400, 4 * 4 * 8)
    train, test = SPLITS[np.arange(400) % 10] == "train", SPLITS[np.arange(400) % 10] != "train"
    accuracy = held_out_accuracy(codes[train], labels[train], codes[test], labels[test])
    assert accuracy > 0.75


def test_image_pca_reduces_the_code_and_survives_save_and_load(image_table, tmp_path):
    path, images, _ = image_table
    embedder = small_cae(max_epochs=2, pca_components=6).fit(path, progress=False)
    embeddings = embedder.embed_numpy(images[:20])
    assert embeddings.shape == (20, 6)
    embedder.save(str(tmp_path / "image"))
    loaded = ImageEmbedder.load(str(tmp_path / "image"))
    np.testing.assert_array_equal(loaded.embed_numpy(images[:20]), embeddings)
    np.testing.assert_array_equal(loaded.embed_bytes([image.tobytes() for image in images[:20]]), embeddings)


def test_image_pca_asking_for_more_components_than_code_values_is_clipped(image_table):
    path, images, _ = image_table
    embedder = small_cae(max_epochs=1, pca_components=500).fit(path, progress=False)
    assert embedder.embed_numpy(images[:2]).shape == (2, 128)


def test_uint8_and_unit_float_images_embed_alike(image_table):
    path, images, _ = image_table
    embedder = small_cae(max_epochs=1).fit(path, progress=False)
    as_float = (images[:4].astype(np.float32) / 255)[:, None]
    np.testing.assert_allclose(embedder.embed_numpy(images[:4]), embedder.embed_numpy(as_float), atol=1e-5)


def test_images_of_another_size_are_refused(image_table):
    path, _, _ = image_table
    embedder = small_cae(max_epochs=1).fit(path, progress=False)
    with pytest.raises(PipelineError, match="32×32"):
        embedder.embed_numpy(np.zeros((1, 16, 16), dtype=np.uint8))


@pytest.mark.parametrize("view", ["tags", "image"])
def test_a_row_embeds_to_the_same_bits_whatever_batch_it_arrives_in(view, tag_table, image_table):
    # The partitioning of the data decides the batches; a batch of one took another BLAS/oneDNN
    # kernel and the embeddings of two identical runs differed in the 8th digit.
    if view == "tags":
        path, rows = tag_table
        embedder = small_tag_autoencoder(max_epochs=1).fit(path, progress=False)
    else:
        path, rows, _ = image_table
        embedder = small_cae(max_epochs=1, pca_components=6).fit(path, progress=False)
    together = embedder.embed_numpy(rows[:70])
    one_by_one = np.concatenate([embedder.embed_numpy(rows[i:i + 1]) for i in range(70)])
    in_odd_batches = np.concatenate([embedder.embed_numpy(rows[i:i + 7]) for i in range(0, 70, 7)])
    np.testing.assert_array_equal(one_by_one, together)
    np.testing.assert_array_equal(in_odd_batches, together)


def test_pca_projects_a_row_the_same_alone_and_among_many():
    rng = np.random.default_rng(3)
    projection = fit_pca(rng.standard_normal((200, 512)).astype(np.float32), 10, randomized=False, seed=0,
                         what="test")
    rows = rng.standard_normal((90, 512)).astype(np.float32)
    together = projection.transform(rows)
    np.testing.assert_array_equal(np.concatenate([projection.transform(rows[i:i + 1]) for i in range(90)]),
                                  together)
