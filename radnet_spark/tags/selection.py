"""Which DICOM tag columns become features, and as what kind.

``profile_tags`` measures every tag column of the ``tags`` table in one Spark aggregation pass;
``select_tags`` is a pure function of that profile. It drops, in this order (the first rule that
applies is the recorded reason):

- ``excluded``: our own key columns (``sop_instance_uid``, ``exam_id``, ``path`` …) and any column the
  caller excludes;
- ``uid``: keywords ending in ``UID``/``UIDs`` (split multi-values ``…UID_0`` too) — always unique
  identifiers, whatever their cardinality;
- ``identifier``: the identifying keywords of :mod:`radnet_spark.dicom.deid` (PatientID, AccessionNumber, serial
  numbers …) that a de-identification profile should already have removed;
- ``low_fill``: filled in fewer than ``min_fill_rate`` of the rows (empty strings count as missing);
- ``few_distinct``: fewer than ``min_distinct`` distinct values;
- ``natural_language``: descriptions, comments and protocol names by keyword (the paper dropped
  StudyDescription, ProtocolName, RequestedProcedureDescription, ImageComments …), or text whose
  values mostly contain spaces, are long on average and take more than ``max_categories`` values;
- ``identifier`` (by data, after the text rule): a non-numeric column — or a numeric one whose
  keyword ends in ``ID``/``Number`` — whose distinct count approaches its filled count
  (≥ ``identifier_ratio``). This keeps ordinal numbers such as SeriesNumber or InstanceNumber (few
  distinct values relative to the rows) and genuinely continuous measurements such as SliceLocation;
- ``too_many_categories``: categorical with more than ``max_categories`` values when
  ``categorical_overflow="drop"``; with ``"bucket"`` the column is kept and its top
  ``max_categories - 1`` values plus ``__other__`` become the categories (chosen on the fit sample).

What remains is ``continuous`` when at least ``numeric_share`` of its filled values parse as numbers,
``categorical`` otherwise.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from radnet_spark.dicom.deid import IDENTIFYING_KEYWORDS
from radnet_spark.errors import UserError

KEY_COLUMNS = frozenset({"sop_instance_uid", "exam_id", "study_id", "series_id", "path", "ingest_run_id"})

OTHER_CATEGORY = "__other__"


NUMBER_PATTERN = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"

_MULTI_VALUE_SUFFIX = re.compile(r"_\d+$")
_UID_KEYWORD = re.compile(r"UIDs?$")
_ID_LIKE_KEYWORD = re.compile(r"(ID|IDs|Id|Number|Numbers)$")
_TEXT_KEYWORD = re.compile(
    r"(Description|Descriptions|Comments?|ProtocolName|Diagnoses|DiagnosisDescription|History|"
    r"Remarks|Text|Impressions|Findings)$"
)

DROP_REASONS = (
    "excluded", "uid", "identifier", "low_fill", "few_distinct", "natural_language", "too_many_categories",
)
CONTINUOUS = "continuous"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class ColumnProfile:
    """Statistics of one tag column, measured over the whole table.

    Attributes:
        name: Column name (DICOM keyword, possibly with a ``_N`` multi-value suffix).
        filled: Rows with a non-null, non-blank value.
        distinct: Approximate number of distinct filled values.
        numeric: Filled values that parse as a number.
        spaced: Filled values containing a space.
        mean_length: Mean length of the filled values in characters (0 when none is filled).
    """

    name: str
    filled: int
    distinct: int
    numeric: int
    spaced: int
    mean_length: float


@dataclass(frozen=True)
class TagProfile:
    """The profile of the ``tags`` table: row count, excluded columns and one entry per tag column."""

    rows: int
    columns: tuple[ColumnProfile, ...]
    excluded: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnProfile:
        """Return the profile of ``name``; raises KeyError when the column was not profiled."""
        for profile in self.columns:
            if profile.name == name:
                return profile
        raise KeyError(name)


def _present(col: str) -> Any:
    value = F.col(f"`{col}`")
    return value.isNotNull() & (F.trim(value) != "")


def profile_tags(df: DataFrame, exclude: set[str] | frozenset[str] = KEY_COLUMNS) -> TagProfile:
    """Measure every tag column of ``df`` in one Spark aggregation.

    Args:
        df: The ``tags`` table (or any frame of nullable string columns).
        exclude: Columns that are not tags (our keys); they are recorded as excluded, not measured.

    Returns:
        The profile; its size is a handful of numbers per column, whatever the table's size.
    """
    excluded = tuple(c for c in df.columns if c in exclude)
    tag_columns = [c for c in df.columns if c not in exclude]
    aggregates = [F.count(F.lit(1)).alias("__rows")]
    for index, col in enumerate(tag_columns):
        present = _present(col)
        text = F.col(f"`{col}`").cast("string")
        aggregates += [
            F.count(F.when(present, 1)).alias(f"f{index}"),
            F.approx_count_distinct(F.when(present, text)).alias(f"d{index}"),
            # A pattern, not a cast: Spark casts "2D" (MRAcquisitionType) to 2.0 like a Java literal,
            # while the imputers (pandas.to_numeric) rightly see text there.
            F.count(F.when(present & text.rlike(NUMBER_PATTERN), 1)).alias(f"n{index}"),
            F.count(F.when(present & text.contains(" "), 1)).alias(f"s{index}"),
            F.avg(F.when(present, F.length(text))).alias(f"l{index}"),
        ]
    row = df.agg(*aggregates).collect()[0]
    columns = tuple(
        ColumnProfile(
            name=col,
            filled=int(row[f"f{i}"]),
            distinct=int(row[f"d{i}"]),
            numeric=int(row[f"n{i}"]),
            spaced=int(row[f"s{i}"]),
            mean_length=float(row[f"l{i}"] or 0.0),
        )
        for i, col in enumerate(tag_columns)
    )
    return TagProfile(rows=int(row["__rows"]), columns=columns, excluded=excluded)


@dataclass(frozen=True)
class TagDecision:
    """What happens to one column: kept (with its kind) or dropped (with the reason)."""

    column: str
    kept: bool
    reason: str  # a DROP_REASONS code for dropped columns, the kind for kept ones
    detail: str
    kind: str | None = None  # continuous | categorical for kept columns
    bucketed: bool = False  # categorical reduced to top values + __other__
    fill_rate: float | None = None
    distinct: int | None = None
    numeric_share: float | None = None


@dataclass
class TagSelection:
    """The decision for every column of the ``tags`` table, with the parameters that produced it."""

    decisions: list[TagDecision]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def continuous(self) -> list[str]:
        """Kept continuous columns, in table order."""
        return [d.column for d in self.decisions if d.kept and d.kind == CONTINUOUS]

    @property
    def categorical(self) -> list[str]:
        """Kept categorical columns, in table order."""
        return [d.column for d in self.decisions if d.kept and d.kind == CATEGORICAL]

    @property
    def bucketed(self) -> list[str]:
        """Kept categorical columns reduced to their top values plus ``__other__``."""
        return [d.column for d in self.decisions if d.kept and d.bucketed]

    @property
    def kept(self) -> list[str]:
        """All kept columns, in table order."""
        return [d.column for d in self.decisions if d.kept]

    def dropped(self, reason: str | None = None) -> list[str]:
        """Dropped columns, optionally only those dropped for ``reason``."""
        return [d.column for d in self.decisions if not d.kept and (reason is None or d.reason == reason)]

    def decision(self, column: str) -> TagDecision:
        """The decision taken for ``column``; raises KeyError for an unknown column."""
        for decision in self.decisions:
            if decision.column == column:
                return decision
        raise KeyError(column)

    def to_markdown(self) -> str:
        """A readable table of every column's fate (kept first), for logs and reports."""
        kept = [d for d in self.decisions if d.kept]
        dropped = sorted((d for d in self.decisions if not d.kept), key=lambda d: (d.reason, d.column))
        lines = [
            f"Tag selection: {len(kept)} kept ({len(self.continuous)} continuous, "
            f"{len(self.categorical)} categorical), {len(dropped)} dropped.",
            "",
            "| column | decision | kind / reason | fill rate | distinct | numeric | detail |",
            "|---|---|---|---|---|---|---|",
        ]
        for d in kept + dropped:
            fill = "" if d.fill_rate is None else f"{d.fill_rate:.2f}"
            distinct = "" if d.distinct is None else str(d.distinct)
            numeric = "" if d.numeric_share is None else f"{d.numeric_share:.2f}"
            lines.append(
                f"| {d.column} | {'kept' if d.kept else 'dropped'} | {d.reason} | {fill} | {distinct} | "
                f"{numeric} | {d.detail} |"
            )
        return "\n".join(lines)

    def to_json(self) -> str:
        """Serialise to JSON (see :meth:`from_json`)."""
        return json.dumps({"params": self.params, "decisions": [asdict(d) for d in self.decisions]}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> TagSelection:
        """Rebuild a selection written by :meth:`to_json`."""
        data = json.loads(text)
        return cls(decisions=[TagDecision(**d) for d in data["decisions"]], params=data.get("params", {}))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the selection as JSON to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TagSelection:
        """Read a selection saved with :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _base_keyword(column: str) -> str:
    return _MULTI_VALUE_SUFFIX.sub("", column)


def select_tags(
    profile: TagProfile,
    min_fill_rate: float = 0.2,
    min_distinct: int = 2,
    max_categories: int = 50,
    categorical_overflow: str = "drop",
    *,
    numeric_share: float = 0.95,
    identifier_ratio: float = 0.9,
    identifier_min_rows: int = 20,
    text_min_space_share: float = 0.3,
    text_min_mean_length: float = 10.0,
) -> TagSelection:
    """Decide for every profiled column whether it is kept and as what kind (pure).

    Args:
        profile: Output of :func:`profile_tags`.
        min_fill_rate: Drop columns filled in fewer than this share of rows (paper: 0.2).
        min_distinct: Drop columns with fewer distinct values (paper: 2).
        max_categories: Most categories a categorical column may have (paper: 50).
        categorical_overflow: ``"drop"`` larger categoricals, or ``"bucket"`` them into the top
            ``max_categories - 1`` values plus ``__other__``.
        numeric_share: Share of filled values that must parse as numbers for a continuous column.
        identifier_ratio: distinct / filled at or above which a column counts as an identifier.
        identifier_min_rows: The cardinality rules need at least this many filled values.
        text_min_space_share: Share of values with a space above which text may be natural language.
        text_min_mean_length: Mean length above which text may be natural language.

    Returns:
        The selection, one decision per column (excluded keys included).
    """
    if categorical_overflow not in ("drop", "bucket"):
        raise UserError(f"categorical_overflow must be 'drop' or 'bucket', got {categorical_overflow!r}.")
    if max_categories < 2:
        raise UserError(f"max_categories must be at least 2, got {max_categories}.")
    params = {
        "min_fill_rate": min_fill_rate, "min_distinct": min_distinct, "max_categories": max_categories,
        "categorical_overflow": categorical_overflow, "numeric_share": numeric_share,
        "identifier_ratio": identifier_ratio, "identifier_min_rows": identifier_min_rows,
        "text_min_space_share": text_min_space_share, "text_min_mean_length": text_min_mean_length,
        "rows": profile.rows,
    }
    decisions = [TagDecision(c, False, "excluded", "key or excluded column") for c in profile.excluded]
    rows = max(profile.rows, 1)
    for col in profile.columns:
        keyword = _base_keyword(col.name)
        fill_rate = col.filled / rows
        filled = max(col.filled, 1)
        numeric = col.numeric / filled if col.filled else 0.0
        is_numeric = col.filled > 0 and numeric >= numeric_share
        stats = {"fill_rate": fill_rate, "distinct": col.distinct, "numeric_share": numeric}

        def drop(reason: str, detail: str, stats: dict[str, Any] = stats, name: str = col.name) -> TagDecision:
            return TagDecision(name, False, reason, detail, **stats)

        unique_ratio = col.distinct / filled
        looks_unique = col.filled >= identifier_min_rows and unique_ratio >= identifier_ratio
        looks_like_text = (
            not is_numeric
            and col.spaced / filled >= text_min_space_share
            and col.mean_length >= text_min_mean_length
            and col.distinct > max_categories
        )
        if _UID_KEYWORD.search(keyword):
            decisions.append(drop("uid", "unique identifier (UID keyword)"))
        elif keyword in IDENTIFYING_KEYWORDS:
            decisions.append(drop("identifier", "identifying keyword"))
        elif fill_rate < min_fill_rate:
            decisions.append(drop("low_fill", f"fill rate {fill_rate:.3f} < {min_fill_rate}"))
        elif col.distinct < min_distinct:
            decisions.append(drop("few_distinct", f"{col.distinct} distinct < {min_distinct}"))
        elif _TEXT_KEYWORD.search(keyword):
            decisions.append(drop("natural_language", "free-text keyword"))
        elif looks_like_text:
            decisions.append(drop(
                "natural_language",
                f"{col.spaced / filled:.2f} of values with spaces, mean length {col.mean_length:.1f}",
            ))
        elif looks_unique and (not is_numeric or _ID_LIKE_KEYWORD.search(keyword)):
            decisions.append(drop("identifier", f"distinct/filled {unique_ratio:.2f} >= {identifier_ratio}"))
        elif is_numeric:
            decisions.append(TagDecision(col.name, True, CONTINUOUS, "numeric", kind=CONTINUOUS, **stats))
        elif col.distinct <= max_categories:
            decisions.append(TagDecision(col.name, True, CATEGORICAL, "", kind=CATEGORICAL, **stats))
        elif categorical_overflow == "bucket":
            decisions.append(TagDecision(
                col.name, True, CATEGORICAL, f"top {max_categories - 1} values + {OTHER_CATEGORY}",
                kind=CATEGORICAL, bucketed=True, **stats,
            ))
        else:
            decisions.append(drop("too_many_categories", f"{col.distinct} categories > {max_categories}"))
    return TagSelection(decisions=decisions, params=params)
