"""Modality scope and the exam-size bound: out-of-scope files become rejects of stage ``scope``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pyspark.sql import functions as F

from radnet_spark.cli import main
from radnet_spark.config import load_config
from radnet_spark.errors import PipelineError
from radnet_spark.ingest.job import ingest
from radnet_spark.pipeline import run
from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tables import read_table


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scope") / "pacs"
    generate_pacs(root, exams=14, seed=31, defect_rates=DefectRates.none(), workers=1)
    return root


def _accounted(spark, warehouse: str, dump: Path) -> dict[str, dict]:
    files = {row["path"]: row for row in read_table(spark, warehouse, "files").collect()}
    assert len(files) == sum(1 for p in (dump / "dicom").rglob("*") if p.is_file())
    return files


def test_modalities_outside_the_scope_are_rejected_with_a_reason(spark, dump, tmp_path):
    warehouse = str(tmp_path / "warehouse")
    ingest(spark, str(dump / "dicom"), None, warehouse, load_config(None, ["ingest.modalities=[ct, MR]"]))
    files = _accounted(spark, warehouse, dump)
    modalities = {row["Modality"] for row in read_table(spark, warehouse, "tags").select("Modality").collect()}
    assert modalities and modalities <= {"CT", "MR"}
    scoped = read_table(spark, warehouse, "rejects").where(F.col("stage") == "scope").collect()
    assert scoped and {row["reason"] for row in scoped} == {"modality_out_of_scope"}
    assert all("not in ingest.modalities (CT, MR)" in row["detail"] for row in scoped)
    assert all(files[row["path"]]["status"] == "rejected" for row in scoped)


def test_exams_with_more_files_than_the_bound_are_rejected_whole(spark, dump, tmp_path):
    warehouse = str(tmp_path / "warehouse")
    ingest(spark, str(dump / "dicom"), None, warehouse, load_config(None, ["ingest.max_files_per_exam=2"]))
    _accounted(spark, warehouse, dump)
    per_exam = read_table(spark, warehouse, "tags").groupBy("exam_id").count().collect()
    assert per_exam and max(row["count"] for row in per_exam) <= 2
    large = read_table(spark, warehouse, "rejects").where(F.col("reason") == "exam_too_large").collect()
    assert large and all("more than ingest.max_files_per_exam (2)" in row["detail"] for row in large)


def test_a_dump_with_nothing_in_scope_stops_with_one_sentence(spark, dump, tmp_path):
    config = load_config(None, ["ingest.modalities=[PT]"])
    with pytest.raises(PipelineError, match="no instance in scope.*rejects"):
        run(spark, str(dump / "dicom"), None, str(tmp_path / "warehouse"), config, models_root=str(tmp_path / "m"))



def _modality(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).Modality)


def _nm_us_dump(root: Path) -> Path:
    """A dump of the generator's NM and US files only (exams 19, 35 and 39 of seed 31 are NM or US)."""
    generated, dump = root / "generated", root / "nm-us"
    for exam in (19, 35, 39):
        generate_pacs(generated, exams=1, first_exam=exam, seed=31, defect_rates=DefectRates.none(), workers=1)
    for path in sorted(p for p in (generated / "dicom").rglob("*") if p.is_file()):
        if _modality(path) in ("NM", "US"):
            target = dump / "dicom" / path.relative_to(generated / "dicom")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dump


def test_a_dump_of_only_nm_and_us_is_rejected_by_scope_and_run_exits_2(spark, tmp_path, capsys):
    dump = _nm_us_dump(tmp_path)
    assert {_modality(p) for p in (dump / "dicom").rglob("*") if p.is_file()} == {"NM", "US"}
    warehouse = tmp_path / "warehouse"
    args = ["run", "--dicom", str(dump / "dicom"), "--out", str(warehouse), "--models", str(tmp_path / "models"),
            "--set", "ingest.modalities=[CT]"]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("radnet run: error:")]
    assert len(errors) == 1 and "has no instance in scope" in errors[0] and "ingest.modalities" in errors[0]

    files = _accounted(spark, str(warehouse), dump)
    assert {row["status"] for row in files.values()} == {"rejected"}
    rejects = {row["path"]: row for row in read_table(spark, str(warehouse), "rejects").collect()}
    assert set(rejects) == set(files)
    assert {(row["stage"], row["reason"]) for row in rejects.values()} == {("scope", "modality_out_of_scope")}
    details = {row["detail"] for row in rejects.values()}
    assert details == {f"modality {m} is not in ingest.modalities (CT)" for m in ("NM", "US")}
