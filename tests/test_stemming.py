"""Cleaning, tokenizing and stemming diagnosis text (pure functions, no Spark)."""

from __future__ import annotations

import pytest

from radnet_spark.text.stemming import available_languages, clean_text, get_stemmer, stem_tokens, tokenize


def test_clean_text_strips_punctuation_lowercases_and_collapses_whitespace():
    assert clean_text("  Upala PLUĆA,\tlijevo (bazalno);  st.p. op_zahvata!\n") == (
        "upala pluća lijevo bazalno st p op zahvata"
    )


def test_clean_text_keeps_croatian_letters():
    assert clean_text("ČĆŽŠĐ čćžšđ") == "čćžšđ čćžšđ"


def test_clean_text_composes_combining_accents_into_one_letter():
    decomposed = "plu" + "c\u0301" + "a"  # c + combining acute accent
    assert clean_text(decomposed) == "pluća"


def test_clean_text_keeps_digits_of_measurements():
    assert clean_text("Lezija 5,5 mm.") == "lezija 5 5 mm"


def test_tokenize_splits_clean_text_into_words():
    assert tokenize("upala pluća lijevo") == ["upala", "pluća", "lijevo"]
    assert tokenize("") == []


def test_croatian_stemmer_gives_one_stem_to_inflected_forms_of_a_word():
    stems = stem_tokens(["pluća", "plućima", "koljeno", "koljena", "koljenu", "frakture", "fraktura"])
    assert stems == ["pluć", "pluć", "kol", "kol", "kol", "fraktur", "fraktur"]


def test_croatian_stemmer_stems_differently_when_diacritics_are_missing():
    # Documented behaviour of the Ljubešić–Pandžić rules: "plucima" is another word to them.
    assert stem_tokens(["pluća", "plucima"]) == ["pluć", "pluk"]


def test_croatian_is_the_default_language():
    assert stem_tokens(["kralježnice"]) == stem_tokens(["kralježnica"], "croatian") == ["kralježnic"]


def test_snowball_english_stemmer_is_available_by_name():
    assert stem_tokens(["fractures", "lungs", "running"], "English") == ["fractur", "lung", "run"]


def test_snowball_german_stemmer_is_available_by_name():
    assert stem_tokens(["frakturen", "fraktur"], "german") == ["fraktur", "fraktur"]


def test_language_none_keeps_words_unchanged():
    assert stem_tokens(["plućima"], "none") == ["plućima"]


def test_unknown_language_raises_an_error_listing_the_choices():
    with pytest.raises(ValueError, match="klingon") as error:
        get_stemmer("klingon")
    assert "croatian" in str(error.value) and "english" in str(error.value)


def test_stemmers_are_built_once_per_language():
    assert get_stemmer("english") is get_stemmer("english")
    assert "croatian" in available_languages() and "english" in available_languages()
