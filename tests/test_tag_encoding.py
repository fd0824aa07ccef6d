"""Tag encoding (one-hot / min-max) and the composed tags → tag_features preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radnet_spark.config import SplitConfig, TagsConfig
from radnet_spark.errors import UserError
from radnet_spark.splits import split_of
from radnet_spark.tags.encoding import TagEncoder
from radnet_spark.tags.features import (
    OUTPUT_SCHEMA,
    TagPreprocessing,
    category_levels,
    fit_tag_preprocessing,
    prepare_tag_batch,
)
from radnet_spark.tags.selection import OTHER_CATEGORY

TRAIN = pd.DataFrame({
    "kvp": [80.0, 100.0, 120.0],
    "thickness": [5.0, 5.0, 5.0],
    "modality": ["CT", "MR", "CT"],
    "side": ["L", "R", "R"],
})


def fitted_encoder() -> TagEncoder:
    return TagEncoder(["kvp", "thickness"], ["modality", "side"]).fit(TRAIN)


def test_encoding_of_the_training_rows_is_the_known_matrix():
    encoder = fitted_encoder()
    assert encoder.feature_names == ["kvp", "thickness", "modality=CT", "modality=MR", "side=L", "side=R"]
    expected = np.array([
        [0.0, 0.0, 1, 0, 1, 0],
        [0.5, 0.0, 0, 1, 0, 1],
        [1.0, 0.0, 1, 0, 0, 1],
    ], dtype=np.float32)
    got = encoder.encode_frame(TRAIN)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_unseen_and_missing_categories_encode_as_all_zero():
    encoder = fitted_encoder()
    batch = pd.DataFrame({"kvp": [100.0, 100.0], "thickness": [5.0, 5.0], "modality": ["PET", None],
                          "side": [np.nan, "L"]})
    got = encoder.encode_frame(batch)
    np.testing.assert_array_equal(got[:, 2:4], np.zeros((2, 2)))
    np.testing.assert_array_equal(got[:, 4:6], [[0, 0], [1, 0]])


def test_out_of_range_values_are_clipped_to_the_unit_interval():
    encoder = fitted_encoder()
    batch = pd.DataFrame({"kvp": [40.0, 140.0, 90.0], "thickness": [1.0, 9.0, 5.0],
                          "modality": ["CT"] * 3, "side": ["L"] * 3})
    got = encoder.encode_frame(batch)
    np.testing.assert_allclose(got[:, 0], [0.0, 1.0, 0.25])
    np.testing.assert_array_equal(got[:, 1], [0.0, 0.0, 0.0])  # constant in training → 0
    assert got.min() >= 0.0 and got.max() <= 1.0


def test_given_categories_fix_the_one_hot_layout():
    encoder = TagEncoder([], ["side"]).fit(TRAIN, categories={"side": ["R", OTHER_CATEGORY]})
    got = encoder.encode_frame(pd.DataFrame({"side": ["R", OTHER_CATEGORY, "L"]}))
    np.testing.assert_array_equal(got, [[1, 0], [0, 1], [0, 0]])


def test_encoder_save_load_round_trip(tmp_path):
    encoder = fitted_encoder()
    encoder.save(tmp_path / "encoder.json")
    loaded = TagEncoder.load(tmp_path / "encoder.json")
    assert loaded.feature_names == encoder.feature_names
    np.testing.assert_array_equal(loaded.encode_frame(TRAIN), encoder.encode_frame(TRAIN))


def test_bucketed_columns_keep_top_values_and_map_the_rest_to_other():
    sample = pd.DataFrame({"proto": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]})
    levels = category_levels(sample, ["proto"], ["proto"], max_categories=3)
    assert levels == {"proto": ["a", "b", OTHER_CATEGORY]}
    prepared = prepare_tag_batch(pd.DataFrame({"proto": ["a", "d", None, "zz"]}), [], ["proto"], levels, ["proto"])
    assert prepared["proto"].tolist() == ["a", OTHER_CATEGORY, None, OTHER_CATEGORY]


def tags_rows(n_exams: int = 60, per_exam: int = 3, seed: int = 0) -> pd.DataFrame:
    """A small synthetic ``tags`` table: keys, useful tags, and tags the selection must drop."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_exams):
        modality = ["CT", "MR", "CR"][e % 3]
        for i in range(per_exam):
            kvp = {"CT": 120.0, "MR": None, "CR": 70.0}[modality]
            rows.append({
                "sop_instance_uid": f"1.2.3.{e}.{i}",
                "exam_id": f"exam{e:03d}",
                "study_id": f"study{e:03d}",
                "series_id": f"series{e:03d}",
                "path": f"/pacs/{e}/{i}.dcm",
                "ingest_run_id": "run1",
                "Modality": modality,
                "KVP": None if kvp is None or rng.random() < 0.2 else str(kvp + rng.normal(0, 2)),
                "SliceThickness": None if rng.random() < 0.1 else f"{rng.choice([1.0, 2.5, 5.0]):.1f}",
                "Manufacturer": None if rng.random() < 0.15 else ["SIEMENS", "GE MEDICAL SYSTEMS"][e % 2],
                "ImageType_0": ["ORIGINAL", "DERIVED"][i % 2],
                "SeriesInstanceUID": f"1.2.840.{e}.{i}",
                "StudyDescription": f"CT glave {e}",
                "Rare": "x" if e == 0 else None,
            })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tags_df(spark):
    pdf = tags_rows()
    schema = ", ".join(f"`{c}` string" for c in pdf.columns)
    return spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None), schema)


