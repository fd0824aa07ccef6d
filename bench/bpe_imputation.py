"""BodyPartExamined imputation on the hand-written description sets of ``eval/bpe/``.

    .venv/bin/python bench/bpe_imputation.py
    .venv/bin/python bench/bpe_imputation.py --rules my_rules.yaml --set dev

For each set (``dev.csv``, ``dev2.csv``, ``heldout.csv``; see ``eval/bpe/README.md``) every row goes through the
project's per-record imputation (:func:`radnet_spark.tags.bpe.impute_bpe`, BodyPartExamined empty,
the row's Modality, StudyDescription, ProtocolName and RequestedProcedureDescription) and the label
is compared with the row's ``BodyPartExamined``. Prints the accuracy of each set and its accuracy
by writing style. Only for ``dev`` and ``dev2`` does it list the rows that went wrong (truth, imputed label, the
rule that decided, the descriptions) and the confusion pairs: the held-out set is a measure, not a
source for rules. For the held-out set it also prints the accuracy on the rows that no development
set shares (compared case-insensitively on the three descriptions): a row written the same way in a
development set has been seen while writing rules, so only the others measure descriptions the
rules were not written from. Only counts are printed, never a held-out row. No Spark.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent.parent / "eval" / "bpe"
SETS = ("dev", "dev2", "heldout")
# Sets whose failures may be printed: only those rules are written from.
INSPECTABLE_SETS = frozenset({"dev", "dev2"})
DESCRIPTION_COLUMNS = ("StudyDescription", "ProtocolName", "RequestedProcedureDescription")


@dataclass(frozen=True)
class Outcome:
    """One evaluated row: its truth, what the imputation said, and why."""

    row: dict[str, str]
    truth: str
    label: str | None
    source: str

    @property
    def right(self) -> bool:
        return self.label == self.truth


def read_set(path: Path) -> list[dict[str, str]]:
    """Read an evaluation CSV (columns as in ``eval/bpe/README.md``).

    Args:
        path: The CSV file.

    Returns:
        One dict per row.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def evaluate(rows: list[dict[str, str]], rules: object) -> list[Outcome]:
    """Impute every row with the project's per-record function.

    Args:
        rows: Rows of an evaluation set.
        rules: A rule set from :func:`radnet_spark.tags.bpe.load_bpe_rules`.

    Returns:
        One outcome per row, in order.
    """
    from radnet_spark.tags.bpe import impute_bpe

    outcomes = []
    for row in rows:
        label, source = impute_bpe(
            body_part_examined=None,
            study_description=row["StudyDescription"] or None,
            protocol_name=row["ProtocolName"] or None,
            requested_procedure_description=row["RequestedProcedureDescription"] or None,
            modality=row["Modality"] or None,
            rules=rules,
        )
        outcomes.append(Outcome(row=row, truth=row["BodyPartExamined"], label=label, source=source))
    return outcomes


def description_key(row: dict[str, str]) -> tuple[str, ...]:
    """The three descriptions of a row, trimmed and lower-cased: rows with equal keys are the same text."""
    return tuple(row[column].strip().lower() for column in DESCRIPTION_COLUMNS)


def accuracy(outcomes: list[Outcome]) -> float:
    """Share of rows whose imputed label equals the truth (no label counts as wrong)."""
    return sum(outcome.right for outcome in outcomes) / len(outcomes) if outcomes else 0.0


def report(name: str, outcomes: list[Outcome], inspect: bool) -> None:
    """Print one set's accuracy, by style, and (if ``inspect``) its failures and confusion pairs."""
    right = sum(outcome.right for outcome in outcomes)
    print(f"{name}: {right}/{len(outcomes)} right = {accuracy(outcomes):.1%}")
    styles = sorted({outcome.row.get("style", "") for outcome in outcomes})
    by_style = []
    for style in styles:
        members = [outcome for outcome in outcomes if outcome.row.get("style", "") == style]
        by_style.append(f"{style} {accuracy(members):.0%} ({len(members)})")
    print("  by style: " + ", ".join(by_style))
    if not inspect:
        return
    failures = [outcome for outcome in outcomes if not outcome.right]
    if not failures:
        return
    print("  confusion (truth -> imputed: count):")
    for (truth, label), count in Counter((o.truth, o.label) for o in failures).most_common():
        print(f"    {truth} -> {label}: {count}")
    print("  wrong rows (truth | imputed | source | modality | study | protocol | requested):")
    for o in failures:
        r = o.row
        print(f"    {o.truth} | {o.label} | {o.source} | {r['Modality']} | {r['StudyDescription']} | "
              f"{r['ProtocolName']} | {r['RequestedProcedureDescription']}")


def main(argv: list[str] | None = None) -> int:
    """Measure the imputation on the chosen sets and print the results.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", help="rules YAML (default: the shipped bpe_rules.yaml)")
    parser.add_argument("--set", choices=SETS, action="append", help="set(s) to measure (default: all)")
    args = parser.parse_args(argv)

    from radnet_spark.tags.bpe import load_bpe_rules

    rules = load_bpe_rules(args.rules)
    print(f"BPE rules {rules.version} ({rules.source})")
    seen = {
        description_key(row)
        for name in sorted(INSPECTABLE_SETS)
        for row in read_set(EVAL_DIR / f"{name}.csv")
    }
    for name in args.set or SETS:
        outcomes = evaluate(read_set(EVAL_DIR / f"{name}.csv"), rules)
        report(name, outcomes, inspect=name in INSPECTABLE_SETS)
        if name not in INSPECTABLE_SETS:
            unseen = [outcome for outcome in outcomes if description_key(outcome.row) not in seen]
            right = sum(outcome.right for outcome in unseen)
            print(
                f"  {name} rows no development set shares: {right}/{len(unseen)} right = {accuracy(unseen):.1%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
