"""Diagnosis embeddings: BOW, TF-IDF, LSA, doc2vec (PV-DM, PV-DBOW), centring and the embedder facade."""

from __future__ import annotations

import random

import numpy as np
import pytest

from radnet_spark.config import load_config
from radnet_spark.errors import PipelineError
from radnet_spark.tables import write_table
from radnet_spark.text.bow import bow_transform, bow_vector, fit_idf, load_idf, save_idf
from radnet_spark.text.centring import mean_pairwise_cosine
from radnet_spark.text.doc2vec import (
    doc2vec_transform,
    infer_vector,
    load_doc2vec,
    sample_training_documents,
    train_doc2vec,
)
from radnet_spark.text.embedding import DiagnosisEmbedder, fit_diagnosis_embedder
from radnet_spark.text.lsa import fit_lsa
from radnet_spark.text.vocabulary import Vocabulary, fit_vocabulary
from radnet_spark.views import ViewInputs, get_view

SCHEMA = "exam_id string, split string, stems array<string>"
CHEST = ["pluć", "src", "medijastin", "rebr", "pleur"]
KNEE = ["kol", "menisk", "ligament", "patel", "tetiv"]


def planted_rows(n: int = 40, common: str | None = None) -> list[tuple[str, str, list[str]]]:
    """Short diagnoses drawn from one of two disjoint word groups (a planted topic each)."""
    rng = random.Random(7)
    rows = []
    for i in range(n):
        group = CHEST if i % 2 == 0 else KNEE
        stems = [rng.choice(group) for _ in range(6)] + ([common] if common else [])
        split = "train" if i < n * 3 // 4 else ("validation" if i % 2 else "test")
        rows.append((f"e{i:03d}", split, stems))
    return rows


def by_exam(df) -> dict[str, np.ndarray]:
    return {row["exam_id"]: np.asarray(row["embedding"], dtype=np.float32) for row in df.collect()}


@pytest.fixture(scope="module")
def diagnoses(spark):
    return spark.createDataFrame(planted_rows(common="uredn"), SCHEMA).cache()


def test_bow_vectors_are_vocabulary_long_and_count_words(spark):
    vocabulary = Vocabulary(("pluć", "src", "rebr"), (9, 5, 5), 1)
    df = spark.createDataFrame([("e1", "train", ["src", "pluć", "src", "nepoznat"])], SCHEMA)

    (row,) = bow_transform(df, vocabulary).collect()

    assert row["embedding"] == [1.0, 2.0, 0.0]
    assert row["exam_id"] == "e1"


def test_missing_stems_give_an_all_zero_bow_vector(spark):
    vocabulary = Vocabulary(("pluć", "src"), (9, 5), 1)
    df = spark.createDataFrame([("e1", "train", None)], SCHEMA)

    (row,) = bow_transform(df, vocabulary).collect()

    assert row["embedding"] == [0.0, 0.0]
    assert row["stems"] is None


def test_tfidf_downweights_a_word_that_every_diagnosis_contains(spark, diagnoses):
    vocabulary = fit_vocabulary(diagnoses, min_word_frequency=2)
    idf = fit_idf(diagnoses, vocabulary)
    doc = ["uredn", "menisk"]
    df = spark.createDataFrame([("x1", "test", doc)], SCHEMA)

    (row,) = bow_transform(df, vocabulary, idf=idf, normalize=True).collect()

    assert len(idf) == len(vocabulary)
    common, rare = vocabulary.index["uredn"], vocabulary.index["menisk"]
    assert idf[common] < idf[rare]
    assert row["embedding"][common] < row["embedding"][rare]
    np.testing.assert_array_equal(np.asarray(row["embedding"], dtype=np.float32),
                                  bow_vector(doc, vocabulary, idf=idf, normalize=True))


def test_idf_weights_survive_save_and_load_exactly(tmp_path):
    idf = np.array([0.0, 0.1 + 0.2, 1 / 3, 2.718281828459045])

    loaded = load_idf(save_idf(idf, tmp_path / "idf.json"), vocabulary_size=4)

    np.testing.assert_array_equal(loaded, idf)
    with pytest.raises(PipelineError, match="3 words"):
        load_idf(tmp_path / "idf.json", vocabulary_size=3)


def test_training_sample_is_bounded_distinct_training_only_and_reproducible(spark):
    rows = [("e1", "train", ["a", "b"]), ("e2", "train", ["a", "b"]), ("e3", "train", ["c"]),
            ("e4", "train", []), ("e5", "test", ["z"]), ("e6", "train", ["d", "e"])]
    df = spark.createDataFrame(rows, SCHEMA)

    everything = sample_training_documents(df, max_train_docs=10, seed=1)
    bounded = sample_training_documents(df, max_train_docs=2, seed=1)

    assert sorted(everything) == [["a", "b"], ["c"], ["d", "e"]]
    assert bounded == everything[:2]
    assert sample_training_documents(df, max_train_docs=10, seed=1) == everything


