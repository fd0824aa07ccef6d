"""BodyPartExamined imputation before and after person names are scrubbed from the descriptions.

    .venv/bin/python bench/bpe_names.py --exams 130 --seed 2027

Generates a synthetic dump (no defects; the dump of issue 4's acceptance test), then for every
CT/MR/CR/XA/RF instance imputes BodyPartExamined three times from the same header:
  1. ``raw``: the descriptions as stored in the file;
  2. ``before``: the tag row as de-identified before issue 14 (dates and ids scrubbed, no names);
  3. ``after``: the tag row as ingest writes it now (also the record's own names, titles and the
     names lexicon replaced by ``[NAME]``);
  4. ``planted``: as 3, after the patient's own name was typed into the descriptions the way
     technologists do ("<StudyDescription> - pacijent Given Family", "FAMILY-GIVEN <SeriesDescription>").
Prints the fill rate, the share of imputed labels that are right, the share of all rows right, how
many description values name scrubbing changed, how many labels it changed, and how many planted
names survived. No Spark.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DESCRIPTION_KEYWORDS = ("StudyDescription", "ProtocolName", "RequestedProcedureDescription", "SeriesDescription")


@dataclass
class Tally:
    rows: int = 0
    filled: int = 0
    imputed: int = 0
    imputed_right: int = 0
    right: int = 0

    def add(self, label: str | None, source: str, truth: str) -> None:
        self.rows += 1
        self.filled += label is not None
        self.right += label == truth
        if source.startswith("rule:"):
            self.imputed += 1
            self.imputed_right += label == truth

    def line(self, name: str) -> str:
        return (f"| {name} | {self.rows} | {self.filled / self.rows:.1%} | "
                f"{self.imputed_right / max(1, self.imputed):.1%} ({self.imputed}) | {self.right / self.rows:.1%} |")


@dataclass
class Comparison:
    raw: Tally = field(default_factory=Tally)
    before: Tally = field(default_factory=Tally)
    after: Tally = field(default_factory=Tally)
    planted: Tally = field(default_factory=Tally)
    planted_labels_changed: int = 0  # rows whose label from planted descriptions differs from ``raw``
    planted_names_left: int = 0  # planted description values still holding the patient's surname
    planted_values: int = 0
    values_changed: int = 0  # description values that name scrubbing changed
    labels_changed: int = 0  # rows whose imputed label differs before/after name scrubbing
    right_lost: int = 0  # rows right before name scrubbing and wrong after


def compare(dump: Path) -> Comparison:
    """Impute BPE from the raw, the pre-issue-14 and the current de-identified tags of every instance."""
    from radnet_spark.dicom.deid import deidentify_tags
    from radnet_spark.dicom.header import dataset_to_tags, read_dataset
    from radnet_spark.dicom.names import NameScrubber, fold, load_lexicon, record_name_tokens
    from radnet_spark.tags.bpe import impute_bpe, load_bpe_rules

    rules = load_bpe_rules()
    lexicon = load_lexicon()
    out = Comparison()
    with open(dump / "ground_truth.csv", newline="", encoding="utf-8") as handle:
        truth = [row for row in csv.DictReader(handle) if row["modality"] in ("CT", "MR", "CR", "XA", "RF")]

    def impute(tags: dict) -> tuple[str | None, str]:
        return impute_bpe(
            body_part_examined=tags.get("BodyPartExamined"), study_description=tags.get("StudyDescription"),
            protocol_name=tags.get("ProtocolName"),
            requested_procedure_description=tags.get("RequestedProcedureDescription"),
            series_description=tags.get("SeriesDescription"), modality=tags.get("Modality"), rules=rules,
        )

    for row in truth:
        header = read_dataset(str(dump / "dicom" / row["relative_path"]), stop_before_pixels=True,
                              max_file_bytes=10**10)
        raw = dataset_to_tags(header)
        before = deidentify_tags(raw, salt="bench")
        after = deidentify_tags(raw, salt="bench", names=NameScrubber(record_name_tokens(header), lexicon=lexicon))
        patient = header.get("PatientName")
        given, family = (patient.given_name, patient.family_name) if patient else ("", "")
        planted_raw = dict(raw)
        if family:
            for keyword, text in (("StudyDescription", f"{{}} - pacijent {given} {family}"),
                                  ("SeriesDescription", f"{family.upper()}-{given.upper()} {{}}")):
                if raw.get(keyword):
                    planted_raw[keyword] = text.format(raw[keyword])
        planted = deidentify_tags(
            planted_raw, salt="bench", names=NameScrubber(record_name_tokens(header), lexicon=lexicon)
        )
        for keyword in ("StudyDescription", "SeriesDescription"):
            if family and raw.get(keyword):
                out.planted_values += 1
                out.planted_names_left += fold(family) in fold(planted.get(keyword) or "")
        results = {}
        for name, tags in (("raw", raw), ("before", before), ("after", after), ("planted", planted)):
            results[name] = impute(tags)
            getattr(out, name).add(*results[name], row["body_part"])
        out.values_changed += sum(before.get(k) != after.get(k) for k in DESCRIPTION_KEYWORDS)
        out.labels_changed += results["before"][0] != results["after"][0]
        out.right_lost += results["before"][0] == row["body_part"] != results["after"][0]
        out.planted_labels_changed += results["raw"][0] != results["planted"][0]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams", type=int, default=130)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--dump", type=Path, help="reuse a dump written by `radnet synth` (no defects)")
    args = parser.parse_args(argv)

    from radnet_spark.synth import DefectRates, generate_pacs

    with tempfile.TemporaryDirectory(prefix="bpe-names-") as scratch:
        dump = args.dump
        if dump is None:
            dump = Path(scratch)
            generate_pacs(dump, exams=args.exams, seed=args.seed, defect_rates=DefectRates.none(), workers=2)
        start = time.perf_counter()
        result = compare(dump)
        seconds = time.perf_counter() - start
    print("| tags imputed from | rows | filled | imputed right (n) | all rows right |")
    print("|---|---|---|---|---|")
    for name in ("raw", "before", "after", "planted"):
        print(getattr(result, name).line(name))
    print(f"\nname scrubbing changed {result.values_changed} description values and "
          f"{result.labels_changed} labels; rows right before and wrong after: {result.right_lost} "
          f"({seconds:.1f} s)")
    print(f"planted names: {result.planted_names_left} of {result.planted_values} description values still "
          f"hold the patient's surname; {result.planted_labels_changed} labels differ from those of the raw descriptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