def collect_sorted(df) -> pd.DataFrame:
    return df.toPandas().sort_values("sop_instance_uid").reset_index(drop=True)


def test_fitted_preprocessing_produces_tag_features(tags_df, tmp_path):
    prep = fit_tag_preprocessing(tags_df, TagsConfig(missforest_trees=8, fit_sample_rows=120), SplitConfig())
    selection = prep.selection
    assert selection.continuous == ["KVP", "SliceThickness"]
    assert selection.categorical == ["Modality", "Manufacturer", "ImageType_0"]
    assert selection.decision("SeriesInstanceUID").reason == "uid"
    assert selection.decision("StudyDescription").reason == "natural_language"
    assert selection.decision("Rare").reason == "low_fill"
    assert selection.decision("path").reason == "excluded"

    out = prep.transform(tags_df)
    assert out.schema.simpleString() == "struct<" + OUTPUT_SCHEMA.replace(" ", ":").replace(",:", ",") + ">"
    got = collect_sorted(out)
    assert len(got) == 180
    features = np.stack(got["features"].to_numpy())
    assert features.shape == (180, len(prep.feature_names))
    assert features.min() >= 0.0 and features.max() <= 1.0
    assert all(got["split"] == [split_of(e) for e in got["exam_id"]])
    assert got["modality"].tolist() == [
        r["Modality"] for r in tags_rows().sort_values("sop_instance_uid").to_dict("records")
    ]
    # Every row has exactly one modality and one image type set: the imputer filled every gap.
    names = prep.feature_names
    modality_block = features[:, [i for i, n in enumerate(names) if n.startswith("Modality=")]]
    np.testing.assert_array_equal(modality_block.sum(axis=1), np.ones(180))
    # The distributed transform equals the driver-side batch encoding.
    expected = prep.encode_batch(tags_rows().sort_values("sop_instance_uid").reset_index(drop=True))
    np.testing.assert_allclose(features, expected, rtol=0, atol=1e-6)

    prep.save(tmp_path / "tags")
    loaded = TagPreprocessing.load(tmp_path / "tags")
    assert loaded.feature_names == prep.feature_names
    reloaded = collect_sorted(loaded.transform(tags_df))
    np.testing.assert_array_equal(np.stack(reloaded["features"].to_numpy()), features)
    assert reloaded[["sop_instance_uid", "exam_id", "split", "modality"]].equals(
        got[["sop_instance_uid", "exam_id", "split", "modality"]]
    )


def test_new_data_missing_a_tag_column_still_transforms(tags_df, tmp_path):
    prep = fit_tag_preprocessing(
        tags_df, TagsConfig(imputer="simple", categorical_overflow="bucket", fit_sample_rows=50), SplitConfig()
    )
    with pytest.raises(UserError):
        prep.transform(tags_df, ship_model="path")  # nothing saved yet for executors to read
    prep.save(tmp_path / "simple")
    fresh = tags_df.drop("Manufacturer").limit(10)
    got = collect_sorted(TagPreprocessing.load(tmp_path / "simple").transform(fresh))
    assert len(got) == 10
    names = prep.feature_names
    manufacturer = [i for i, n in enumerate(names) if n.startswith("Manufacturer=")]
    features = np.stack(got["features"].to_numpy())
    # A column absent everywhere is imputed with the training mode.
    assert (features[:, manufacturer].sum(axis=1) == 1).all()
