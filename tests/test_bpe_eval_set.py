"""BodyPartExamined imputation on the hand-written description sets of eval/bpe/ (regression guards).

The figures guarded are those measured when the rules were last changed (docs/benchmarks.md,
"BodyPartExamined imputation on independent descriptions"), rounded down to a whole percent.
Rules are written from dev.csv and dev2.csv only; heldout.csv is a measure, never a source
(eval/bpe/README.md).
"""

from __future__ import annotations

import csv
from itertools import combinations
from pathlib import Path

import pytest

from radnet_spark.tags.bpe import BPE_LABELS, impute_bpe, load_bpe_rules

EVAL_DIR = Path(__file__).resolve().parent.parent / "eval" / "bpe"
COLUMNS = [
    "Modality",
    "StudyDescription",
    "ProtocolName",
    "RequestedProcedureDescription",
    "BodyPartExamined",
    "style",
]
# Accuracy reached with rules 2026.11.3, rounded down: dev 100.0 %, dev2 98.8 %, heldout 97.3 %, and
# 97.4 % on the 313 held-out rows that no development set shares.
GUARDED_ACCURACY = {"dev": 0.99, "dev2": 0.98, "heldout": 0.97}
GUARDED_UNSHARED_HELDOUT_ACCURACY = 0.97
# dev2.csv was written without reading heldout.csv; 25 of its rows turned out to be written the same
# way as held-out rows (found after the rules had been written from dev2). They stay in dev2; the
# held-out figure that counts is the one on the rows no development set shares.
DEV2_ROWS_SHARED_WITH_HELDOUT = 25


def _read(name: str) -> list[dict[str, str]]:
    with open(EVAL_DIR / f"{name}.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _accuracy(rows: list[dict[str, str]]) -> float:
    rules = load_bpe_rules()
    right = 0
    for row in rows:
        label, _ = impute_bpe(
            body_part_examined=None,
            study_description=row["StudyDescription"] or None,
            protocol_name=row["ProtocolName"] or None,
            requested_procedure_description=row["RequestedProcedureDescription"] or None,
            modality=row["Modality"],
            rules=rules,
        )
        right += label == row["BodyPartExamined"]
    return right / len(rows)


SETS = ["dev", "dev2", "heldout"]


@pytest.mark.parametrize("name", SETS)
def test_evaluation_sets_cover_every_label_with_valid_rows(name):
    rows = _read(name)
    assert len(rows) >= 250
    assert {row["BodyPartExamined"] for row in rows} == set(BPE_LABELS)
    for row in rows:
        assert row["Modality"] and row["style"]
        assert row["StudyDescription"] or row["ProtocolName"] or row["RequestedProcedureDescription"]


def _key(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[c].strip().lower() for c in COLUMNS[1:4])


def _keys(name: str) -> set[tuple[str, ...]]:
    return {_key(row) for row in _read(name)}


@pytest.mark.parametrize(("first", "second"), list(combinations(SETS, 2)))
def test_no_description_is_in_two_sets_beyond_the_documented_overlap(first, second):
    # Only the number of shared rows is compared: held-out rows are never printed.
    shared = len(_keys(first) & _keys(second))
    allowed = DEV2_ROWS_SHARED_WITH_HELDOUT if (first, second) == ("dev2", "heldout") else 0
    assert shared <= allowed


@pytest.mark.parametrize("name", SETS)
def test_imputation_accuracy_does_not_fall_below_the_measured_figure(name):
    assert _accuracy(_read(name)) >= GUARDED_ACCURACY[name]


def test_accuracy_on_held_out_rows_no_development_set_shares_does_not_fall():
    seen = _keys("dev") | _keys("dev2")
    unshared = [row for row in _read("heldout") if _key(row) not in seen]
    assert len(unshared) >= 250
    assert _accuracy(unshared) >= GUARDED_UNSHARED_HELDOUT_ACCURACY