@pytest.mark.parametrize("dm", [0, 1], ids=["pv_dbow", "pv_dm"])
def test_doc2vec_inference_is_identical_across_runs_partitionings_and_the_driver(diagnoses, tmp_path, dm):
    documents = [stems for _, split, stems in planted_rows() if split == "train"]
    model = train_doc2vec(documents, dm=dm, vector_size=8, epochs=5, min_count=2, seed=3)
    path = str(tmp_path / "d2v.model")
    model.save(path)

    one = by_exam(doc2vec_transform(diagnoses.repartition(1), path, seed=5))
    again = by_exam(doc2vec_transform(diagnoses.repartition(3), path, seed=5))

    assert len(one) == diagnoses.count()
    assert all(v.shape == (8,) and np.all(np.isfinite(v)) for v in one.values())
    for exam_id, vector in one.items():
        np.testing.assert_array_equal(vector, again[exam_id])
    first = diagnoses.where("exam_id = 'e000'").first()["stems"]
    np.testing.assert_array_equal(one["e000"], infer_vector(model, first, seed=5))


def test_doc2vec_separates_the_two_planted_subjects():
    documents = [stems for _, _, stems in planted_rows(200)]
    model = train_doc2vec(documents, vector_size=16, epochs=20, min_count=1, seed=1)

    chest_a, chest_b = (infer_vector(model, doc) for doc in (CHEST[:4], CHEST[1:]))
    knee = infer_vector(model, KNEE[:4])

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cosine(chest_a, chest_b) > cosine(chest_a, knee)


def test_doc2vec_vocabulary_is_exactly_the_given_words():
    documents = [["pluć", "src", "rijetk"], ["pluć", "src"]]

    model = train_doc2vec(documents, vector_size=4, epochs=1, keep_words={"pluć", "rijetk"})

    assert set(model.wv.index_to_key) == {"pluć", "rijetk"}


@pytest.mark.parametrize("kind", ["bow", "tfidf", "lsa", "pv_dm", "pv_dbow"])
def test_embedder_gives_identical_vectors_after_save_and_load_on_any_partitioning(diagnoses, tmp_path, kind):
    embedder = fit_diagnosis_embedder(diagnoses, kind=kind, min_word_frequency=2, vector_size=6, epochs=3,
                                      lsa_components=4)

    before = by_exam(embedder.transform(diagnoses.repartition(1)))
    loaded = DiagnosisEmbedder.load(embedder.save(tmp_path / kind))
    table = loaded.transform(diagnoses.repartition(3))
    after = by_exam(table)

    assert table.columns == ["exam_id", "split", "embedding"]
    assert loaded.kind == kind and loaded.dimension == embedder.dimension
    assert set(after) == set(before)
    for exam_id, vector in before.items():
        assert vector.shape == (embedder.dimension,)
        np.testing.assert_array_equal(after[exam_id], vector)
    first = diagnoses.where("exam_id = 'e001'").first()["stems"]
    np.testing.assert_array_equal(loaded.embed(first), before["e001"])


def test_unknown_embedder_kind_is_rejected_with_the_choices(diagnoses):
    with pytest.raises(PipelineError, match="bow, tfidf, lsa, pv_dm, pv_dbow"):
        fit_diagnosis_embedder(diagnoses, kind="bert")


def test_transform_without_split_column_explains_where_it_comes_from(diagnoses):
    embedder = fit_diagnosis_embedder(diagnoses, kind="bow", min_word_frequency=2)

    with pytest.raises(PipelineError, match="split_column"):
        embedder.transform(diagnoses.drop("split"))


