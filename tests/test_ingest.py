"""The ingest job end to end on a generated PACS dump and on real pydicom test files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from radnet_spark.config import load_config
from radnet_spark.ingest.job import ingest, read_partitions
from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tables import read_table

DEFECT_REASONS = {
    "truncated": {"truncated"},
    "not_dicom": {"not_dicom"},
    "no_pixel_data": {"no_pixel_data"},
    "blank": {"value_policy_max", "value_policy_distinct"},
    "monochrome": {"value_policy_max", "value_policy_distinct"},
    "one_pixel_high": {"shape_policy"},
    "modality_lut": {"modality_lut"},
}


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pacs")
    rates = DefectRates(
        truncated=0.04, not_dicom=0.04, no_pixel_data=0.04, blank=0.04, monochrome=0.04,
        one_pixel_high=0.04, modality_lut=0.04, no_window=0.06, rle=0.06, jpeg2000=0.06,
    )
    generate_pacs(out, exams=24, seed=11, defect_rates=rates, workers=1)
    return out


@pytest.fixture(scope="module")
def warehouse(spark, dump, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("warehouse")
    summary = ingest(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), str(target), load_config())
    assert summary.new_files > 0
    return target


def _ground_truth(dump: Path) -> list[dict[str, str]]:
    with open(dump / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _disk_files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file()}


def test_every_input_file_appears_exactly_once_in_files(spark, dump, warehouse):
    files = read_table(spark, str(warehouse), "files").select("path", "status").collect()
    paths = [row["path"] for row in files]
    assert len(paths) == len(set(paths))
    assert set(paths) == _disk_files(dump / "dicom")


def test_every_rejected_file_has_a_machine_readable_reason(spark, warehouse):
    files = read_table(spark, str(warehouse), "files")
    rejects = read_table(spark, str(warehouse), "rejects")
    rejected = {r["path"]: r["reason"] for r in files.where("status = 'rejected'").collect()}
    logged = {r["path"]: r["reason"] for r in rejects.collect()}
    assert rejected
    for path, reason in rejected.items():
        assert reason and logged[path] == reason
    ok = {r["path"] for r in files.where("status = 'ok'").collect()}
    tagged = {r["path"] for r in read_table(spark, str(warehouse), "tags").select("path").collect()}
    assert ok == tagged


def test_injected_defects_are_rejected_with_their_reason(spark, dump, warehouse):
    reasons = {
        r["path"]: r["reason"] for r in read_table(spark, str(warehouse), "rejects").collect()
    }
    checked = 0
    for truth in _ground_truth(dump):
        expected = DEFECT_REASONS.get(truth["defect"])
        if expected is None:
            continue
        if Path(truth["relative_path"]).name.startswith("DICOMDIR"):
            # Preamble and magic followed by garbage: a damaged DICOM file as much as a foreign one.
            expected = {"not_dicom", "truncated", "read_error"}
        path = str(dump / "dicom" / truth["relative_path"])
        assert reasons.get(path) in expected, (truth["defect"], reasons.get(path))
        checked += 1
    assert checked >= 5


def test_clean_generated_images_are_accepted(spark, dump, warehouse):
    statuses = {
        r["path"]: r["status"] for r in read_table(spark, str(warehouse), "files").collect()
    }
    clean = [
        str(dump / "dicom" / t["relative_path"]) for t in _ground_truth(dump)
        if t["defect"] in ("", "no_window", "rle", "jpeg2000")
    ]
    accepted = sum(statuses[p] == "ok" for p in clean)
    assert accepted / len(clean) >= 0.9


def test_no_identifying_value_reaches_any_table(spark, dump, warehouse):
    phi: set[str] = set()
    for path in list((dump / "dicom").rglob("*"))[:400]:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - injected defects
            continue
        for keyword in ("PatientName", "PatientID", "AccessionNumber", "InstitutionName",
                        "ReferringPhysicianName", "PatientBirthDate", "StudyInstanceUID"):
            value = str(ds.get(keyword, "") or "")
            if len(value) >= 4:
                phi.add(value)
    assert len(phi) > 20
    for name in ("files", "tags", "images", "diagnoses", "rejects"):
        df = read_table(spark, str(warehouse), name)
        string_columns = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        for row in df.select(*string_columns).collect():
            for value in row:
                if value:
                    assert value not in phi, (name, value)
    columns = set(read_table(spark, str(warehouse), "tags").columns)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
                    "ReferringPhysicianName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert keyword not in columns


def test_multi_valued_tags_are_split(spark, warehouse):
    columns = set(read_table(spark, str(warehouse), "tags").columns)
    assert {"ImageType_0", "ImageType_1"} <= columns
    assert "ImageType" not in columns


def test_images_are_square_8_bit_with_original_shape(spark, warehouse):
    rows = read_table(spark, str(warehouse), "images").collect()
    assert rows
    for row in rows:
        assert len(row["image"]) == row["image_size"] ** 2 == 128 * 128
        assert row["original_rows"] > 1 and row["original_columns"] > 1
        assert row["window_source"] in ("dicom", "estimated")
    assert any(row["window_source"] == "estimated" for row in rows)


def test_diagnoses_are_keyed_by_hashed_exam_and_stemmed(spark, dump, warehouse):
    diagnoses = read_table(spark, str(warehouse), "diagnoses").collect()
    assert diagnoses
    exam_ids = {r["exam_id"] for r in read_table(spark, str(warehouse), "tags").select("exam_id").collect()}
    assert {d["exam_id"] for d in diagnoses} & exam_ids
    assert all(d["stems"] for d in diagnoses)
    reasons = {r["reason"] for r in read_table(spark, str(warehouse), "rejects").where("stage = 'diagnosis'").collect()}
    assert reasons & {"empty_diagnosis", "short_diagnosis"}


def test_rerun_on_the_same_dump_changes_nothing(spark, dump, warehouse):
    before = {n: read_table(spark, str(warehouse), n).count() for n in ("files", "tags", "images", "rejects", "diagnoses")}
    summary = ingest(spark, str(dump / "dicom"), str(dump / "diagnoses.csv"), str(warehouse), load_config())
    after = {n: read_table(spark, str(warehouse), n).count() for n in before}
    assert summary.new_files == 0
    assert after == before
    # Nothing new to parse: the run lists, reads the diagnoses and counts, and says so step by step.
    assert set(summary.step_seconds) == {"list", "diagnoses", "count"}


@pytest.mark.parametrize(
    ("files", "slots", "expected"),
    [(2926, 2, 8), (100_000, 2, 196), (100_000, 64, 256), (3, 8, 3), (0, 2, 1)],
)
def test_read_tasks_are_large_but_at_least_a_few_per_slot(files, slots, expected):
    assert read_partitions(files, slots, load_config()) == expected


def test_new_files_are_appended_and_duplicates_rejected(spark, dump, warehouse, tmp_path):
    new_dump = dump / "dicom" / "zz_new_delivery"
    generate_pacs(tmp_path / "more", exams=2, seed=99, defect_rates=DefectRates.none(), workers=1)
    shutil.copytree(tmp_path / "more" / "dicom", new_dump)
    original = next(
        str(dump / "dicom" / t["relative_path"]) for t in _ground_truth(dump) if t["defect"] == ""
    )
    shutil.copy(original, new_dump / "copy-of-an-existing-instance")
    before = read_table(spark, str(warehouse), "files").count()
    summary = ingest(spark, str(dump / "dicom"), None, str(warehouse), load_config())
    new_count = len(_disk_files(new_dump))
    assert summary.new_files == new_count
    assert read_table(spark, str(warehouse), "files").count() == before + new_count
    # Only the copy is a duplicate: the new delivery's own instances are accepted with their images.
    new_rows = read_table(spark, str(warehouse), "files").where(f"path like '{new_dump}/%'")
    assert new_rows.where("status = 'ok'").count() == new_count - 1
    images = read_table(spark, str(warehouse), "images").join(
        read_table(spark, str(warehouse), "tags").where(f"path like '{new_dump}/%'"), "sop_instance_uid", "left_semi"
    )
    assert images.count() == new_count - 1
    duplicate = read_table(spark, str(warehouse), "rejects").where(
        f"path = '{new_dump / 'copy-of-an-existing-instance'}'"
    ).collect()
    assert [r["reason"] for r in duplicate] == ["duplicate_sop_instance_uid"]


REAL_FILES = {
    "CT_small.dcm": None,
    "MR_small_RLE.dcm": None,
    "JPEG2000.dcm": None,
    "rtplan.dcm": "no_pixel_data",
}


def test_real_pydicom_files_are_ingested_or_rejected_with_reason(spark, tmp_path):
    dump = tmp_path / "real"
    dump.mkdir()
    for name in REAL_FILES:
        shutil.copy(get_testdata_file(name, download=False), dump / name)
    (dump / "README.txt").write_text("not a DICOM file")
    raw = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    (dump / "truncated.dcm").write_bytes(raw[: len(raw) // 3])
    warehouse = tmp_path / "wh"
    ingest(spark, str(dump), None, str(warehouse), load_config())
    status = {Path(r["path"]).name: (r["status"], r["reason"]) for r in read_table(spark, str(warehouse), "files").collect()}
    for name, reason in REAL_FILES.items():
        assert status[name] == (("ok", None) if reason is None else ("rejected", reason)), name
    assert status["README.txt"] == ("rejected", "not_dicom")
    assert status["truncated.dcm"] == ("rejected", "truncated")
