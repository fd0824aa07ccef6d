"""Diagnosis embeddings: BOW, TF-IDF, doc2vec (PV-DM, PV-DBOW), LDA topics and the embedder facade."""

from __future__ import annotations

import random

import numpy as np
import pytest

from radnet_spark.errors import PipelineError
from radnet_spark.text.bow import bow_transform, bow_vector, fit_idf, load_idf, save_idf
from radnet_spark.text.doc2vec import (
    doc2vec_transform,
    infer_vector,
    sample_training_documents,
    train_doc2vec,
)
from radnet_spark.text.embedding import DiagnosisEmbedder, fit_diagnosis_embedder
from radnet_spark.text.vocabulary import Vocabulary, fit_vocabulary

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


@pytest.mark.parametrize("kind", ["bow", "tfidf", "pv_dm", "pv_dbow"])
def test_embedder_gives_identical_vectors_after_save_and_load(diagnoses, tmp_path, kind):
    embedder = fit_diagnosis_embedder(diagnoses, kind=kind, min_word_frequency=2, vector_size=6, epochs=3)

    before = by_exam(embedder.transform(diagnoses))
    loaded = DiagnosisEmbedder.load(embedder.save(tmp_path / kind))
    table = loaded.transform(diagnoses)
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
    with pytest.raises(PipelineError, match="bow, tfidf, pv_dm, pv_dbow"):
        fit_diagnosis_embedder(diagnoses, kind="bert")


def test_transform_without_split_column_explains_where_it_comes_from(diagnoses):
    embedder = fit_diagnosis_embedder(diagnoses, kind="bow", min_word_frequency=2)

    with pytest.raises(PipelineError, match="split_column"):
        embedder.transform(diagnoses.drop("split"))
