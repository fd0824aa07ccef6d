"""Diagnosis processing: per-record scrub/clean/stem/reject, and the Spark table builder."""

from __future__ import annotations

import pandas as pd
import pytest

from radnet_spark.dicom.deid import salted_hash
from radnet_spark.errors import InputPathError, UserError
from radnet_spark.text.diagnoses import process_diagnosis
from radnet_spark.text.diagnoses_table import diagnoses_table, read_diagnoses

SALT = "test-salt-not-secret"


@pytest.mark.parametrize("raw", [None, "", "   \n\t "])
def test_missing_or_blank_diagnosis_is_rejected_as_empty(raw):
    result = process_diagnosis(raw, language="croatian", min_chars=10)
    assert result.reject_reason == "empty_diagnosis"
    assert result.stems == []


def test_diagnosis_of_only_punctuation_is_rejected_as_empty():
    assert process_diagnosis(" - / . ", language="croatian", min_chars=10).reject_reason == "empty_diagnosis"


def test_short_diagnosis_is_rejected_and_the_detail_does_not_quote_it():
    result = process_diagnosis("b.o. isto", language="croatian", min_chars=10)
    assert result.reject_reason == "short_diagnosis"
    assert "isto" not in result.reject_detail
    assert "10" in result.reject_detail


def test_min_chars_counts_the_cleaned_text():
    # "uredan nalaz" is 12 characters once cleaned; the punctuation does not count.
    assert process_diagnosis("uredan  nalaz!!!", language="croatian", min_chars=12).reject_reason is None
    assert process_diagnosis("uredan  nalaz!!!", language="croatian", min_chars=13).reject_reason == (
        "short_diagnosis"
    )


def test_usable_diagnosis_is_cleaned_and_stemmed():
    result = process_diagnosis("Upala PLUĆA, obostrano u plućima.", language="croatian", min_chars=10)
    assert result.reject_reason is None
    assert result.clean == "upala pluća obostrano u plućima"
    assert result.stems[1] == result.stems[4] == "pluć"
    assert len(result.stems) == 5


def test_dates_and_id_numbers_are_scrubbed_before_cleaning_and_stemming():
    raw = "Kontrola 12.03.2023. pacijenta 0123456789 (MBO 123456789): upala pluća obostrano."
    result = process_diagnosis(raw, language="croatian", min_chars=10)
    assert result.reject_reason is None
    for fragment in ("12", "03", "2023", "0123456789", "123456789"):
        assert fragment not in result.clean
        assert all(fragment not in stem for stem in result.stems)
    assert "[DATE]" in result.scrubbed and "0123456789" not in result.scrubbed
    # The placeholders are not words of the diagnosis.
    assert "date" not in result.clean.split() and "id" not in result.clean.split()


def test_english_language_uses_the_snowball_stemmer():
    result = process_diagnosis("Fractures of both ribs.", language="english", min_chars=10)
    assert result.stems == ["fractur", "of", "both", "rib"]


# --- Spark ----------------------------------------------------------------------------------------


def _exports(spark):
    rows = [
        ("A1", "Upala pluća obostrano, bez izljeva."),
        ("A2", ""),
        ("A3", "b.o."),
        ("A4", "Uredan nalaz."),
        ("A4", "Uredan nalaz kralježnice bez znakova prijeloma."),
        ("A5", "Nalaz od 05.01.2024.: prijelom radijusa, pacijent 12345678."),
        (None, "Nalaz bez pripadnog pregleda, prijelom."),
    ]
    return spark.createDataFrame(pd.DataFrame(rows, columns=["AccessionNumber", "diagnosis"]))


def test_diagnoses_table_keeps_usable_diagnoses_keyed_by_hashed_exam_id(spark):
    diagnoses, _ = diagnoses_table(_exports(spark), source_path="/data/diag.csv", salt=SALT)
    rows = {row["exam_id"]: row for row in diagnoses.collect()}
    assert set(rows) == {salted_hash(key, SALT) for key in ("A1", "A4", "A5")}
    assert diagnoses.columns == ["exam_id", "diagnosis_raw", "diagnosis_clean", "stems"]
    a1 = rows[salted_hash("A1", SALT)]
    assert a1["diagnosis_clean"] == "upala pluća obostrano bez izljeva"
    assert "pluć" in a1["stems"]
    a5 = rows[salted_hash("A5", SALT)]
    assert "05.01.2024" not in a5["diagnosis_raw"] and "12345678" not in a5["diagnosis_raw"]
    assert "12345678" not in a5["diagnosis_clean"]


