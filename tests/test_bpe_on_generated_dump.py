"""Issue 4's acceptance bar: BPE imputation on a generated dump of at least 2,000 instances."""

from __future__ import annotations

import csv

import pydicom
import pytest

from radnet_spark.synth import DefectRates, generate_pacs
from radnet_spark.tags.bpe import impute_bpe, load_bpe_rules


@pytest.mark.slow
def test_imputed_body_parts_match_the_ground_truth_on_2000_instances(tmp_path):
    generate_pacs(tmp_path, exams=130, seed=2027, defect_rates=DefectRates.none(), workers=2)
    with open(tmp_path / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        truth = [row for row in csv.DictReader(handle) if row["modality"] in ("CT", "MR", "CR", "XA", "RF")]
    assert len(truth) >= 2000
    rules = load_bpe_rules()
    filled_before = filled_after = imputed = imputed_right = right = 0
    for row in truth:
        ds = pydicom.dcmread(tmp_path / "dicom" / row["relative_path"], stop_before_pixels=True)
        label, source = impute_bpe(
            body_part_examined=ds.get("BodyPartExamined"), study_description=ds.get("StudyDescription"),
            protocol_name=ds.get("ProtocolName"),
            requested_procedure_description=ds.get("RequestedProcedureDescription"),
            series_description=ds.get("SeriesDescription"), modality=ds.get("Modality"), rules=rules,
        )
        filled_before += source == "dicom"
        filled_after += label is not None
        right += label == row["body_part"]
        if source.startswith("rule:"):
            imputed += 1
            imputed_right += label == row["body_part"]
    n = len(truth)
    print(f"BPE fill rate {filled_before / n:.1%} -> {filled_after / n:.1%}; "
          f"imputed correct {imputed_right / imputed:.1%}; all rows correct {right / n:.1%}")
    assert filled_before / n < 0.7
    assert filled_after / n >= 0.95
    assert imputed_right / imputed >= 0.95