def test_every_diagnosis_is_inferred_by_default_and_trained_vectors_are_kept_on_request(diagnoses):
    settings = {"kind": "pv_dbow", "min_word_frequency": 2, "vector_size": 8, "epochs": 5, "centre": False,
                "unit_length": False}
    embedder = fit_diagnosis_embedder(diagnoses, training_vectors="trained", **settings)
    reinferred = fit_diagnosis_embedder(diagnoses, **settings)

    vectors = by_exam(embedder.transform(diagnoses))
    inferred = by_exam(reinferred.transform(diagnoses))
    documents = sample_training_documents(diagnoses)
    reference = train_doc2vec(documents, vector_size=8, epochs=5, seed=42, keep_words=embedder.vocabulary.words)
    trained = {tuple(words): reference.dv[position] for position, words in enumerate(documents)}
    model = load_doc2vec(embedder.doc2vec_path)
    rows = planted_rows(common="uredn")
    assert {split for _, split, _ in rows} == {"train", "validation", "test"}
    for exam_id, split, stems in rows:
        expected = infer_vector(model, stems, seed=42)
        if split == "train":
            np.testing.assert_array_equal(vectors[exam_id], trained[tuple(stems)])
            assert not np.allclose(vectors[exam_id], expected, atol=1e-3)
        else:
            assert tuple(stems) not in trained
            np.testing.assert_array_equal(vectors[exam_id], expected)
        np.testing.assert_array_equal(inferred[exam_id], expected)
    assert len(model.dv) == 0  # workers load the model without the trained vectors


def test_centred_doc2vec_vectors_do_not_collapse_and_unit_length_is_optional(spark):
    # Every report shares "uredn": with enough epochs the raw vectors line up along one direction.
    diagnoses = spark.createDataFrame(planted_rows(120, common="uredn"), SCHEMA)
    settings = {"kind": "pv_dbow", "min_word_frequency": 2, "vector_size": 16, "epochs": 100}
    raw = fit_diagnosis_embedder(diagnoses, centre=False, **settings)
    centred = fit_diagnosis_embedder(diagnoses, **settings)
    finished = fit_diagnosis_embedder(diagnoses, unit_length=True, **settings)

    def vectors_of(embedder: DiagnosisEmbedder) -> np.ndarray:
        return np.vstack(list(by_exam(embedder.transform(diagnoses)).values()))

    assert mean_pairwise_cosine(vectors_of(raw)) > 0.5  # the collapse this guards against
    assert abs(mean_pairwise_cosine(vectors_of(centred))) < 0.15
    assert np.linalg.norm(vectors_of(centred), axis=1).std() > 1e-3  # lengths kept by default
    vectors = vectors_of(finished)
    assert abs(mean_pairwise_cosine(vectors)) < 0.15
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert finished.mean is not None and centred.mean is not None and raw.mean is None


def test_lsa_vectors_equal_scikit_learns_tfidf_and_svd_and_components_are_bounded(caplog):
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    documents = [stems for _, _, stems in planted_rows(common="uredn")]
    words = tuple(sorted({w for doc in documents for w in doc}))
    vocabulary = Vocabulary(words, tuple(1 for _ in words), 1)

    lsa = fit_lsa(documents, vocabulary, components=3, seed=1)
    bounded = fit_lsa(documents, vocabulary, components=50, seed=1)

    tfidf = TfidfVectorizer(analyzer=list, vocabulary={w: i for i, w in enumerate(words)}).fit(documents)
    matrix = tfidf.transform(documents)
    svd = TruncatedSVD(3, algorithm="randomized", n_iter=7, random_state=1).fit(matrix)
    np.testing.assert_allclose(lsa.vectors(documents), svd.transform(matrix), atol=1e-10)
    assert bounded.dimension == len(words) - 1
    assert "50 components requested" in caplog.text
    np.testing.assert_array_equal(lsa.vector(["nepoznat"]), np.zeros(3))


def test_lsa_diagnosis_view_fits_saves_loads_and_embeds_every_exam(spark, tmp_path, diagnoses):
    warehouse = str(tmp_path / "warehouse")
    write_table(diagnoses.drop("split"), warehouse, "diagnoses")
    config = load_config(None, ["text.embedder=lsa", "text.lsa_components=3", "text.min_word_frequency=2",
                                 "text.unit_length=true"])
    inputs = ViewInputs(spark, warehouse, config)
    view = get_view("diagnosis")
    folder = str(tmp_path / "diagnosis")

    view.fit(inputs, folder).save()
    loaded = view.load(folder)
    vectors = by_exam(loaded.transform(inputs.table("diagnoses"), config))

    assert loaded.embedding_size == 3 and loaded.info["kind"] == "lsa"
    assert len(vectors) == diagnoses.count()
    np.testing.assert_allclose(np.linalg.norm(np.vstack(list(vectors.values())), axis=1), 1.0, rtol=1e-5)
    embedder = DiagnosisEmbedder.load(folder)
    stems = {exam_id: s for exam_id, _, s in planted_rows(common="uredn")}
    np.testing.assert_array_equal(embedder.embed(stems["e001"]), vectors["e001"])
    chest, knee = vectors["e000"], vectors["e001"]  # even exams are chest reports, odd ones knee reports
    assert float(chest @ vectors["e002"]) > float(chest @ knee)
