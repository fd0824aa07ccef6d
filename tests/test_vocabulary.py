"""The diagnosis vocabulary: frequency threshold, training split only, stems as words, persistence."""

from __future__ import annotations

import json

import pytest

from radnet_spark.errors import PipelineError
from radnet_spark.text.stemming import clean_text, stem_tokens, tokenize
from radnet_spark.text.vocabulary import Vocabulary, fit_vocabulary, select_vocabulary

SCHEMA = "exam_id string, split string, stems array<string>"


def test_select_vocabulary_keeps_frequent_words_sorted_by_count_then_word():
    counts = [("rebr", 5), ("pluć", 9), ("src", 5), ("rijetk", 4), ("kost", 7)]

    vocabulary = select_vocabulary(counts, min_word_frequency=5)

    assert vocabulary.words == ("pluć", "kost", "rebr", "src")
    assert vocabulary.counts == (9, 7, 5, 5)
    assert "rijetk" not in vocabulary


def test_select_vocabulary_caps_size_keeping_most_frequent_words():
    vocabulary = select_vocabulary([("a", 3), ("b", 9), ("c", 5)], min_word_frequency=1, max_words=2)

    assert vocabulary.words == ("b", "c")


def test_vocabulary_survives_save_and_load(tmp_path):
    vocabulary = Vocabulary(("pluć", "čvor", "šav"), (7, 6, 5), 5)

    loaded = Vocabulary.load(vocabulary.save(tmp_path / "vocab" / "vocabulary.json"))

    assert loaded == vocabulary
    assert loaded.index == {"pluć": 0, "čvor": 1, "šav": 2}


def test_loading_a_file_that_is_not_a_vocabulary_fails_clearly(tmp_path):
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps({"words": ["a"]}), encoding="utf-8")

    with pytest.raises(PipelineError, match="not a radnet vocabulary"):
        Vocabulary.load(path)


def test_vocabulary_respects_min_frequency_and_counts_only_the_training_split(spark):
    rows = [
        ("e1", "train", ["pluć", "src", "pluć"]),
        ("e2", "train", ["pluć", "src"]),
        ("e3", "train", ["pluć", "rebr"]),
        # In validation/test "rebr" is frequent, but held-out words must not enter the vocabulary.
        ("e4", "validation", ["rebr", "rebr", "rebr"]),
        ("e5", "test", ["rebr", "src", "src"]),
    ]
    df = spark.createDataFrame(rows, SCHEMA)

    vocabulary = fit_vocabulary(df, min_word_frequency=2)

    assert vocabulary.words == ("pluć", "src")
    assert vocabulary.counts == (4, 2)
    assert vocabulary.min_word_frequency == 2


def test_inflected_forms_of_one_word_count_as_one_word(spark):
    texts = ["Prijelomi rebara.", "Stanje nakon prijeloma.", "Prijelomom zahvaćen zglob."]
    rows = [(f"e{i}", "train", stem_tokens(tokenize(clean_text(text)))) for i, text in enumerate(texts)]
    df = spark.createDataFrame(rows, SCHEMA)

    vocabulary = fit_vocabulary(df, min_word_frequency=3)

    # Each surface form occurs once; only because they share a stem does the word reach 3.
    assert vocabulary.words == ("prijelom",)
    assert vocabulary.counts == (3,)


def test_fitting_without_a_split_column_names_the_missing_column(spark):
    df = spark.createDataFrame([("e1", ["pluć"])], "exam_id string, stems array<string>")

    with pytest.raises(PipelineError, match="'split'"):
        fit_vocabulary(df, min_word_frequency=1)
