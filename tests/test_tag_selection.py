"""Tag column selection: profiling in Spark and the pure keep/drop decisions."""

from __future__ import annotations

import pytest

from radnet_spark.errors import UserError
from radnet_spark.tags.selection import (
    ColumnProfile,
    TagProfile,
    TagSelection,
    profile_tags,
    select_tags,
)

ROWS = 1000


def col(name, filled=ROWS, distinct=5, numeric=0, spaced=0, mean_length=4.0):
    return ColumnProfile(name, filled, distinct, numeric, spaced, mean_length)


PROFILE = TagProfile(
    rows=ROWS,
    excluded=("sop_instance_uid", "exam_id"),
    columns=(
        col("SOPInstanceUID", distinct=ROWS),
        col("ReferencedSOPInstanceUID_0", filled=500, distinct=400),
        col("PatientID", distinct=30),
        col("RarelyFilled", filled=150, distinct=10),
        col("Constant", distinct=1),
        col("StudyDescription", distinct=12, spaced=800, mean_length=20.0),
        col("FreeNote", distinct=900, spaced=900, mean_length=45.0),
        col("OpaqueCode", distinct=990, mean_length=12.0),
        col("ContentNumber", distinct=995, numeric=ROWS),
        col("SliceLocation", distinct=990, numeric=ROWS),
        col("SeriesNumber", distinct=40, numeric=ROWS),
        col("KVP", filled=800, distinct=12, numeric=790),
        col("Modality", distinct=5),
        col("ManufacturerModelName", distinct=8, spaced=700, mean_length=18.0),
        col("ScanOptions", distinct=80),
    ),
)


def test_each_drop_reason_is_applied_to_the_right_column():
    selection = select_tags(PROFILE)
    reasons = {d.column: d.reason for d in selection.decisions if not d.kept}
    assert reasons == {
        "sop_instance_uid": "excluded",
        "exam_id": "excluded",
        "SOPInstanceUID": "uid",
        "ReferencedSOPInstanceUID_0": "uid",
        "PatientID": "identifier",
        "RarelyFilled": "low_fill",
        "Constant": "few_distinct",
        "StudyDescription": "natural_language",
        "FreeNote": "natural_language",
        "OpaqueCode": "identifier",
        "ContentNumber": "identifier",
        "ScanOptions": "too_many_categories",
    }


def test_kept_columns_are_classified_continuous_or_categorical():
    selection = select_tags(PROFILE)
    assert selection.continuous == ["SliceLocation", "SeriesNumber", "KVP"]
    assert selection.categorical == ["Modality", "ManufacturerModelName"]
    assert selection.bucketed == []


def test_bucket_mode_keeps_large_categoricals_as_bucketed():
    selection = select_tags(PROFILE, categorical_overflow="bucket")
    decision = selection.decision("ScanOptions")
    assert decision.kept and decision.kind == "categorical" and decision.bucketed
    assert selection.bucketed == ["ScanOptions"]
    # Identifiers and free text stay dropped even when buckets would hold them.
    assert selection.decision("OpaqueCode").reason == "identifier"
    assert selection.decision("FreeNote").reason == "natural_language"


def test_thresholds_are_parameters():
    selection = select_tags(PROFILE, min_fill_rate=0.1, max_categories=100)
    assert "RarelyFilled" in selection.categorical
    assert "ScanOptions" in selection.categorical


def test_unknown_overflow_mode_is_a_user_error():
    with pytest.raises(UserError):
        select_tags(PROFILE, categorical_overflow="merge")


def test_markdown_lists_every_column_with_its_reason():
    text = select_tags(PROFILE).to_markdown()
    assert "5 kept (3 continuous, 2 categorical)" in text
    for decision in select_tags(PROFILE).decisions:
        assert f"| {decision.column} |" in text
    assert "| RarelyFilled | dropped | low_fill |" in text


def test_selection_json_round_trip(tmp_path):
    selection = select_tags(PROFILE, categorical_overflow="bucket")
    selection.save(tmp_path / "selection.json")
    loaded = TagSelection.load(tmp_path / "selection.json")
    assert loaded.decisions == selection.decisions
    assert loaded.params == selection.params
    assert loaded.bucketed == ["ScanOptions"]


def test_profile_measures_fill_distinct_numeric_and_text(spark):
    rows = []
    for i in range(40):
        rows.append((
            f"sop{i}", f"exam{i % 4}",
            ["CT", "MR"][i % 2],                       # Modality: full, 2 distinct
            str(100 + i % 3) if i % 4 else None,       # KVP: 75% filled, numeric
            "" if i % 2 else "abc",                    # Blank: empty strings count as missing
            "left knee pain" if i < 10 else "x",      # Symptom: spaces in 10 of 40
            "12.5" if i < 30 else "n/a",               # Mixed: 30 numeric of 40
            ["2D", "3D"][i % 2],                       # MRAcquisitionType: Spark would cast "2D" to 2.0
            ["-1.5e3", " +7 ", ".5"][i % 3],           # Signed: numbers in every notation
        ))
    df = spark.createDataFrame(
        rows, "sop_instance_uid string, exam_id string, Modality string, KVP string, Blank string, "
        "Symptom string, Mixed string, MRAcquisitionType string, Signed string",
    )
    profile = profile_tags(df, exclude={"sop_instance_uid", "exam_id"})
    assert profile.rows == 40
    assert profile.excluded == ("sop_instance_uid", "exam_id")
    assert [c.name for c in profile.columns] == ["Modality", "KVP", "Blank", "Symptom", "Mixed", "MRAcquisitionType", "Signed"]
    modality, kvp, blank, text, mixed, acquisition, signed = profile.columns
    assert (modality.filled, modality.distinct, modality.numeric) == (40, 2, 0)
    assert (kvp.filled, kvp.distinct, kvp.numeric) == (30, 3, 30)
    assert (blank.filled, blank.distinct) == (20, 1)
    assert text.spaced == 10
    assert text.mean_length == pytest.approx((10 * 14 + 30 * 1) / 40)
    assert (mixed.filled, mixed.numeric) == (40, 30)
    assert acquisition.numeric == 0
    assert signed.numeric == 40
    selection = select_tags(profile)
    assert selection.continuous == ["KVP", "Signed"]
    assert selection.categorical == ["Modality", "Symptom", "Mixed", "MRAcquisitionType"]
    assert selection.decision("Blank").reason == "few_distinct"