def test_duplicate_exam_keeps_the_longest_diagnosis_and_rejects_the_other(spark):
    diagnoses, rejects = diagnoses_table(_exports(spark), source_path="/data/diag.csv", salt=SALT)
    kept = diagnoses.where(diagnoses.exam_id == salted_hash("A4", SALT)).collect()
    assert len(kept) == 1 and "kralježnice" in kept[0]["diagnosis_clean"]
    duplicates = rejects.where(rejects.reason == "duplicate_diagnosis").collect()
    assert len(duplicates) == 1 and salted_hash("A4", SALT) in duplicates[0]["detail"]


def test_rejects_name_the_source_and_never_the_text_or_accession_number(spark):
    _, rejects = diagnoses_table(_exports(spark), source_path="/data/diag.csv", salt=SALT)
    rows = rejects.collect()
    assert rejects.columns == ["path", "stage", "reason", "detail"]
    assert sorted(row["reason"] for row in rows) == [
        "duplicate_diagnosis",
        "empty_diagnosis",
        "missing_exam_key",
        "short_diagnosis",
    ]
    assert {row["path"] for row in rows} == {"/data/diag.csv"}
    assert {row["stage"] for row in rows} == {"diagnosis"}
    for row in rows:
        for secret in ("A2", "A3", "A4", "b.o", "Uredan"):
            assert secret not in row["detail"]
    short = next(row for row in rows if row["reason"] == "short_diagnosis")
    assert salted_hash("A3", SALT) in short["detail"]


def test_read_diagnoses_reads_multiline_quoted_utf8_csv(spark, tmp_path):
    path = tmp_path / "diagnoses.csv"
    path.write_text(
        'AccessionNumber,diagnosis,other\n'
        'A1,"Upala pluća,\nobostrano ""bazalno"".",x\n'
        "A2,Uredan nalaz šake,y\n",
        encoding="utf-8",
    )
    df = read_diagnoses(spark, str(path), "AccessionNumber", "diagnosis")
    rows = {row["AccessionNumber"]: row["diagnosis"] for row in df.collect()}
    assert df.columns == ["AccessionNumber", "diagnosis"]
    assert rows == {"A1": 'Upala pluća,\nobostrano "bazalno".', "A2": "Uredan nalaz šake"}


def test_read_diagnoses_reads_parquet_and_casts_the_key_to_string(spark, tmp_path):
    path = str(tmp_path / "diagnoses.parquet")
    spark.createDataFrame(pd.DataFrame({"acc": [17], "text": ["Uredan nalaz"]})).write.parquet(path)
    rows = read_diagnoses(spark, path, "acc", "text").collect()
    assert rows[0]["acc"] == "17" and rows[0]["text"] == "Uredan nalaz"


def test_read_diagnoses_names_a_missing_column(spark, tmp_path):
    path = tmp_path / "diagnoses.csv"
    path.write_text("AccessionNumber,text\nA1,Uredan nalaz\n", encoding="utf-8")
    with pytest.raises(UserError, match="no column 'diagnosis'"):
        read_diagnoses(spark, str(path), "AccessionNumber", "diagnosis")


def test_read_diagnoses_rejects_a_missing_file_and_an_unknown_extension(spark, tmp_path):
    with pytest.raises(InputPathError, match="does not exist"):
        read_diagnoses(spark, str(tmp_path / "nope.csv"), "AccessionNumber", "diagnosis")
    odd = tmp_path / "diagnoses.xlsx"
    odd.write_bytes(b"x")
    with pytest.raises(InputPathError, match="CSV"):
        read_diagnoses(spark, str(odd), "AccessionNumber", "diagnosis")
